package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
extern void berth_nsenter(void);
void __attribute__((constructor(101))) berth_nsenter_init(void) { berth_nsenter(); }
*/
import "C"

import (
	"fmt"
	"sort"
	"strings"
)

// EnvVar names the variable the constructor reads for joins.
const EnvVar = "_BERTH_NSENTER"

// NewTimeVar names the variable that asks the constructor for a new time
// namespace.
const NewTimeVar = "_BERTH_NEWTIME"

// Join describes one namespace to join: the child's descriptor number and the
// namespace type as named in /proc/PID/ns ("user", "mnt", "time", ...).
type Join struct {
	FD   int
	Type string
}

// Env renders joins into the environment entry the constructor expects. The
// caller orders joins; the user namespace must come first so that the other
// joins are checked against the capabilities it grants.
func Env(joins []Join) string {
	parts := make([]string, 0, len(joins))
	for _, j := range joins {
		parts = append(parts, fmt.Sprintf("%d:%s", j.FD, j.Type))
	}
	return EnvVar + "=" + strings.Join(parts, ",")
}

// Offset is one clock's offset in a new time namespace.
type Offset struct {
	Secs     int64
	Nanosecs uint32
}

// clockIDs are the clocks a time namespace offsets, by the names the
// runtime spec uses. The kernel's file takes the numeric clock ids on every
// kernel that has time namespaces (names only on some).
var clockIDs = map[string]int{"monotonic": 1, "boottime": 7}

// NewTimeEnv renders the environment entry that asks the constructor for a
// new time namespace with offsets (none: the clocks read as the host's). It
// refuses what the kernel would: an unknown clock or nanoseconds past a
// second.
func NewTimeEnv(offsets map[string]Offset) (string, error) {
	clocks := make([]string, 0, len(offsets))
	for c := range offsets {
		clocks = append(clocks, c)
	}
	sort.Strings(clocks)
	var b strings.Builder
	for _, c := range clocks {
		id, ok := clockIDs[c]
		if !ok {
			return "", fmt.Errorf("time offset for unknown clock %q (monotonic or boottime)", c)
		}
		o := offsets[c]
		if o.Nanosecs >= 1e9 {
			return "", fmt.Errorf("time offset for %s: nanosecs %d is a second or more", c, o.Nanosecs)
		}
		fmt.Fprintf(&b, "%d %d %d\n", id, o.Secs, o.Nanosecs)
	}
	return NewTimeVar + "=" + b.String(), nil
}
