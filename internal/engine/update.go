package engine

import (
	"context"
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update changes a container's resource limits and restart policy, as
// docker's POST /containers/{id}/update (docker update). A field left
// zero keeps its value (PidsLimit: nil); the new limits are checked as
// create checks them, recorded in HostConfig (so the next start has
// them), and applied at once to a running or paused container through
// the runtime's `update`. A limit the runtime refuses leaves the record
// as it was. The resources docker update cannot change (devices,
// ulimits, ...) are ignored, as dockerd ignores them.
func (e *Engine) Update(ctx context.Context, ref string, u container.UpdateConfig) (container.UpdateResponse, error) {
	resp := container.UpdateResponse{Warnings: []string{}}
	c, err := e.lookup(ref)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removing || c.removed {
		return resp, conflictf("Cannot update container %s: container is marked for removal", c.id)
	}
	cannot := func(err error) error {
		return classify(errdefs.ErrInvalid, fmt.Errorf("Cannot update container %s: %w", c.id, err))
	}
	hc := cloneJSON(c.rec.HostConfig)
	if err := updateHostConfig(hc, &u); err != nil {
		return resp, cannot(err)
	}
	rec := *c.rec
	rec.HostConfig = hc
	// The new limits are checked by building the spec the next start
	// would run, which reads the container's root (its users); a
	// stopped container's is mounted for that while.
	if c.rootfs == "" {
		if err := c.mountRootfs(ctx, e); err != nil {
			return resp, err
		}
		defer func() {
			if err := c.unmountRootfs(); err != nil {
				e.logf("container %s: %v", c.id, err)
			}
		}()
	}
	spec, warnings, err := e.buildSpec(c, &rec, true)
	if err != nil {
		return resp, err
	}
	resp.Warnings = append(resp.Warnings, warnings...)
	if c.task != nil && c.rec.State.running() {
		rt, err := e.runtimeOf(c)
		if err != nil {
			return resp, err
		}
		if err := rt.Update(ctx, c.id, updatable(spec.Linux.Resources)); err != nil {
			return resp, fmt.Errorf("Cannot update container %s: %w", c.id, err)
		}
	}
	c.rec.HostConfig = hc
	if err := c.save(); err != nil {
		return resp, err
	}
	e.emit(events.ActionUpdate, c, nil)
	return resp, nil
}

// updateHostConfig applies docker update's request to hc as dockerd
// does: non-zero fields replace, and --cpus cannot replace a CFS period
// or quota already set, nor the reverse.
func updateHostConfig(hc *container.HostConfig, u *container.UpdateConfig) error {
	r, cur := &u.Resources, &hc.Resources
	switch {
	case r.NanoCPUs > 0 && cur.CPUPeriod > 0:
		return invalidf("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
	case r.NanoCPUs > 0 && cur.CPUQuota > 0:
		return invalidf("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
	case r.CPUPeriod > 0 && cur.NanoCPUs > 0:
		return invalidf("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
	case r.CPUQuota > 0 && cur.NanoCPUs > 0:
		return invalidf("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	case r.Memory > 0 && r.MemorySwap == 0 && cur.MemorySwap > 0 && r.Memory > cur.MemorySwap:
		return invalidf("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
	}
	if r.BlkioWeight != 0 {
		cur.BlkioWeight = r.BlkioWeight
	}
	if r.CPUShares != 0 {
		cur.CPUShares = r.CPUShares
	}
	if r.NanoCPUs != 0 {
		cur.NanoCPUs = r.NanoCPUs
	}
	if r.CPUPeriod != 0 {
		cur.CPUPeriod = r.CPUPeriod
	}
	if r.CPUQuota != 0 {
		cur.CPUQuota = r.CPUQuota
	}
	if r.CpusetCpus != "" {
		cur.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		cur.CpusetMems = r.CpusetMems
	}
	if r.Memory != 0 {
		cur.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		cur.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		cur.MemoryReservation = r.MemoryReservation
	}
	if r.PidsLimit != nil {
		v := *r.PidsLimit
		cur.PidsLimit = &v
	}
	if u.RestartPolicy.Name != "" {
		if err := container.ValidateRestartPolicy(u.RestartPolicy); err != nil {
			return classify(errdefs.ErrInvalid, err)
		}
		if hc.AutoRemove && !u.RestartPolicy.IsNone() {
			return invalidf("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	return nil
}

// updatable is what a running container's cgroup takes from its new
// resources: memory, CPU, pids and the block I/O weight. Devices stay
// as the container was created with them.
func updatable(r *specs.LinuxResources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if r == nil {
		return out
	}
	out.Memory, out.CPU, out.Pids = r.Memory, r.CPU, r.Pids
	if r.BlockIO != nil && r.BlockIO.Weight != nil {
		out.BlockIO = &specs.LinuxBlockIO{Weight: r.BlockIO.Weight}
	}
	return out
}
