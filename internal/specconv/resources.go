package specconv

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	// minMemory is docker's smallest --memory.
	minMemory = 6 << 20
	// cpuPeriod is the CFS period docker uses for --cpus, in microseconds.
	cpuPeriod = 100000
	// minCPUShares and maxCPUShares are the kernel's bounds; docker clamps
	// --cpu-shares to them with a warning.
	minCPUShares = 2
	maxCPUShares = 262144
)

// resources maps docker's resource options to linux.resources, with
// docker's checks and its adjustments (swap twice the memory limit by
// default, shares clamped), each adjustment reported as a warning.
func resources(o *Options, h *Host, warn func(string, ...any)) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	mem, err := memory(o, h, warn)
	if err != nil {
		return nil, err
	}
	r.Memory = mem
	cpu, err := cpu(o, h, warn)
	if err != nil {
		return nil, err
	}
	r.CPU = cpu
	if o.PidsLimit != nil {
		limit := *o.PidsLimit
		if limit <= 0 {
			limit = -1 // docker: 0 and -1 both mean unlimited
		}
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if o.BlkioWeight != 0 {
		if o.BlkioWeight < 10 || o.BlkioWeight > 1000 {
			return nil, invalid("--blkio-weight %d: range of blkio weight is from 10 to 1000", o.BlkioWeight)
		}
		w := o.BlkioWeight
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return r, nil
}

func memory(o *Options, h *Host, warn func(string, ...any)) (*specs.LinuxMemory, error) {
	m := &specs.LinuxMemory{}
	set := false
	switch {
	case o.Memory < 0:
		return nil, invalid("--memory %d: cannot be negative", o.Memory)
	case o.Memory > 0 && o.Memory < minMemory:
		return nil, invalid("--memory %d: minimum memory limit allowed is 6MB", o.Memory)
	case o.MemorySwap < -1:
		return nil, invalid("--memory-swap %d: want -1 (unlimited) or a size", o.MemorySwap)
	case o.Memory == 0 && o.MemorySwap > 0:
		return nil, invalid("--memory-swap needs --memory: you should always set the memory limit when using memoryswap limit")
	case o.Memory > 0 && o.MemorySwap > 0 && o.MemorySwap < o.Memory:
		return nil, invalid("--memory-swap %d: minimum memoryswap limit should be larger than memory limit %d", o.MemorySwap, o.Memory)
	case o.MemoryReservation < 0:
		return nil, invalid("--memory-reservation %d: cannot be negative", o.MemoryReservation)
	case o.Memory > 0 && o.MemoryReservation > o.Memory:
		return nil, invalid("--memory-reservation %d: minimum memory limit can not be less than memory reservation limit %d", o.MemoryReservation, o.Memory)
	}
	if o.Memory > 0 {
		limit := o.Memory
		m.Limit, set = &limit, true
		swap := o.MemorySwap
		if swap == 0 {
			swap = 2 * o.Memory // docker's default: as much swap as memory
		}
		if !h.SwapLimit {
			if o.MemorySwap != 0 {
				warn("this host cannot limit swap: memory limited without swap")
			}
		} else {
			m.Swap = &swap
		}
	}
	if o.MemoryReservation > 0 {
		res := o.MemoryReservation
		m.Reservation, set = &res, true
	}
	if s := o.MemorySwappiness; s != nil && *s != -1 {
		if *s < 0 || *s > 100 {
			return nil, invalid("--memory-swappiness %d: valid memory swappiness range is 0-100", *s)
		}
		v := uint64(*s)
		m.Swappiness, set = &v, true
	}
	if o.OomKillDisable != nil {
		v := *o.OomKillDisable
		m.DisableOOMKiller, set = &v, true
	}
	if !set {
		return nil, nil
	}
	return m, nil
}

func cpu(o *Options, h *Host, warn func(string, ...any)) (*specs.LinuxCPU, error) {
	c := &specs.LinuxCPU{}
	set := false
	if o.NanoCPUs != 0 {
		if o.CPUPeriod != 0 {
			return nil, invalid("conflicting options: Nano CPUs and CPU Period cannot both be set")
		}
		if o.CPUQuota != 0 {
			return nil, invalid("conflicting options: Nano CPUs and CPU Quota cannot both be set")
		}
		// 0.01 CPU is a quota of 1ms per period, the kernel's minimum.
		if o.NanoCPUs < 1e7 || (h.NumCPU > 0 && o.NanoCPUs > int64(h.NumCPU)*1e9) {
			return nil, invalid("--cpus %s: range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available",
				strconv.FormatFloat(float64(o.NanoCPUs)/1e9, 'f', -1, 64), h.NumCPU, h.NumCPU)
		}
		period := uint64(cpuPeriod)
		quota := o.NanoCPUs * cpuPeriod / 1e9
		c.Period, c.Quota, set = &period, &quota, true
	}
	if o.CPUPeriod != 0 {
		if o.CPUPeriod < 1000 || o.CPUPeriod > 1000000 {
			return nil, invalid("--cpu-period %d: CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)", o.CPUPeriod)
		}
		p := uint64(o.CPUPeriod)
		c.Period, set = &p, true
	}
	if o.CPUQuota != 0 {
		if o.CPUQuota != -1 && o.CPUQuota < 1000 {
			return nil, invalid("--cpu-quota %d: CPU cfs quota can not be less than 1ms (i.e. 1000)", o.CPUQuota)
		}
		q := o.CPUQuota
		c.Quota, set = &q, true
	}
	if o.CPUShares != 0 {
		if o.CPUShares < 0 {
			return nil, invalid("--cpu-shares %d: cannot be negative", o.CPUShares)
		}
		s := uint64(o.CPUShares)
		if s < minCPUShares {
			warn("--cpu-shares %d is below the minimum %d: raised to %d", s, minCPUShares, minCPUShares)
			s = minCPUShares
		} else if s > maxCPUShares {
			warn("--cpu-shares %d is above the maximum %d: lowered to %d", s, maxCPUShares, maxCPUShares)
			s = maxCPUShares
		}
		c.Shares, set = &s, true
	}
	if o.CpusetCpus != "" {
		if err := checkCPUList("--cpuset-cpus", o.CpusetCpus, h.OnlineCPUs, "CPUs"); err != nil {
			return nil, err
		}
		c.Cpus, set = o.CpusetCpus, true
	}
	if o.CpusetMems != "" {
		if err := checkCPUList("--cpuset-mems", o.CpusetMems, h.OnlineMems, "memory nodes"); err != nil {
			return nil, err
		}
		c.Mems, set = o.CpusetMems, true
	}
	if !set {
		return nil, nil
	}
	return c, nil
}

// checkCPUList validates a kernel list ("0-3,5") and that the host has
// every entry.
func checkCPUList(flag, list, online, what string) error {
	want, err := parseList(list)
	if err != nil {
		return invalid("%s %q: %v", flag, list, err)
	}
	if online == "" {
		return nil
	}
	have, err := parseList(online)
	if err != nil {
		return nil // the host's own list is unreadable: let the kernel decide
	}
	for n := range want {
		if !have[n] {
			return invalid("%s: requested %s are not available - requested %s, available: %s", flag, what, list, online)
		}
	}
	return nil
}

// maxListEntry bounds list ranges so "0-4294967295" cannot make a map of
// billions of entries.
const maxListEntry = 1 << 16

func parseList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a >= maxListEntry {
			return nil, fmt.Errorf("invalid entry %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b >= maxListEntry {
				return nil, fmt.Errorf("invalid range %q", part)
			}
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}

// oomScoreAdj checks --oom-score-adj against the kernel's range.
func oomScoreAdj(v int) (*int, error) {
	if v < -1000 || v > 1000 {
		return nil, invalid("--oom-score-adj %d: range for oom score adj is [-1000, 1000]", v)
	}
	return &v, nil
}
