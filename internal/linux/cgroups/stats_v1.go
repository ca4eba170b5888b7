package cgroups

import (
	"fmt"
	"path/filepath"
)

// Statistics from v1 controllers.

// userHZ is the unit of cpuacct.stat: USER_HZ, 100 on every architecture
// Linux runs on (the kernel converts to it for user space).
const userHZ = 100

func cpuacctStats(dir string, u *CPUUsage) error {
	var err error
	if u.Total, err = readUintOpt(dir, "cpuacct.usage"); err != nil {
		return err
	}
	if s, ok, err := readOpt(dir, "cpuacct.usage_percpu"); err != nil {
		return err
	} else if ok {
		if u.Percpu, err = parseUintList(s); err != nil {
			return fmt.Errorf("parse %s: %w", filepath.Join(dir, "cpuacct.usage_percpu"), err)
		}
	}
	if s, ok, err := readOpt(dir, "cpuacct.usage_all"); err != nil {
		return err
	} else if ok {
		if u.PercpuUser, u.PercpuKernel, err = parseUsageAll(s); err != nil {
			return fmt.Errorf("parse %s: %w", filepath.Join(dir, "cpuacct.usage_all"), err)
		}
	}
	// usage_user and usage_sys (Linux 4.7+) are nanoseconds; cpuacct.stat
	// has the same split in USER_HZ ticks.
	if exists(dir, "cpuacct.usage_user") {
		if u.User, err = readUintOpt(dir, "cpuacct.usage_user"); err != nil {
			return err
		}
		u.Kernel, err = readUintOpt(dir, "cpuacct.usage_sys")
		return err
	}
	s, ok, err := readOpt(dir, "cpuacct.stat")
	if !ok {
		return err
	}
	kv := parseFlatKeyed(s)
	u.User = kv["user"] * (1e9 / userHZ)
	u.Kernel = kv["system"] * (1e9 / userHZ)
	return nil
}

func throttlingV1(dir string, t *Throttling) error {
	s, ok, err := readOpt(dir, "cpu.stat")
	if !ok {
		return err
	}
	kv := parseFlatKeyed(s)
	t.Periods, t.ThrottledPeriods, t.ThrottledTime = kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]
	return nil
}

// memoryEntryV1 reads one v1 counter family: prefix + usage_in_bytes,
// max_usage_in_bytes, limit_in_bytes, failcnt. Families the kernel lacks
// (memsw without swap accounting, kmem since Linux 6.x) read as zero.
func memoryEntryV1(dir, prefix string, e *MemoryEntry) error {
	for _, f := range []struct {
		file string
		dst  *uint64
	}{
		{"usage_in_bytes", &e.Usage},
		{"max_usage_in_bytes", &e.Max},
		{"limit_in_bytes", &e.Limit},
		{"failcnt", &e.Failcnt},
	} {
		v, err := readUintOpt(dir, prefix+f.file)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	return nil
}

func memoryStatsV1(dir string, ms *MemoryStats) error {
	for _, f := range []struct {
		prefix string
		dst    *MemoryEntry
	}{
		{"memory.", &ms.Usage},
		{"memory.memsw.", &ms.Swap},
		{"memory.kmem.", &ms.Kernel},
		{"memory.kmem.tcp.", &ms.KernelTCP},
	} {
		if err := memoryEntryV1(dir, f.prefix, f.dst); err != nil {
			return err
		}
	}
	s, ok, err := readOpt(dir, "memory.stat")
	if !ok {
		return err
	}
	ms.Raw = parseFlatKeyed(s)
	ms.Cache = ms.Raw["cache"]
	return nil
}

// blkioStatsV1 reads the CFQ statistics where the kernel still has CFQ
// (before Linux 5.0). Newer kernels keep two partial accounts: BFQ's,
// for devices the BFQ scheduler serves, and the throttling layer's, for
// devices with a throttle rule in the cgroup (an unthrottled bio is not
// counted). Both count the same bios where both apply, so each device's
// entries come from whichever account has more for it. runc reads BFQ's
// alone when the files exist, and reports nothing for throttled devices
// under another scheduler.
func blkioStatsV1(dir string, b *BlkioStats) error {
	type file struct {
		name string
		dst  *[]BlkioEntry
	}
	read := func(files []file) error {
		for _, f := range files {
			s, ok, err := readOpt(dir, f.name)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if *f.dst, err = parseBlkio(s); err != nil {
				return fmt.Errorf("parse %s: %w", filepath.Join(dir, f.name), err)
			}
		}
		return nil
	}
	if exists(dir, "blkio.io_serviced_recursive") {
		return read([]file{
			{"blkio.io_service_bytes_recursive", &b.IoServiceBytesRecursive},
			{"blkio.io_serviced_recursive", &b.IoServicedRecursive},
			{"blkio.io_queued_recursive", &b.IoQueuedRecursive},
			{"blkio.io_service_time_recursive", &b.IoServiceTimeRecursive},
			{"blkio.io_wait_time_recursive", &b.IoWaitTimeRecursive},
			{"blkio.io_merged_recursive", &b.IoMergedRecursive},
			{"blkio.time_recursive", &b.IoTimeRecursive},
			{"blkio.sectors_recursive", &b.SectorsRecursive},
		})
	}
	var bfqBytes, bfqIOs, thrBytes, thrIOs []BlkioEntry
	if err := read([]file{
		{"blkio.bfq.io_service_bytes_recursive", &bfqBytes},
		{"blkio.bfq.io_serviced_recursive", &bfqIOs},
		{"blkio.throttle.io_service_bytes_recursive", &thrBytes},
		{"blkio.throttle.io_serviced_recursive", &thrIOs},
	}); err != nil {
		return err
	}
	b.IoServiceBytesRecursive = mergeByDevice(bfqBytes, thrBytes)
	b.IoServicedRecursive = mergeByDevice(bfqIOs, thrIOs)
	return nil
}

// mergeByDevice takes each device's entries from a or b, whichever counts
// more for it (its "Total" entry, else the sum of its entries).
func mergeByDevice(a, b []BlkioEntry) []BlkioEntry {
	type dev struct{ major, minor uint64 }
	weight := func(es []BlkioEntry) map[dev]uint64 {
		w := map[dev]uint64{}
		total := map[dev]bool{}
		for _, e := range es {
			d := dev{e.Major, e.Minor}
			switch {
			case e.Op == "Total":
				w[d], total[d] = e.Value, true
			case !total[d]:
				w[d] += e.Value
			}
		}
		return w
	}
	wa, wb := weight(a), weight(b)
	var out []BlkioEntry
	for _, e := range a {
		if d := (dev{e.Major, e.Minor}); wa[d] >= wb[d] {
			out = append(out, e)
		}
	}
	for _, e := range b {
		if d := (dev{e.Major, e.Minor}); wb[d] > wa[d] {
			out = append(out, e)
		}
	}
	return out
}
