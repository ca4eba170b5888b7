package runtime

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Update applies new resource limits to a created, running or paused
// container and records them in its state, so that a later `state` or
// `update` starts from them. Fields left nil in r are unchanged.
func (c *Container) Update(r *specs.LinuxResources) (warnings []string, err error) {
	if s := c.Status(); s == Stopped {
		return nil, fmt.Errorf("%w: cannot update a stopped container", ErrWrongState)
	}
	m, err := c.cgroups()
	if err != nil {
		return nil, err
	}
	spec, err := c.spec()
	if err != nil {
		return nil, err
	}
	merged := mergeResources(spec.Linux.Resources, r)
	apply := *r
	if len(r.Devices) > 0 {
		// Devices are a list, not a field: the new list replaces the old,
		// completed with the runtime's own devices as at create.
		tmp := *spec
		tmpLinux := *tmp.Linux
		tmpLinux.Resources = &apply
		tmp.Linux = &tmpLinux
		apply = *cgroupResources(&tmp)
	}
	warnings, err = m.Set(&apply)
	if err != nil {
		return warnings, fmt.Errorf("update resources of %s: %w", c.st.ID, err)
	}
	spec.Linux.Resources = merged
	c.specJSON = nil
	return warnings, c.save()
}

// mergeResources overlays the non-nil fields of r onto old.
func mergeResources(old, r *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		cp := *r
		return &cp
	}
	m := *old
	if len(r.Devices) > 0 {
		m.Devices = r.Devices
	}
	if r.Memory != nil {
		mem := specs.LinuxMemory{}
		if m.Memory != nil {
			mem = *m.Memory
		}
		overlay(&mem.Limit, r.Memory.Limit)
		overlay(&mem.Reservation, r.Memory.Reservation)
		overlay(&mem.Swap, r.Memory.Swap)
		overlay(&mem.Kernel, r.Memory.Kernel)
		overlay(&mem.KernelTCP, r.Memory.KernelTCP)
		overlay(&mem.Swappiness, r.Memory.Swappiness)
		overlay(&mem.DisableOOMKiller, r.Memory.DisableOOMKiller)
		overlay(&mem.UseHierarchy, r.Memory.UseHierarchy)
		overlay(&mem.CheckBeforeUpdate, r.Memory.CheckBeforeUpdate)
		m.Memory = &mem
	}
	if r.CPU != nil {
		cpu := specs.LinuxCPU{}
		if m.CPU != nil {
			cpu = *m.CPU
		}
		overlay(&cpu.Shares, r.CPU.Shares)
		overlay(&cpu.Quota, r.CPU.Quota)
		overlay(&cpu.Burst, r.CPU.Burst)
		overlay(&cpu.Period, r.CPU.Period)
		overlay(&cpu.RealtimeRuntime, r.CPU.RealtimeRuntime)
		overlay(&cpu.RealtimePeriod, r.CPU.RealtimePeriod)
		overlay(&cpu.Idle, r.CPU.Idle)
		if r.CPU.Cpus != "" {
			cpu.Cpus = r.CPU.Cpus
		}
		if r.CPU.Mems != "" {
			cpu.Mems = r.CPU.Mems
		}
		m.CPU = &cpu
	}
	if r.Pids != nil {
		m.Pids = r.Pids
	}
	if r.BlockIO != nil {
		m.BlockIO = r.BlockIO
	}
	if r.HugepageLimits != nil {
		m.HugepageLimits = r.HugepageLimits
	}
	if r.Network != nil {
		m.Network = r.Network
	}
	if r.Rdma != nil {
		m.Rdma = r.Rdma
	}
	if r.Unified != nil {
		if m.Unified == nil {
			m.Unified = map[string]string{}
		}
		for k, v := range r.Unified {
			m.Unified[k] = v
		}
	}
	return &m
}

func overlay[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}
