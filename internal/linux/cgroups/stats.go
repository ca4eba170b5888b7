package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Stats is one sample of a cgroup's resource usage. Its shape and JSON
// names are those of the "data" of runc's `events --stats` (runc's
// types/events.go), which go-runc, containerd and podman decode, so the
// runtime can print it as it is. Units: bytes, nanoseconds, counts.
// Values the host cannot provide are zero, and omitted where runc omits
// them.
type Stats struct {
	CPU     CPUStats                `json:"cpu"`
	CPUSet  CPUSetStats             `json:"cpuset"`
	Memory  MemoryStats             `json:"memory"`
	Pids    PidsStats               `json:"pids"`
	Blkio   BlkioStats              `json:"blkio"`
	Hugetlb map[string]HugetlbStats `json:"hugetlb"`
}

// CPUStats is CPU time used and CFS bandwidth throttling.
type CPUStats struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUUsage is CPU time in nanoseconds. The per-CPU values exist on v1
// (cpuacct) only.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// Throttling is the CFS bandwidth controller's account: enforcement
// periods, those in which the cgroup ran out of quota, and the time it
// spent throttled (nanoseconds).
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUSetStats is the CPUs and memory nodes the cgroup may use.
type CPUSetStats struct {
	CPUs []uint16 `json:"cpus,omitempty"`
	Mems []uint16 `json:"mems,omitempty"`
}

// MemoryEntry is one memory counter: current usage, its high-water mark,
// the limit, and how often the limit was hit.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// MemoryStats is memory usage. Swap is memory+swap, as v1 counts it (on
// cgroup2 it is computed from the separate counters; its Max is 0). Raw
// is memory.stat as the kernel wrote it; Cache is its page-cache figure.
type MemoryStats struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

// PidsStats is the number of tasks (threads included) and the limit, 0
// meaning none.
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one per-device counter; Op is "Read", "Write", "Sync",
// "Async", "Discard" or "Total", or empty for counters without one.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// BlkioStats is block I/O per device. cgroup2 and BFQ/throttle-only v1
// kernels fill the first two; the others came from CFQ, gone in Linux
// 5.0.
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// HugetlbStats is one huge page size's usage in bytes; Max (the
// high-water mark) exists on v1 only.
type HugetlbStats struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// PSIStats is pressure stall information (cgroup2's *.pressure files):
// the share of time some or all tasks waited for the resource.
type PSIStats struct {
	Some PSIData `json:"some,omitempty"`
	Full PSIData `json:"full,omitempty"`
}

// PSIData is one PSI line: averages over 10, 60 and 300 seconds, in
// percent, and the total stall time in microseconds.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// Stats reads the cgroup's counters from whichever hierarchy holds each
// controller; on a hybrid host that is usually v1, plus the pressure
// files and hugetlb of cgroup2. A controller the cgroup lacks leaves its
// part zero. An error still comes with everything that could be read.
func (m *manager) Stats() (*Stats, error) {
	st := &Stats{Hugetlb: map[string]HugetlbStats{}}
	var errs []error
	for _, read := range []func(*Stats) error{
		m.statCPU, m.statCPUSet, m.statMemory, m.statPids, m.statBlkio, m.statHugetlb,
	} {
		if err := read(st); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return st, fmt.Errorf("read cgroup stats: %w", err)
	}
	return st, nil
}

// readOpt reads a control file that a kernel or configuration may lack:
// a missing file is ok == false, not an error.
func readOpt(dir, file string) (s string, ok bool, err error) {
	s, err = readFile(filepath.Join(dir, file))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	return s, err == nil, err
}

// readUintOpt is readOpt for a file holding one number.
func readUintOpt(dir, file string) (uint64, error) {
	s, ok, err := readOpt(dir, file)
	if !ok {
		return 0, err
	}
	return parseUint(s, filepath.Join(dir, file))
}

// psi reads a cgroup2 pressure file, nil when there is none.
func (m *manager) psi(file string) (*PSIStats, error) {
	d := m.paths[""]
	if d == "" {
		return nil, nil
	}
	s, ok, err := readOpt(d, file)
	if !ok {
		return nil, err
	}
	p, err := parsePSI(s)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(d, file), err)
	}
	return p, nil
}

