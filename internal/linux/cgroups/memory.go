package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The spec's memory fields are v1's: limit, reservation (the soft limit)
// and swap, which is memory+swap together (memory.memsw.limit_in_bytes).
// Zero means "not set" for all three, -1 "unlimited".

func (s *setter) memory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	if mem.Kernel != nil {
		// Kernel memory limits were deprecated in Linux 5.4 and never
		// worked well (runc ignores them since 1.0); kernel memory is
		// charged to memory.limit like the rest.
		s.warn("memory.kernel is deprecated and ignored: kernel memory counts against memory.limit")
	}
	if mem.Limit == nil && mem.Reservation == nil && mem.Swap == nil && mem.KernelTCP == nil &&
		mem.Swappiness == nil && mem.DisableOOMKiller == nil && mem.UseHierarchy == nil {
		return nil
	}
	dir, unified, ok := s.m.dirFor("memory", "memory")
	if !ok {
		return errNoController("memory", "memory")
	}
	if unified {
		return s.memoryV2(dir, mem)
	}
	return s.memoryV1(dir, mem)
}

func (s *setter) memoryV1(dir string, mem *specs.LinuxMemory) error {
	limit, swap := i64(mem.Limit), i64(mem.Swap)
	if err := checkMemoryValues(limit, swap); err != nil {
		return err
	}
	if mem.UseHierarchy != nil {
		v := "0"
		if *mem.UseHierarchy {
			v = "1"
		}
		err := setCtl(dir, "memory.use_hierarchy", v, "memory.useHierarchy")
		switch {
		case err == nil:
		case !*mem.UseHierarchy && errors.Is(err, unix.EINVAL):
			// Linux 5.16 made v1 always hierarchical, like cgroup2,
			// and refuses to turn it off.
			s.warn("memory.useHierarchy=false ignored: this kernel's memory cgroups are always hierarchical")
		default:
			return err
		}
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate {
		if err := checkUsage(dir, limit, "memory.usage_in_bytes", swap, "memory.memsw.usage_in_bytes", ""); err != nil {
			return err
		}
	}
	hasSwap := exists(dir, "memory.memsw.limit_in_bytes")
	if limit == -1 && swap == 0 && hasSwap {
		// Unlimited memory with swap unset means both unlimited, as in
		// runc: memory.limit above memory.memsw.limit would be refused.
		swap = -1
	}
	if swap != 0 && !hasSwap {
		if swap != -1 {
			return fmt.Errorf("set memory.swap: no memory.memsw.limit_in_bytes: the kernel has no swap accounting (swapaccount=0 or CONFIG_MEMCG_SWAP off): %w", errors.ErrUnsupported)
		}
		swap = 0 // nothing to lift
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return setCtl(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10), "memory.limit")
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		return setCtl(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10), "memory.swap")
	}
	// The kernel keeps memory.limit <= memory.memsw.limit at every
	// write. When the new memsw limit is at least the current memory
	// limit, raise memsw first; otherwise the new pair is below the old
	// one and memory must come down first.
	first, second := writeLimit, writeSwap
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return fmt.Errorf("set memory.limit: %w", err)
		}
		if swap == -1 || cur <= uint64(swap) {
			first, second = writeSwap, writeLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if v := i64(mem.Reservation); v != 0 {
		if err := setCtl(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(v, 10), "memory.reservation"); err != nil {
			return err
		}
	}
	if mem.KernelTCP != nil {
		if exists(dir, "memory.kmem.tcp.limit_in_bytes") {
			if err := setCtl(dir, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*mem.KernelTCP, 10), "memory.kernelTCP"); err != nil {
				return err
			}
		} else {
			s.warn("memory.kernelTCP ignored: this kernel has no memory.kmem.tcp.limit_in_bytes")
		}
	}
	if mem.Swappiness != nil && !unsetSwappiness(*mem.Swappiness) {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("set memory.swappiness: %d is out of range 0-100", *mem.Swappiness)
		}
		if err := setCtl(dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10), "memory.swappiness"); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := setCtl(dir, "memory.oom_control", v, "memory.disableOOMKiller"); err != nil {
			return err
		}
	}
	return nil
}

// unsetSwappiness reports the value Docker and the spec's users send for
// "leave it": -1, which reaches the uint64 field as its largest value.
func unsetSwappiness(v uint64) bool { return v == math.MaxUint64 }

