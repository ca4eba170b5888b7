package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Start releases a created container's init: it opens the exec fifo, which
// unblocks the init, and reads until the init's end of the fifo closes on
// execve. Anything the init writes there first is its error. Poststart
// hooks then run; a failing one stops the container and is the error, as
// the spec's lifecycle says (the container is left for delete).
//
// Postcondition on success: the user's program has been executed.
func (c *Container) Start() error {
	switch s := c.Status(); s {
	case Created:
	case Stopped:
		return fmt.Errorf("%w: cannot start a container that has stopped", ErrWrongState)
	default:
		return fmt.Errorf("%w: cannot start an already %s container", ErrWrongState, s)
	}
	msg, err := c.releaseInit()
	if err != nil {
		return err
	}
	os.Remove(filepath.Join(c.dir, fifoName))
	if msg != "" {
		return fmt.Errorf("container init: %s", msg)
	}
	if h := c.specMeta().Hooks; h != nil && len(h.Poststart) > 0 {
		if err := runHooks("poststart", h.Poststart, c.hookState(Running)); err != nil {
			if kerr := c.killAll(Running); kerr != nil {
				return fmt.Errorf("%w; stopping the container: %v", err, kerr)
			}
			return fmt.Errorf("%w (the container was stopped)", err)
		}
	}
	return nil
}

// released is the byte the init writes to the fifo as soon as its open
// returns: it tells a successful, quick exec apart from an init that died
// before start.
const released = '0'

// releaseInit opens the fifo for reading while watching the init through a
// pidfd, so a dead init cannot leave start waiting forever. It returns the
// init's error message, empty when the program was executed.
//
// Both waits are the Go runtime poller's: the fifo is opened non-blocking
// (which never waits for a writer) and the pidfd is non-blocking, so no
// thread blocks in open(2) or poll(2). In a command that lives for
// milliseconds each blocked thread costs a hand-over of the scheduler's P
// and often a new thread.
func (c *Container) releaseInit() (string, error) {
	pidfd, err := unix.PidfdOpen(c.st.InitPid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return "", fmt.Errorf("watch container init: %w", os.NewSyscallError("pidfd_open", err))
	}
	pf := os.NewFile(uintptr(pidfd), "pidfd")
	defer pf.Close()
	fifoPath := filepath.Join(c.dir, fifoName)
	fifo, err := os.OpenFile(fifoPath, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	var gone atomic.Bool
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := readFifo(fifo, &gone)
		done <- result{data, err}
	}()
	exited := make(chan struct{})
	go func() {
		waitPidfd(pf)
		close(exited)
	}()

	var r result
	select {
	case r = <-done:
	case <-exited:
		// The init is gone, released or not. What it wrote, if anything,
		// is in the fifo; a writer of our own that comes and goes makes the
		// end of it visible even if the init never opened the fifo.
		gone.Store(true)
		if w, err := os.OpenFile(fifoPath, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		r = <-done
	}
	if r.err != nil {
		return "", r.err
	}
	if len(r.data) == 0 || r.data[0] != released {
		return "", fmt.Errorf("container init exited before start")
	}
	return strings.TrimSpace(string(r.data[1:])), nil
}

// readFifo reads the exec fifo until every writer is gone: the released
// byte, then an error message if the init failed after it. Bounded: a
// marker and a message, never a stream. A read that finds no writer before
// anything arrived is the moment before the init's open(2) returns, not the
// end, unless gone says the init has exited.
func readFifo(f *os.File, gone *atomic.Bool) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("read exec fifo: %w", err)
	}
	var data []byte
	var rerr error
	buf := make([]byte, 4096)
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), buf)
			switch {
			case n > 0:
				data = append(data, buf[:n]...)
				if len(data) >= 64<<10 {
					return true
				}
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				return false
			case err != nil:
				rerr = err
				return true
			default:
				return len(data) > 0 || gone.Load()
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("read exec fifo: %w", err)
	}
	return data, nil
}
