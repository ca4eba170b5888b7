package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/runtime"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// optionalInt is a flag that records whether it was given.
type optionalInt struct {
	set bool
	v   int64
}

func (o *optionalInt) String() string { return strconv.FormatInt(o.v, 10) }
func (o *optionalInt) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	o.set, o.v = true, v
	return nil
}

// parseSize accepts plain numbers, -1, and sizes with k/m/g suffixes (as
// runc's memory flags do).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q", s)
	}
	if v < -1 {
		return 0, fmt.Errorf("invalid value %d: negative", v)
	}
	if v == -1 {
		return -1, nil
	}
	return v * mult, nil
}

func cmdUpdate(g *globals, args []string) error {
	fs := flags("update")
	var resourcesFile, cpusetCpus, cpusetMems string
	var memory, reservation, swap, kmem, kmemTCP, shares, period, quota, burst, rtPeriod, rtRuntime, pids, blkioWeight, cpuIdle optionalInt
	fs.StringVar(&resourcesFile, "resources", "", "JSON file with the resources (- for stdin)")
	fs.StringVar(&resourcesFile, "r", "", "JSON file with the resources (- for stdin)")
	fs.Var(&memory, "memory", "memory limit in bytes")
	fs.Var(&reservation, "memory-reservation", "memory reservation in bytes")
	fs.Var(&swap, "memory-swap", "memory plus swap limit in bytes")
	fs.Var(&kmem, "kernel-memory", "kernel memory limit (ignored by current kernels)")
	fs.Var(&kmemTCP, "kernel-memory-tcp", "kernel TCP buffer limit")
	fs.Var(&shares, "cpu-shares", "CPU shares")
	fs.Var(&period, "cpu-period", "CFS period in microseconds")
	fs.Var(&quota, "cpu-quota", "CFS quota in microseconds")
	fs.Var(&burst, "cpu-burst", "CFS burst in microseconds")
	fs.Var(&rtPeriod, "cpu-rt-period", "realtime period in microseconds")
	fs.Var(&rtRuntime, "cpu-rt-runtime", "realtime runtime in microseconds")
	fs.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs to run on")
	fs.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes to use")
	fs.Var(&pids, "pids-limit", "maximum number of processes")
	fs.Var(&blkioWeight, "blkio-weight", "block I/O weight (10-1000)")
	fs.Var(&cpuIdle, "cpu-idle", "SCHED_IDLE for the cgroup (0 or 1)")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	r := &specs.LinuxResources{}
	if resourcesFile != "" {
		var in io.Reader = os.Stdin
		if resourcesFile != "-" {
			f, err := os.Open(resourcesFile)
			if err != nil {
				return fmt.Errorf("read resources: %w", err)
			}
			defer f.Close()
			in = f
		}
		dec := json.NewDecoder(in)
		dec.DisallowUnknownFields()
		if err := dec.Decode(r); err != nil {
			return usagef("parse resources %s: %v", resourcesFile, err)
		}
	}
	i64 := func(o optionalInt) *int64 { v := o.v; return &v }
	u64 := func(o optionalInt) *uint64 { v := uint64(o.v); return &v }
	if memory.set || reservation.set || swap.set || kmem.set || kmemTCP.set {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		if memory.set {
			r.Memory.Limit = i64(memory)
		}
		if reservation.set {
			r.Memory.Reservation = i64(reservation)
		}
		if swap.set {
			r.Memory.Swap = i64(swap)
		}
		if kmem.set {
			r.Memory.Kernel = i64(kmem)
		}
		if kmemTCP.set {
			r.Memory.KernelTCP = i64(kmemTCP)
		}
	}
	if shares.set || period.set || quota.set || burst.set || rtPeriod.set || rtRuntime.set || cpusetCpus != "" || cpusetMems != "" || cpuIdle.set {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		if shares.set {
			r.CPU.Shares = u64(shares)
		}
		if period.set {
			r.CPU.Period = u64(period)
		}
		if quota.set {
			r.CPU.Quota = i64(quota)
		}
		if burst.set {
			r.CPU.Burst = u64(burst)
		}
		if rtPeriod.set {
			r.CPU.RealtimePeriod = u64(rtPeriod)
		}
		if rtRuntime.set {
			r.CPU.RealtimeRuntime = i64(rtRuntime)
		}
		if cpuIdle.set {
			r.CPU.Idle = i64(cpuIdle)
		}
		r.CPU.Cpus, r.CPU.Mems = firstNonEmpty(cpusetCpus, r.CPU.Cpus), firstNonEmpty(cpusetMems, r.CPU.Mems)
	}
	if pids.set {
		r.Pids = &specs.LinuxPids{Limit: i64(pids)}
	}
	if blkioWeight.set {
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		w := uint16(blkioWeight.v)
		r.BlockIO.Weight = &w
	}
	c, err := runtime.Load(g.root, id)
	if err != nil {
		return err
	}
	defer c.Close()
	warnings, err := c.Update(r)
	for _, w := range warnings {
		g.logger.warnf("update: %s", w)
	}
	return err
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cmdEvents(g *globals, args []string) error {
	fs := flags("events")
	var stats bool
	var interval time.Duration
	fs.BoolVar(&stats, "stats", false, "print the container's statistics once and exit")
	fs.DurationVar(&interval, "interval", 5*time.Second, "how often statistics are printed")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	if interval <= 0 {
		return usagef("--interval must be positive")
	}
	c, err := runtime.Load(g.root, id)
	if err != nil {
		return err
	}
	if c.Status() == runtime.Stopped {
		c.Close()
		return fmt.Errorf("%w: container %s is stopped", runtime.ErrNotRunning, id)
	}
	enc := json.NewEncoder(os.Stdout)
	if stats {
		ev, err := c.Stats()
		c.Close()
		if err != nil {
			return err
		}
		return enc.Encode(ev)
	}
	c.Close()
	ctx, cancel := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer cancel()
	return c.Events(ctx, interval, func(ev *runtime.Event) error { return enc.Encode(ev) })
}
