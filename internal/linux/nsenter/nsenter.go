package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
extern void berth_nsenter(void);
void __attribute__((constructor)) berth_nsenter_init(void) { berth_nsenter(); }
*/
import "C"

import (
	"fmt"
	"strings"
)

// EnvVar names the variable the constructor reads.
const EnvVar = "_BERTH_NSENTER"

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
