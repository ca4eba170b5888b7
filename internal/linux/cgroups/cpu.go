package cgroups

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The spec's cpu fields are v1's: shares (cpu.shares, 2-262144, default
// 1024), the CFS bandwidth quota/period/burst in microseconds, and the
// realtime budget. cgroup2 folds quota and period into cpu.max, turns
// shares into cpu.weight (1-10000, default 100) and has no realtime
// budget.

func (s *setter) cpu(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if c.Shares == nil && c.Quota == nil && c.Period == nil && c.Burst == nil &&
		c.RealtimeRuntime == nil && c.RealtimePeriod == nil && c.Idle == nil {
		return nil
	}
	dir, unified, ok := s.m.dirFor("cpu", "cpu")
	if !ok {
		return errNoController("cpu", "cpu")
	}
	if unified {
		return s.cpuV2(dir, c)
	}
	return s.cpuV1(dir, c)
}

func (s *setter) cpuV1(dir string, c *specs.LinuxCPU) error {
	// A SCHED_IDLE group refuses a shares write (EINVAL), so leaving
	// idle comes before the shares and entering it after.
	idle := c.Idle != nil && *c.Idle != 0
	if c.Idle != nil && !idle {
		if err := setIdle(dir, 0); err != nil {
			return err
		}
	}
	if v := u64(c.Shares); v != 0 {
		if err := setCtl(dir, "cpu.shares", strconv.FormatUint(v, 10), "cpu.shares"); err != nil {
			return err
		}
		// The kernel clamps out-of-range shares without complaint;
		// report the clamp rather than run with a value nobody asked for.
		got, err := readUint(dir, "cpu.shares")
		if err != nil {
			return fmt.Errorf("set cpu.shares: %w", err)
		}
		if got != v {
			return fmt.Errorf("set cpu.shares to %d: out of range, the kernel allows %d", v, got)
		}
	}
	if err := setBandwidth(dir, c, "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us", false); err != nil {
		return err
	}
	// The runtime must fit in the period at every write: a period below
	// the old runtime is refused (EINVAL) until the runtime comes down,
	// so such a period is retried after the runtime.
	rtPeriod, rtRuntime := u64(c.RealtimePeriod), i64(c.RealtimeRuntime)
	rtPending := false
	if rtPeriod != 0 {
		err := setCtl(dir, "cpu.rt_period_us", strconv.FormatUint(rtPeriod, 10), "cpu.realtimePeriod")
		if err != nil {
			if !errors.Is(err, unix.EINVAL) || rtRuntime == 0 {
				return err
			}
			rtPending = true
		}
	}
	if rtRuntime != 0 {
		if err := setCtl(dir, "cpu.rt_runtime_us", strconv.FormatInt(rtRuntime, 10), "cpu.realtimeRuntime"); err != nil {
			return err
		}
	}
	if rtPending {
		if err := setCtl(dir, "cpu.rt_period_us", strconv.FormatUint(rtPeriod, 10), "cpu.realtimePeriod"); err != nil {
			return err
		}
	}
	if idle {
		return setIdle(dir, *c.Idle)
	}
	return nil
}

func (s *setter) cpuV2(dir string, c *specs.LinuxCPU) error {
	idle := c.Idle != nil && *c.Idle != 0
	if c.Idle != nil && !idle {
		if err := setIdle(dir, 0); err != nil {
			return err
		}
	}
	if v := u64(c.Shares); v != 0 {
		w := SharesToWeight(v)
		if err := setCtl(dir, "cpu.weight", strconv.FormatUint(w, 10), "cpu.shares"); err != nil {
			return err
		}
	}
	if err := setBandwidth(dir, c, "cpu.max", "", "cpu.max.burst", true); err != nil {
		return err
	}
	if c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
		s.warn("cpu.realtimeRuntime and cpu.realtimePeriod ignored: cgroup v2 has no realtime budget")
	}
	if idle {
		return setIdle(dir, *c.Idle)
	}
	return nil
}

