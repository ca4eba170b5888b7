package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/moby/moby/api/types/container"
)

// StatsOptions are docker's GET /containers/{id}/stats parameters.
type StatsOptions struct {
	// Stream sends a sample every second until the container stops or
	// ctx ends.
	Stream bool
	// OneShot, without Stream, answers at once with no previous CPU
	// sample; otherwise the single answer waits a second for one.
	OneShot bool
}

// statsInterval is docker's sampling period.
const statsInterval = time.Second

// Stats samples a container's cgroup (CPU, memory, pids, block I/O) and
// its network interfaces in docker's StatsResponse shape, and calls fn
// with each sample. A container that does not run gives one zero sample.
func (e *Engine) Stats(ctx context.Context, ref string, opts StatsOptions, fn func(*container.StatsResponse) error) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	s, running, err := e.sample(ctx, c)
	if err != nil {
		return err
	}
	if !running || (!opts.Stream && opts.OneShot) {
		return fn(s)
	}
	for {
		if opts.Stream {
			if err := fn(s); err != nil {
				return err
			}
			if !running {
				return nil
			}
		}
		select {
		case <-time.After(statsInterval):
		case <-ctx.Done():
			return nil
		}
		prev := s
		if s, running, err = e.sample(ctx, c); err != nil {
			return err
		}
		if running {
			s.PreRead, s.PreCPUStats = prev.Read, prev.CPUStats
		}
		if !opts.Stream {
			return fn(s)
		}
	}
}

// sample takes one sample; running is false for a container without a
// process (the sample is then zero but for its names).
func (e *Engine) sample(ctx context.Context, c *ctr) (*container.StatsResponse, bool, error) {
	c.mu.Lock()
	running := c.task != nil
	pid := c.rec.State.Pid
	s := &container.StatsResponse{ID: c.id, Name: c.rec.Name, OSType: "linux", Read: time.Now().UTC()}
	c.mu.Unlock()
	if !running {
		s.Read = time.Time{}
		return s, false, nil
	}
	cg, err := e.runtimeStats(ctx, c)
	if err != nil {
		c.mu.Lock()
		stopped := c.task == nil
		c.mu.Unlock()
		if stopped {
			return &container.StatsResponse{ID: c.id, Name: s.Name, OSType: "linux"}, false, nil
		}
		return nil, false, err
	}
	s.Read = time.Now().UTC()
	s.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage:        cg.CPU.Usage.Total,
			PercpuUsage:       cg.CPU.Usage.Percpu,
			UsageInKernelmode: cg.CPU.Usage.Kernel,
			UsageInUsermode:   cg.CPU.Usage.User,
		},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  uint32(runtime.NumCPU()),
		ThrottlingData: container.ThrottlingData{
			Periods:          cg.CPU.Throttling.Periods,
			ThrottledPeriods: cg.CPU.Throttling.ThrottledPeriods,
			ThrottledTime:    cg.CPU.Throttling.ThrottledTime,
		},
	}
	limit := cg.Memory.Usage.Limit
	if total := hostMemory(); total > 0 && (limit == 0 || limit > total) {
		limit = total
	}
	s.MemoryStats = container.MemoryStats{
		Usage:    cg.Memory.Usage.Usage,
		MaxUsage: cg.Memory.Usage.Max,
		Failcnt:  cg.Memory.Usage.Failcnt,
		Limit:    limit,
		Stats:    cg.Memory.Raw,
	}
	s.PidsStats = container.PidsStats{Current: cg.Pids.Current, Limit: cg.Pids.Limit}
	s.BlkioStats = container.BlkioStats{
		IoServiceBytesRecursive: blkio(cg.Blkio.IoServiceBytesRecursive),
		IoServicedRecursive:     blkio(cg.Blkio.IoServicedRecursive),
		IoQueuedRecursive:       blkio(cg.Blkio.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkio(cg.Blkio.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkio(cg.Blkio.IoWaitTimeRecursive),
		IoMergedRecursive:       blkio(cg.Blkio.IoMergedRecursive),
		IoTimeRecursive:         blkio(cg.Blkio.IoTimeRecursive),
		SectorsRecursive:        blkio(cg.Blkio.SectorsRecursive),
	}
	if pid > 0 {
		s.Networks = netStats(pid)
	}
	return s, true, nil
}

func blkio(in []cgroups.BlkioEntry) []container.BlkioStatEntry {
	if len(in) == 0 {
		return nil
	}
	out := make([]container.BlkioStatEntry, 0, len(in))
	for _, b := range in {
		out = append(out, container.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/stat; 100 on every Linux
// architecture berth builds for.
const clockTicks = 100

// systemCPUUsage is the host's CPU time in nanoseconds (the "cpu" line
// of /proc/stat), docker's system_cpu_usage.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:8] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0
			}
			ticks += n
		}
		return ticks * (uint64(time.Second) / clockTicks)
	}
	return 0
}

// hostMemory is MemTotal in bytes.
func hostMemory() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

// netStats reads the container's interfaces (but loopback) from
// /proc/PID/net/dev, which shows the network namespace of PID.
func netStats(pid int) map[string]container.NetworkStats {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	out := map[string]container.NetworkStats{}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" || len(f) < 16 {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		out[name] = container.NetworkStats{
			RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11),
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
