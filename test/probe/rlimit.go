package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/probe/report"
)

// rlimitNames are the resources of <asm-generic/resource.h> by number.
var rlimitNames = []string{
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK",
	"RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE",
	"RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING",
	"RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
}

func limitValue(v uint64) int64 {
	if v == unix.RLIM_INFINITY {
		return report.Unlimited
	}
	return int64(v)
}

// rlimits reads every limit, undoing the Go runtime's own NOFILE raise.
func rlimits() (map[string]report.Rlimit, error) {
	out := map[string]report.Rlimit{}
	var errs []string
	for res, name := range rlimitNames {
		var lim unix.Rlimit
		if err := unix.Prlimit(0, res, nil, &lim); err != nil {
			errs = append(errs, fmt.Sprintf("prlimit %s: %v", name, err))
			continue
		}
		// Go's start-up code sets the soft NOFILE limit to exactly one
		// below the hard one when it raised it (syscall/rlimit.go); any
		// other value is what the process was given.
		if res == unix.RLIMIT_NOFILE && lim.Cur+1 == lim.Max {
			if soft, hard, err := startNofile(); err != nil {
				errs = append(errs, err.Error())
			} else {
				lim.Cur, lim.Max = soft, hard
			}
		}
		out[name] = report.Rlimit{Soft: limitValue(lim.Cur), Hard: limitValue(lim.Max)}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("read rlimits: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// startNofile returns the NOFILE limits this process was started with.
// The Go runtime remembers them and restores them in children between fork
// and execve; a child started with ptrace stops right after execve, before
// its own Go runtime raises the limit again, so its /proc/PID/limits shows
// the original values. The child is killed there.
func startNofile() (soft, hard uint64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, fmt.Errorf("find executable: %w", err)
	}
	// The tracer is the thread that forked; keep waiting on it too.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec(exe, []string{"probe", "exit", "0"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Ptrace: true},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("start traced child for RLIMIT_NOFILE: %w", err)
	}
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			_, werr := unix.Wait4(pid, &ws, unix.WALL, nil)
			if werr != unix.EINTR {
				return
			}
		}
	}()
	// Wait for the stop at execve so the limits file is the child's own
	// and not a half-forked copy of ours.
	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, unix.WALL, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("wait for traced child: %w", err)
	}
	if !ws.Stopped() {
		return 0, 0, fmt.Errorf("traced child did not stop: status %#x", ws)
	}
	data, err := readFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0, 0, err
	}
	return parseLimitsNofile(data)
}

// parseLimitsNofile finds the "Max open files" line of /proc/PID/limits:
//
//	Limit                     Soft Limit           Hard Limit           Units
//	Max open files            1024                 1048576              files
func parseLimitsNofile(data []byte) (soft, hard uint64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		if soft, err = parseLimit(f[0]); err != nil {
			return 0, 0, err
		}
		if hard, err = parseLimit(f[1]); err != nil {
			return 0, 0, err
		}
		return soft, hard, nil
	}
	return 0, 0, fmt.Errorf("parse limits: no \"Max open files\" line")
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" {
		return unix.RLIM_INFINITY, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse limit %q: %w", s, err)
	}
	return v, nil
}
