package runtime

import (
	"os"

	"golang.org/x/sys/unix"
)

// WaitExited returns once process pid has exited (or at once when the
// kernel has no pidfds or pid is gone), waiting in the Go runtime's poller
// on a pidfd rather than in a thread blocked in waitid: a command that
// lives for milliseconds pays for every hand-over of the scheduler's P that
// a blocked thread causes. The caller reaps the process afterwards.
func WaitExited(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	waitPidfd(f)
}

// waitPidfd returns once the process of f, a non-blocking pidfd the poller
// watches, has exited, or once f is closed.
//
// The poller is edge-triggered and forgets an edge that came before the
// wait began (RawConn.Read resets the descriptor's readiness first): a
// process that exited before then gives no further edge. So each turn asks
// the kernel for the level, with a poll(2) that does not wait, and waits
// on the poller only when the process still runs.
func waitPidfd(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(p, 0)
			if err == unix.EINTR {
				continue
			}
			return err != nil || n > 0
		}
	})
}
