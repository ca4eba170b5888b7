package initproc

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// resetSignals gives the program the signal state a fresh process has:
// every disposition the default and nothing blocked. execve resets caught
// signals but keeps ignored ones and the mask, so a container would
// otherwise inherit whatever its ancestors ignored (a nohup'd daemon's
// SIGHUP, a supervisor's SIGPIPE, a real-time signal a CI harness set
// aside), and a shell in it could not be interrupted. It runs before the
// spec's seccomp filter is loaded, so no profile can refuse it; the raw
// calls bypass the Go runtime's handlers, which no longer matters this
// close to execve.
func resetSignals() {
	// struct kernel_sigaction {handler, flags, restorer, mask} with
	// handler SIG_DFL: the layout of amd64 and arm64.
	var dfl [4]uint64
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	}
	var empty unix.Sigset_t
	unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil)
}
