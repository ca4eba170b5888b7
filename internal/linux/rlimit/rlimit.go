package rlimit

import (
	"fmt"
	"strconv"

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

// limit spells a limit as ulimit(1) does.
func limit(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func pair(soft, hard uint64) string { return limit(soft) + "/" + limit(hard) }
