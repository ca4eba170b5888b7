package caps

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SwitchUser sets the calling thread's uid and gid (real, effective, saved
// and filesystem) and, when setgroups is true, its supplementary groups to
// exactly groups (none when groups is empty, dropping the runtime's own).
// The permitted capability set survives the switch (PR_SET_KEEPCAPS); the
// effective set is cleared by the kernel when the uid leaves 0, and Apply
// sets it afterwards.
//
// setgroups is false when the user namespace's /proc/<pid>/setgroups says
// "deny": the kernel then refuses setgroups(2), and asking for additional
// groups is an error rather than silently keeping the current ones.
//
// Preconditions: the goroutine is locked to its thread; the thread has
// CAP_SETUID and CAP_SETGID; DropBounding has run.
// Postconditions: PR_SET_KEEPCAPS is back to 0, on success and on failure.
func SwitchUser(uid, gid uint32, groups []uint32, setgroups bool) (err error) {
	// (uid_t)-1 means "leave unchanged" to setresuid(2): a spec asking for
	// it would silently keep the runtime's root.
	if uid == math.MaxUint32 || gid == math.MaxUint32 {
		return fmt.Errorf("switch to uid %d gid %d: %d is not a valid id: %w", uid, gid, uint32(math.MaxUint32), unix.EINVAL)
	}
	for _, g := range groups {
		if g == math.MaxUint32 {
			return fmt.Errorf("set additional groups %v: %d is not a valid id: %w", groups, g, unix.EINVAL)
		}
	}
	if !setgroups && len(groups) > 0 {
		return fmt.Errorf("set additional groups %v: setgroups is denied in this user namespace: %w", groups, unix.EPERM)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", os.NewSyscallError("prctl", err))
	}
	defer func() {
		if e := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); e != nil && err == nil {
			err = fmt.Errorf("clear keepcaps: %w", os.NewSyscallError("prctl", e))
		}
	}()
	if setgroups {
		if err := rawSetgroups(groups); err != nil {
			return fmt.Errorf("set additional groups %v: %w", groups, err)
		}
	}
	// Group before user: after setresuid to a non-zero uid the thread may
	// no longer hold CAP_SETGID in its effective set.
	if _, _, e := unix.RawSyscall(sysSetresgid, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("set gid %d: %w", gid, os.NewSyscallError("setresgid", e))
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("set uid %d: %w", uid, os.NewSyscallError("setresuid", e))
	}
	return nil
}

// rawSetgroups is setgroups(2) for this thread only. The gid_t array is
// 32-bit on every architecture sysSetgroups names.
func rawSetgroups(groups []uint32) error {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	_, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(groups)), uintptr(p), 0)
	runtime.KeepAlive(groups)
	if e != 0 {
		return os.NewSyscallError("setgroups", e)
	}
	return nil
}
