package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	if c.st.Spec.Hooks != nil && len(c.st.Spec.Hooks.Poststart) > 0 {
		if err := runHooks("poststart", c.st.Spec.Hooks.Poststart, c.hookState(Running)); err != nil {
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
// pidfd, so a dead init cannot leave start blocked in open(2) forever. It
// returns the init's error message, empty when the program was executed.
func (c *Container) releaseInit() (string, error) {
	pidfd, err := unix.PidfdOpen(c.st.InitPid, 0)
	if err != nil {
		return "", fmt.Errorf("watch container init: %w", os.NewSyscallError("pidfd_open", err))
	}
	defer unix.Close(pidfd)

	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	fifoPath := filepath.Join(c.dir, fifoName)
	go func() {
		f, err := os.OpenFile(fifoPath, os.O_RDONLY, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("open exec fifo: %w", err)}
			return
		}
		defer f.Close()
		// Bounded: a marker and an error message, never a stream. Every
		// writer's end closes on execve or exit, so this ends.
		data, err := io.ReadAll(io.LimitReader(f, 64<<10))
		done <- result{data: data, err: err}
	}()

	// The watch ends when the init exits or when start is done: a poll
	// left waiting for the init would hold an OS thread (and the pidfd)
	// for the container's lifetime, in a shim that runs this in-process.
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC); err != nil {
		return "", fmt.Errorf("watch container init: %w", os.NewSyscallError("pipe2", err))
	}
	exited := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: int32(wake[0]), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if fds[1].Revents != 0 {
				return
			}
			if n > 0 || err != nil {
				close(exited)
				return
			}
		}
	}()
	defer func() {
		unix.Write(wake[1], []byte{0})
		<-watching // before the pidfd closes
		unix.Close(wake[0])
		unix.Close(wake[1])
	}()

	var r result
	select {
	case r = <-done:
	case <-exited:
		// The init is gone, released or not. If the reader is still
		// blocked in open(2), a writer of our own unblocks it; what the
		// init wrote, if anything, is read either way.
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
