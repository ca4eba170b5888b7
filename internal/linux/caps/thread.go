package caps

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LastCap returns the highest capability number the running kernel knows.
// It reads /proc/sys/kernel/cap_last_cap and, where /proc is not mounted
// (early in a container's init), probes the bounding set with
// PR_CAPBSET_READ, which fails with EINVAL past the last capability.
func LastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		n, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr == nil && n >= 0 && n < 64 {
			return n, nil
		}
	}
	last := -1
	for n := 0; n < 64; n++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break
			}
			return 0, fmt.Errorf("read bounding capability %s: %w", Name(n), os.NewSyscallError("prctl", err))
		}
		last = n
	}
	if last < 0 {
		return 0, errors.New("find the last capability: the kernel reports none")
	}
	return last, nil
}

// DropBounding removes from the calling thread's bounding set every
// capability the kernel knows that keep lacks.
//
// Preconditions: the goroutine is locked to its thread (see the package
// doc); the thread has CAP_SETPCAP in its effective set if anything must be
// dropped, so this runs before SwitchUser.
func DropBounding(keep Set) error {
	for n := 0; n < 64; n++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the kernel's last capability
		}
		if err != nil {
			return fmt.Errorf("read bounding capability %s: %w", Name(n), os.NewSyscallError("prctl", err))
		}
		// Dropping only what is present lets a thread without CAP_SETPCAP
		// (a nested or rootless runtime) pass when there is nothing to do.
		if in == 0 || keep.Has(n) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", Name(n), os.NewSyscallError("prctl", err))
		}
	}
	return nil
}

// Apply sets the calling thread's effective, permitted and inheritable sets
// to exactly s's, then its ambient set to exactly s.Ambient minus
// s.Unraisable(). s.Bounding is not used: see DropBounding.
//
// Preconditions: the goroutine is locked to its thread; DropBounding and
// SwitchUser have run; s.Permitted is within the thread's permitted set and
// s.Inheritable within its bounding set, or capset(2) fails with EPERM.
// Postconditions: an execve from this thread starts with these sets as the
// kernel transforms them (capabilities(7)); nothing of the runtime's own
// inheritable or ambient sets survives (CVE-2022-29162).
func Apply(s Sets) error {
	if extra := s.Effective &^ s.Permitted; extra != 0 {
		return fmt.Errorf("set capabilities: effective %s not in the permitted set: %w", extra, unix.EINVAL)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3} // Pid 0: this thread
	data := [2]unix.CapUserData{
		{Effective: uint32(s.Effective), Permitted: uint32(s.Permitted), Inheritable: uint32(s.Inheritable)},
		{Effective: uint32(s.Effective >> 32), Permitted: uint32(s.Permitted >> 32), Inheritable: uint32(s.Inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities effective=%s permitted=%s inheritable=%s: %w",
			s.Effective, s.Permitted, s.Inheritable, os.NewSyscallError("capset", err))
	}
	// Clear first: the ambient set is not touched by capset, and whatever
	// the runtime had must not reach the container.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", os.NewSyscallError("prctl", err))
	}
	for _, n := range (s.Ambient &^ s.Unraisable()).Numbers() {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", Name(n), os.NewSyscallError("prctl", err))
		}
	}
	return nil
}

// Current reads the calling thread's five capability sets.
func Current() (Sets, error) {
	var s Sets
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return Sets{}, fmt.Errorf("get capabilities: %w", os.NewSyscallError("capget", err))
	}
	s.Effective = Set(data[0].Effective) | Set(data[1].Effective)<<32
	s.Permitted = Set(data[0].Permitted) | Set(data[1].Permitted)<<32
	s.Inheritable = Set(data[0].Inheritable) | Set(data[1].Inheritable)<<32
	for n := 0; n < 64; n++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break
		}
		if err != nil {
			return Sets{}, fmt.Errorf("read bounding capability %s: %w", Name(n), os.NewSyscallError("prctl", err))
		}
		if in == 1 {
			s.Bounding = s.Bounding.With(n)
		}
		amb, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(n), 0, 0)
		if err != nil {
			return Sets{}, fmt.Errorf("read ambient capability %s: %w", Name(n), os.NewSyscallError("prctl", err))
		}
		if amb == 1 {
			s.Ambient = s.Ambient.With(n)
		}
	}
	return s, nil
}