func setIdle(dir string, v int64) error {
	if !exists(dir, "cpu.idle") {
		if v == 0 {
			return nil // not idle is all a kernel without cpu.idle knows
		}
		return fmt.Errorf("set cpu.idle: this kernel has no cpu.idle (Linux 5.15+): %w", errors.ErrUnsupported)
	}
	return setCtl(dir, "cpu.idle", strconv.FormatInt(v, 10), "cpu.idle")
}

// setBandwidth writes the CFS quota, period and burst. On v1 they are
// three files; on v2 (unified) quota and period share cpu.max ("max
// 100000") and periodFile is unused.
//
// The kernel checks each write against the values already there and the
// parent's limits: shrinking the period under the old quota, or raising
// the burst over the old quota, can fail with EINVAL although the full
// new set is valid. As in runc, such a write is retried once the quota
// is in place.
func setBandwidth(dir string, c *specs.LinuxCPU, quotaFile, periodFile, burstFile string, unified bool) error {
	quota, period := i64(c.Quota), u64(c.Period)
	if unified {
		burstPending := false
		if c.Burst != nil {
			if err := setBurst(dir, burstFile, *c.Burst); err != nil {
				if !errors.Is(err, unix.EINVAL) || (quota == 0 && period == 0) {
					return err
				}
				burstPending = true
			}
		}
		if err := writeCPUMax(dir, quota, period); err != nil {
			return err
		}
		if burstPending {
			return setBurst(dir, burstFile, *c.Burst)
		}
		return nil
	}
	periodPending := false
	if period != 0 {
		err := setCtl(dir, periodFile, strconv.FormatUint(period, 10), "cpu.period")
		if err != nil {
			if !errors.Is(err, unix.EINVAL) || quota == 0 {
				return err
			}
			periodPending = true
		}
	}
	burstPending := false
	if c.Burst != nil {
		if err := setBurst(dir, burstFile, *c.Burst); err != nil {
			if !errors.Is(err, unix.EINVAL) || quota == 0 {
				return err
			}
			burstPending = true
		}
	}
	if quota != 0 {
		if err := setCtl(dir, quotaFile, strconv.FormatInt(max(quota, -1), 10), "cpu.quota"); err != nil {
			return err
		}
	}
	if periodPending {
		if err := setCtl(dir, periodFile, strconv.FormatUint(period, 10), "cpu.period"); err != nil {
			return err
		}
	}
	if burstPending {
		return setBurst(dir, burstFile, *c.Burst)
	}
	return nil
}

func setBurst(dir, file string, v uint64) error {
	if !exists(dir, file) {
		if v == 0 {
			return nil
		}
		return fmt.Errorf("set cpu.burst: this kernel has no %s (Linux 5.14+): %w", file, errors.ErrUnsupported)
	}
	return setCtl(dir, file, strconv.FormatUint(v, 10), "cpu.burst")
}

// writeCPUMax writes cgroup2's "quota period" pair. An unset half keeps
// its current value: the kernel keeps the period when only the quota is
// written, and a period alone is written with the quota read back, where
// runc would reset the quota to "max".
func writeCPUMax(dir string, quota int64, period uint64) error {
	if quota == 0 && period == 0 {
		return nil
	}
	q := ""
	switch {
	case quota > 0:
		q = strconv.FormatInt(quota, 10)
	case quota < 0:
		q = "max"
	default:
		cur, err := readFile(filepath.Join(dir, "cpu.max"))
		if err != nil {
			return fmt.Errorf("set cpu.period: %w", err)
		}
		q, _, _ = strings.Cut(cur, " ")
	}
	v := q
	if period != 0 {
		v += " " + strconv.FormatUint(period, 10)
	}
	return setCtl(dir, "cpu.max", v, "cpu.quota/cpu.period")
}

// SharesToWeight converts v1 cpu.shares [2, 262144] to cgroup2 cpu.weight
// [1, 10000] with the curve runc 1.3 and crun 1.23 adopted (opencontainers
// /cgroups#20, crun#1721): a quadratic in log2(shares) through the two
// ends and the defaults, so that the default 1024 shares gives the default
// weight 100. The linear map used before, 1 + (shares-2)*9999/262142,
// turned 1024 into 39, leaving a container that asked for nothing special
// with less CPU than its uncontained neighbours (kubernetes#131216).
func SharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exp := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exp)))
}
