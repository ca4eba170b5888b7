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
