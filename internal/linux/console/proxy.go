package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Proxy connects a container's terminal to the user's: it copies in to
// master and master to out until the master reports end of file, which on
// Linux is EIO once every descriptor of the slave is closed (the container's
// process and everything it started have exited). It returns nil then, after
// everything the slave side wrote has been read and written to out.
//
// If in or out is a terminal (an *os.File, or anything with SyscallConn, on a
// tty; in is tried first), Proxy copies its window size to master at the start
// and again on every SIGWINCH, so full-screen programs in the container follow
// the user's window. Putting that terminal in raw mode is left to the caller
// (MakeRaw), which knows when to restore it.
//
// If ctx is done first, Proxy stops and returns ctx.Err(). in may be nil (no
// input); out may be nil (output discarded).
//
// Proxy works on its own duplicate of master and never closes master. While it
// runs, the master's open file description is non-blocking (Go's poller needs
// that to stop a read when ctx is done); its mode is put back on return, and
// the caller should not read or write master meanwhile.
//
// Reading from in cannot be interrupted in general (a terminal on standard
// input is usually not pollable), so the goroutine copying in may outlive
// Proxy until its next Read returns; what it reads then is dropped.
func Proxy(ctx context.Context, master *os.File, in io.Reader, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	m, restore, err := pollableDup(master)
	if err != nil {
		return fmt.Errorf("proxy terminal %s: %w", master.Name(), err)
	}
	defer func() {
		m.Close()
		restore()
	}()

	done := make(chan struct{})
	defer close(done)

	if term := userTerminal(in, out); term != nil {
		// Best effort: a user terminal whose size cannot be read or a
		// container that closed its slave must not stop the output.
		_ = copyWinsize(term, m)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			defer signal.Stop(winch)
			for {
				select {
				case <-winch:
					_ = copyWinsize(term, m)
				case <-done:
					return
				}
			}
		}()
	}

	if in != nil {
		go copyInput(m, in)
	}

	go func() {
		select {
		case <-ctx.Done():
			// Wakes the read below; the deadline error is mapped to
			// ctx.Err() there.
			_ = m.SetReadDeadline(time.Now())
		case <-done:
		}
	}()

	buf := make([]byte, 32*1024)
	for {
		n, rerr := m.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return fmt.Errorf("proxy terminal %s: write output: %w", master.Name(), err)
			}
		}
		switch {
		case rerr == nil:
		case rerr == io.EOF, errors.Is(rerr, unix.EIO):
			// EIO: the last slave descriptor is closed and, since the
			// kernel drains the master's input before reporting it,
			// everything written to the slave has been read.
			return nil
		case errors.Is(rerr, os.ErrDeadlineExceeded) && ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("proxy terminal %s: read: %w", master.Name(), rerr)
		}
	}
}

// copyInput copies in to the master until either side fails. Its errors have
// no one to go to: a closed master means the container is gone, and the end of
// the user's input leaves the container's terminal open, as a terminal's does.
func copyInput(m *os.File, in io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := m.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pollableDup returns a non-blocking duplicate of f that Go's poller manages,
// and a function restoring the blocking mode f's open file description had.
func pollableDup(f *os.File) (*os.File, func(), error) {
	var dup int
	var wasNonblock bool
	err := withFd(f, func(fd int) error {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return os.NewSyscallError("fcntl F_GETFL", err)
		}
		wasNonblock = fl&unix.O_NONBLOCK != 0
		dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, nil, os.NewSyscallError("fcntl F_SETFL", err)
	}
	// os.NewFile puts a descriptor that is already non-blocking in the poller.
	m := os.NewFile(uintptr(dup), f.Name())
	restore := func() {
		if !wasNonblock {
			_ = withFd(f, func(fd int) error { return unix.SetNonblock(fd, false) })
		}
	}
	return m, restore, nil
}

// userTerminal returns whichever of in and out is a terminal, in first.
func userTerminal(in io.Reader, out io.Writer) syscall.Conn {
	for _, v := range []any{in, out} {
		c, ok := v.(syscall.Conn)
		if !ok {
			continue
		}
		isTerm := false
		if err := withFd(c, func(fd int) error { isTerm = IsTerminal(fd); return nil }); err == nil && isTerm {
			return c
		}
	}
	return nil
}

func copyWinsize(from syscall.Conn, to *os.File) error {
	var ws *unix.Winsize
	if err := withFd(from, func(fd int) (err error) { ws, err = GetWinsize(fd); return err }); err != nil {
		return err
	}
	return withFd(to, func(fd int) error { return SetWinsize(fd, ws) })
}
