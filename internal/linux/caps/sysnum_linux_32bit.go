//go:build linux && (386 || arm)

package caps

import "golang.org/x/sys/unix"

// On 386 and arm the plain calls take 16-bit ids; the *32 variants take
// the 32-bit ids the spec uses.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
