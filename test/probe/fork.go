package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/probe/report"
)

// cmdFork starts N children running "probe sleep 30", stopping at the
// first failure (under a pids limit, fork fails with EAGAIN), prints how
// many started, then kills and reaps them so none outlive the probe.
func cmdFork(arg string) int {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 {
		fmt.Fprintf(stderr, "probe: fork count %q is not a number >= 0\n", arg)
		return usage()
	}
	out := report.Fork{Requested: n}
	exe, err := os.Executable()
	if err != nil {
		return fail(fmt.Errorf("find executable: %w", err))
	}
	pids := make([]int, 0, n)
	for range n {
		// No descriptors: a child holding the container's stdout would
		// keep a reader waiting for EOF.
		pid, err := syscall.ForkExec(exe, []string{"probe", "sleep", "30"}, &syscall.ProcAttr{})
		if err != nil {
			out.Error = fmt.Sprintf("fork/exec %s: %v", exe, err)
			var errno syscall.Errno
			if errors.As(err, &errno) {
				out.Errno = unix.ErrnoName(errno)
			}
			break
		}
		pids = append(pids, pid)
	}
	out.Started = len(pids)
	status := printJSON(out)
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	for _, pid := range pids {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
	}
	return status
}