func (m *manager) statPids(st *Stats) error {
	dir, _, ok := m.dirFor("pids", "pids")
	if !ok {
		return nil
	}
	var err error
	if st.Pids.Current, err = readUintOpt(dir, "pids.current"); err != nil {
		return err
	}
	limit, err := readUintOpt(dir, "pids.max")
	if err != nil {
		return err
	}
	if limit != maxUint {
		st.Pids.Limit = limit
	}
	return nil
}

func (m *manager) statCPUSet(st *Stats) error {
	dir, unified, ok := m.dirFor("cpuset", "cpuset")
	if !ok {
		return nil
	}
	cpus, mems := "cpuset.effective_cpus", "cpuset.effective_mems"
	if unified {
		cpus, mems = "cpuset.cpus.effective", "cpuset.mems.effective"
	}
	for _, f := range []struct {
		file string
		dst  *[]uint16
	}{{cpus, &st.CPUSet.CPUs}, {mems, &st.CPUSet.Mems}} {
		s, ok, err := readOpt(dir, f.file)
		if !ok {
			if err != nil {
				return err
			}
			continue
		}
		if *f.dst, err = parseCPUList(s); err != nil {
			return fmt.Errorf("parse %s: %w", filepath.Join(dir, f.file), err)
		}
	}
	return nil
}

func (m *manager) statHugetlb(st *Stats) error {
	dir, unified, ok := m.dirFor("hugetlb", "hugetlb")
	if !ok {
		return nil
	}
	sizes, err := HugePageSizes()
	if err != nil {
		return err
	}
	for _, size := range sizes {
		p := "hugetlb." + size
		var h HugetlbStats
		if unified {
			if h.Usage, err = readUintOpt(dir, p+".current"); err != nil {
				return err
			}
			ev, ok, err := readOpt(dir, p+".events")
			if err != nil {
				return err
			}
			if ok {
				h.Failcnt = parseFlatKeyed(ev)["max"]
			}
		} else {
			if h.Usage, err = readUintOpt(dir, p+".usage_in_bytes"); err != nil {
				return err
			}
			if h.Max, err = readUintOpt(dir, p+".max_usage_in_bytes"); err != nil {
				return err
			}
			if h.Failcnt, err = readUintOpt(dir, p+".failcnt"); err != nil {
				return err
			}
		}
		st.Hugetlb[size] = h
	}
	return nil
}

func (m *manager) statCPU(st *Stats) error {
	var err error
	switch {
	case m.paths["cpuacct"] != "":
		err = cpuacctStats(m.paths["cpuacct"], &st.CPU.Usage)
	case m.paths[""] != "":
		// cgroup2's cpu.stat has the usage lines with or without the cpu
		// controller (they are core accounting); the throttling lines
		// come with the controller.
		err = cpuStatV2(m.paths[""], &st.CPU)
	}
	if err != nil {
		return err
	}
	if d := m.paths["cpu"]; d != "" {
		if err := throttlingV1(d, &st.CPU.Throttling); err != nil {
			return err
		}
	}
	st.CPU.PSI, err = m.psi("cpu.pressure")
	return err
}

func (m *manager) statMemory(st *Stats) error {
	dir, unified, ok := m.dirFor("memory", "memory")
	var err error
	switch {
	case !ok:
	case unified:
		err = memoryStatsV2(dir, &st.Memory)
	default:
		err = memoryStatsV1(dir, &st.Memory)
	}
	if err != nil {
		return err
	}
	st.Memory.PSI, err = m.psi("memory.pressure")
	return err
}

func (m *manager) statBlkio(st *Stats) error {
	dir, unified, ok := m.dirFor("blkio", "io")
	var err error
	switch {
	case !ok:
	case unified:
		err = ioStatsV2(dir, &st.Blkio)
	default:
		err = blkioStatsV1(dir, &st.Blkio)
	}
	if err != nil {
		return err
	}
	st.Blkio.PSI, err = m.psi("io.pressure")
	return err
}
