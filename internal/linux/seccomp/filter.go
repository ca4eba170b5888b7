package seccomp

import (
	"fmt"
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Filter is a compiled seccomp filter: the BPF program, the flags for
// seccomp(2) and whether it has SCMP_ACT_NOTIFY rules. It holds no C
// memory, so it needs no release; Encode hands it on.
type Filter struct {
	prog   []unix.SockFilter
	flags  uintptr // SECCOMP_FILTER_FLAG_* passed to seccomp(2)
	notify bool
}

// flagBits are the filter flags the spec may name, and their bits.
var flagBits = map[specs.LinuxSeccompFlag]uintptr{
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// filterFlags turns the spec's flags into the bits the stage passes to
// seccomp(2). TSYNC is accepted and dropped (see the package
// documentation); WAIT_KILLABLE_RECV only means something for a listener,
// and the kernel refuses it without one, so it is dropped when the filter
// has no notify rule, as libseccomp does. A flag the running kernel lacks is
// an error here, at compile time, rather than an EINVAL from the stage's
// seccomp(2) inside a half-made container.
func filterFlags(names []specs.LinuxSeccompFlag, notify bool) (uintptr, error) {
	var flags uintptr
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	for _, name := range names {
		bit, ok := flagBits[name]
		if !ok {
			return 0, fmt.Errorf("unknown seccomp flag %q", name)
		}
		switch {
		case bit == unix.SECCOMP_FILTER_FLAG_TSYNC:
			continue
		case bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !notify:
			continue
		}
		if !flagSupported(bit) {
			return 0, fmt.Errorf("seccomp flag %s is not supported by this kernel", name)
		}
		flags |= bit
	}
	return flags, nil
}

// flagSupported asks the kernel whether it knows a filter flag, the way
// libseccomp does: seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL) checks the
// flags before it reads the program, so a known flag fails with EFAULT and
// an unknown one with EINVAL. Nothing is ever installed.
func flagSupported(bit uintptr) bool {
	if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
		// The kernel accepts it only together with a listener.
		bit |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, bit, 0)
	return errno == unix.EFAULT
}

// knownFlags lists the flags the spec may name, sorted.
func knownFlags() []string {
	out := make([]string, 0, len(flagBits))
	for name := range flagBits {
		out = append(out, string(name))
	}
	sort.Strings(out)
	return out
}

// supportedFlags lists the known flags this kernel accepts, sorted.
func supportedFlags() []string {
	var out []string
	for _, name := range knownFlags() {
		if flagSupported(flagBits[specs.LinuxSeccompFlag(name)]) {
			out = append(out, name)
		}
	}
	return out
}

// Encoded is a compiled filter in a form that travels between processes:
// the runtime compiles the spec's profile once, before anything is created
// (and caches it), and puts the program and flags into the plan of the
// stage that loads it (internal/runtime/initstage).
type Encoded struct {
	Prog   []unix.SockFilter `json:"prog"`
	Flags  uintptr           `json:"flags"`
	Notify bool              `json:"notify,omitempty"`
}

// Encode returns the filter's program and flags.
func (f *Filter) Encode() *Encoded {
	return &Encoded{Prog: f.prog, Flags: f.flags, Notify: f.notify}
}
