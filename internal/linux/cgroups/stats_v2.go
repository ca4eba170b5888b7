package cgroups

import (
	"fmt"
	"path/filepath"
)

// Statistics from cgroup2 controllers, mapped onto runc's v1-shaped
// types the way runc maps them.

func cpuStatV2(dir string, c *CPUStats) error {
	s, ok, err := readOpt(dir, "cpu.stat")
	if !ok {
		return err
	}
	kv := parseFlatKeyed(s)
	c.Usage.Total = kv["usage_usec"] * 1000
	c.Usage.User = kv["user_usec"] * 1000
	c.Usage.Kernel = kv["system_usec"] * 1000
	c.Throttling.Periods = kv["nr_periods"]
	c.Throttling.ThrottledPeriods = kv["nr_throttled"]
	c.Throttling.ThrottledTime = kv["throttled_usec"] * 1000
	return nil
}

// memoryEntryV2 reads <prefix>.current, .max and .peak (Linux 5.19;
// memory.swap.peak 6.5).
func memoryEntryV2(dir, prefix string, e *MemoryEntry) error {
	var err error
	if e.Usage, err = readUintOpt(dir, prefix+".current"); err != nil {
		return err
	}
	if e.Limit, err = readUintOpt(dir, prefix+".max"); err != nil {
		return err
	}
	e.Max, err = readUintOpt(dir, prefix+".peak")
	return err
}

func memoryStatsV2(dir string, ms *MemoryStats) error {
	if err := memoryEntryV2(dir, "memory", &ms.Usage); err != nil {
		return err
	}
	if s, ok, err := readOpt(dir, "memory.events"); err != nil {
		return err
	} else if ok {
		// v1's failcnt counts hitting the limit; cgroup2 counts it as
		// the "max" event.
		ms.Usage.Failcnt = parseFlatKeyed(s)["max"]
	}
	var swap MemoryEntry
	if err := memoryEntryV2(dir, "memory.swap", &swap); err != nil {
		return err
	}
	// v1 reports memory+swap; so does runc on cgroup2, adding the two.
	// Their combined high-water mark is unknown.
	ms.Swap = MemoryEntry{Usage: swap.Usage + ms.Usage.Usage, Limit: swap.Limit}
	if exists(dir, "memory.swap.current") && swap.Limit != maxUint && ms.Usage.Limit != maxUint {
		ms.Swap.Limit += ms.Usage.Limit
	} else {
		ms.Swap.Limit = maxUint
	}
	s, ok, err := readOpt(dir, "memory.stat")
	if !ok {
		return err
	}
	ms.Raw = parseFlatKeyed(s)
	ms.Cache = ms.Raw["file"]
	return nil
}

func ioStatsV2(dir string, b *BlkioStats) error {
	s, ok, err := readOpt(dir, "io.stat")
	if !ok {
		return err
	}
	if b.IoServiceBytesRecursive, b.IoServicedRecursive, err = parseIOStat(s); err != nil {
		return fmt.Errorf("parse %s: %w", filepath.Join(dir, "io.stat"), err)
	}
	return nil
}