func (s *setter) memoryV2(dir string, mem *specs.LinuxMemory) error {
	limit, swap := i64(mem.Limit), i64(mem.Swap)
	if err := checkMemoryValues(limit, swap); err != nil {
		return err
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate {
		if err := checkUsage(dir, limit, "memory.current", swap, "memory.current", "memory.swap.current"); err != nil {
			return err
		}
	}
	swapMax, err := swapToV2(swap, limit)
	if err != nil {
		return err
	}
	if swapMax != "" {
		err := setCtl(dir, "memory.swap.max", swapMax, "memory.swap")
		// Without swap accounting there is no memory.swap.max; asking
		// for no swap or unlimited swap is then already true.
		if err != nil && !(errors.Is(err, os.ErrNotExist) && (swapMax == "max" || swapMax == "0")) {
			return err
		}
	}
	if limit != 0 {
		if err := setCtl(dir, "memory.max", limitString(limit), "memory.limit"); err != nil {
			return err
		}
	}
	if v := i64(mem.Reservation); v != 0 {
		if err := setCtl(dir, "memory.low", limitString(v), "memory.reservation"); err != nil {
			return err
		}
	}
	if mem.KernelTCP != nil {
		s.warn("memory.kernelTCP ignored: cgroup v2 has no separate TCP memory limit (it counts against memory.limit)")
	}
	if mem.Swappiness != nil && !unsetSwappiness(*mem.Swappiness) {
		// runc drops it silently; say so instead.
		s.warn("memory.swappiness ignored: cgroup v2 has no per-cgroup swappiness")
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		s.warn("memory.disableOOMKiller ignored: cgroup v2 cannot disable the OOM killer (memory.oom.group and memory.high are the nearest)")
	}
	if mem.UseHierarchy != nil && !*mem.UseHierarchy {
		s.warn("memory.useHierarchy=false ignored: cgroup v2 is always hierarchical")
	}
	return nil
}

// CheckMemory refuses the memory values Set refuses whatever the host: a
// limit or swap below -1, or swap below the limit. A driver that hands
// limits to someone else before Set writes them (package systemd) checks
// first, so that a refused update changes nothing.
func CheckMemory(mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	return checkMemoryValues(i64(mem.Limit), i64(mem.Swap))
}

func checkMemoryValues(limit, swap int64) error {
	if limit < -1 {
		return fmt.Errorf("set memory.limit: invalid value %d", limit)
	}
	if swap < -1 {
		return fmt.Errorf("set memory.swap: invalid value %d", swap)
	}
	if limit > 0 && swap > 0 && swap < limit {
		return fmt.Errorf("set memory.swap: memory+swap limit %d is below the memory limit %d", swap, limit)
	}
	return nil
}

// swapToV2 converts the spec's memory+swap limit into cgroup2's
// memory.swap.max, which counts swap alone, as runc does: "" means leave
// the file alone.
func swapToV2(swap, limit int64) (string, error) {
	switch {
	case limit == -1 && swap == 0:
		// Unlimited memory with swap unset: unlimited swap too.
		return "max", nil
	case swap == 0:
		return "", nil
	case swap == -1:
		return "max", nil
	case limit == 0 || limit == -1:
		return "", fmt.Errorf("set memory.swap: a memory+swap limit of %d needs a memory limit", swap)
	case swap < limit:
		return "", fmt.Errorf("set memory.swap: memory+swap limit %d is below the memory limit %d", swap, limit)
	}
	return strconv.FormatInt(swap-limit, 10), nil
}

// checkUsage implements memory.checkBeforeUpdate: it refuses a limit the
// cgroup already uses, which the kernel would otherwise meet by
// reclaiming and then OOM-killing. swapUsage2, when set, is added to
// swapUsage (cgroup2 counts swap apart from memory).
func checkUsage(dir string, limit int64, usageFile string, swap int64, swapUsageFile, swapUsage2 string) error {
	if limit > 0 {
		usage, err := readUint(dir, usageFile)
		if err != nil {
			return fmt.Errorf("check memory usage: %w", err)
		}
		if uint64(limit) <= usage {
			return fmt.Errorf("set memory.limit: refusing %d: at or below the current usage %d (memory.checkBeforeUpdate)", limit, usage)
		}
	}
	if swap > 0 && exists(dir, swapUsageFile) {
		usage, err := readUint(dir, swapUsageFile)
		if err != nil {
			return fmt.Errorf("check memory usage: %w", err)
		}
		if swapUsage2 != "" {
			if more, err := readUint(dir, swapUsage2); err == nil {
				usage += more
			}
		}
		if uint64(swap) <= usage {
			return fmt.Errorf("set memory.swap: refusing %d: at or below the current memory+swap usage %d (memory.checkBeforeUpdate)", swap, usage)
		}
	}
	return nil
}
