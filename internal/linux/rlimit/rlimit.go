package rlimit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// resources maps getrlimit(2) names to resource numbers.
var resources = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// Parse returns the resource number of a limit named as in getrlimit(2),
// "RLIMIT_NOFILE" for example. An unknown name is an error naming it.
func Parse(name string) (int, error) {
	r, ok := resources[name]
	if !ok {
		return 0, fmt.Errorf("parse rlimit %q: unknown resource: %w", name, unix.EINVAL)
	}
	return r, nil
}

// Validate checks a spec's rlimits without changing anything: every type is
// known, none is repeated (the spec requires an error) and no soft limit is
// above its hard limit.
func Validate(rlimits []specs.POSIXRlimit) error {
	seen := make(map[string]bool, len(rlimits))
	for _, l := range rlimits {
		if _, err := Parse(l.Type); err != nil {
			return err
		}
		if seen[l.Type] {
			return fmt.Errorf("rlimit %s: listed more than once: %w", l.Type, unix.EINVAL)
		}
		seen[l.Type] = true
		if l.Soft > l.Hard {
			return fmt.Errorf("set %s to %s: soft limit above hard limit: %w", l.Type, pair(l.Soft, l.Hard), unix.EINVAL)
		}
	}
	return nil
}

// Apply sets each limit on the calling process, in order, after Validate.
// It stops at the first failure; limits before it stay applied.
func Apply(rlimits []specs.POSIXRlimit) error {
	if err := Validate(rlimits); err != nil {
		return err
	}
	for _, l := range rlimits {
		r, _ := Parse(l.Type)
		want := unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		err := unix.Prlimit(0, r, &want, nil)
		for errors.Is(err, unix.EINTR) {
			err = unix.Prlimit(0, r, &want, nil)
		}
		if err != nil {
			return explain(l, r, err)
		}
	}
	return nil
}

// explain turns a failed prlimit into an error a user can act on.
func explain(l specs.POSIXRlimit, r int, err error) error {
	op := fmt.Sprintf("set %s to %s", l.Type, pair(l.Soft, l.Hard))
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: %w", op, os.NewSyscallError("prlimit", err))
	}
	// EPERM for RLIMIT_NOFILE above fs.nr_open comes even with
	// CAP_SYS_RESOURCE (kernel/sys.c do_prlimit), so check it first.
	if r == unix.RLIMIT_NOFILE {
		if nrOpen, ok := readNrOpen(); ok && l.Hard > nrOpen {
			return fmt.Errorf("%s: above the kernel's fs.nr_open of %d: %w", op, nrOpen, err)
		}
	}
	var cur unix.Rlimit
	if gerr := unix.Prlimit(0, r, nil, &cur); gerr == nil && l.Hard > cur.Max {
		return fmt.Errorf("%s: hard limit above the host's %s needs CAP_SYS_RESOURCE: %w", op, limit(cur.Max), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func readNrOpen() (uint64, bool) {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// limit spells a limit as ulimit(1) does.
func limit(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func pair(soft, hard uint64) string { return limit(soft) + "/" + limit(hard) }
