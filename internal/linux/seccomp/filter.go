package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Filter is a compiled, not yet loaded, seccomp filter: the BPF program and
// the flags for seccomp(2). It holds no C memory, so it needs no release.
type Filter struct {
	prog   []unix.SockFilter
	flags  uintptr // SECCOMP_FILTER_FLAG_* passed to seccomp(2)
	notify bool
}

// Notify reports whether the filter has SCMP_ACT_NOTIFY rules: then Load
// returns a listener descriptor that must reach the agent at the spec's
// listenerPath (DialListener, SendNotify).
func (f *Filter) Notify() bool { return f.notify }

// Len is the number of BPF instructions in the program.
func (f *Filter) Len() int { return len(f.prog) }

// Load installs the filter on the calling thread with seccomp(2), without
// SECCOMP_FILTER_FLAG_TSYNC, and returns the SCMP_ACT_NOTIFY listener, or -1
// when the filter has no notify rule. The listener is O_CLOEXEC (the kernel
// creates it so), so it does not leak into the container program; the
// caller sends it with SendNotify and closes it.
//
// Preconditions: see the package documentation. The calling goroutine is
// locked to its OS thread for good and execs from it; the thread has
// no_new_privs or CAP_SYS_ADMIN; from here on every syscall of this thread
// is filtered.
//
// Postconditions: this thread, and threads and processes it creates from
// now on, run under the filter, which execve keeps. Other threads of the
// process are unaffected.
func (f *Filter) Load() (notifyFD int, err error) {
	if f == nil || len(f.prog) == 0 {
		return -1, errors.New("load seccomp filter: empty filter")
	}
	prog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	// seccomp(2) does not sleep, so it cannot fail with EINTR.
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f.flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f)
	if errno != 0 {
		err := os.NewSyscallError("seccomp", errno)
		if errno == unix.EACCES {
			return -1, fmt.Errorf("load seccomp filter: %w (the thread needs no_new_privs or CAP_SYS_ADMIN)", err)
		}
		return -1, fmt.Errorf("load seccomp filter: %w", err)
	}
	if f.flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		return -1, nil
	}
	return int(r), nil
}

// flagBits are the filter flags the spec may name, and their bits.
var flagBits = map[specs.LinuxSeccompFlag]uintptr{
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// filterFlags turns the spec's flags into the bits Load passes to
// seccomp(2). TSYNC is accepted and dropped (see the package
// documentation); WAIT_KILLABLE_RECV only means something for a listener,
// and the kernel refuses it without one, so it is dropped when the filter
// has no notify rule, as libseccomp does. A flag the running kernel lacks is
// an error here, at compile time, rather than an EINVAL from Load.
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
// the runtime compiles the spec's profile once, before anything is created,
// and hands the program to the process that loads it.
type Encoded struct {
	Prog   []unix.SockFilter `json:"prog"`
	Flags  uintptr           `json:"flags"`
	Notify bool              `json:"notify,omitempty"`
}

// Encode returns the filter's program and flags.
func (f *Filter) Encode() *Encoded {
	return &Encoded{Prog: f.prog, Flags: f.flags, Notify: f.notify}
}

// Filter rebuilds a filter from its encoding.
func (e *Encoded) Filter() (*Filter, error) {
	if e == nil || len(e.Prog) == 0 || len(e.Prog) > 0xffff {
		return nil, errors.New("decode seccomp filter: empty or oversized program")
	}
	return &Filter{prog: e.Prog, flags: e.Flags, notify: e.Notify}, nil
}
