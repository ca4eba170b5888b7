package engine

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
)

// dockerTime formats a state time as docker does: RFC 3339 with
// nanoseconds in UTC, and Go's zero time for "never".
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Inspect describes a container in docker's GET /containers/{id}/json
// shape. With size, SizeRw and SizeRootFs are computed (a walk of the
// writable layer).
func (e *Engine) Inspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.rec
	resp := &container.InspectResponse{
		ID:                      rec.ID,
		Created:                 dockerTime(rec.Created),
		Path:                    rec.Path,
		Args:                    slices.Clone(rec.Args),
		State:                   c.dockerState(),
		Image:                   rec.ImageID,
		ResolvConfPath:          filepath.Join(c.dir, resolvFile),
		HostnamePath:            filepath.Join(c.dir, hostnameFile),
		HostsPath:               filepath.Join(c.dir, hostsFile),
		LogPath:                 c.logPath(),
		Name:                    rec.Name,
		RestartCount:            rec.RestartCount,
		Driver:                  rec.Driver,
		Platform:                "linux",
		HostConfig:              cloneJSON(rec.HostConfig),
		Config:                  cloneJSON(rec.Config),
		Mounts:                  c.dockerMounts(),
		NetworkSettings:         e.networkSettings(c),
		ImageManifestDescriptor: rec.ImageManifest,
	}
	if rec.Args == nil {
		resp.Args = []string{}
	}
	if len(c.execIDs) > 0 {
		resp.ExecIDs = slices.Clone(c.execIDs)
	}
	if gd := e.graphDriver(ctx, c); gd != nil {
		resp.GraphDriver = gd
	}
	if size {
		rw, rootfs := e.sizes(ctx, c)
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	return resp, nil
}

// dockerState is docker's State. Callers hold c.mu.
func (c *ctr) dockerState() *container.State {
	st := c.rec.State
	s := &container.State{
		Status:     st.Status,
		Running:    st.Status == container.StateRunning || st.Status == container.StatePaused || st.Status == container.StateRestarting,
		Paused:     st.Status == container.StatePaused,
		Restarting: st.Status == container.StateRestarting,
		OOMKilled:  st.OOMKilled,
		Dead:       st.Status == container.StateDead,
		Pid:        st.Pid,
		ExitCode:   st.ExitCode,
		Error:      st.Error,
		StartedAt:  dockerTime(st.StartedAt),
		FinishedAt: dockerTime(st.FinishedAt),
	}
	if st.Health != nil {
		h := *st.Health
		h.Log = slices.Clone(st.Health.Log)
		s.Health = &h
	}
	return s
}

// dockerMounts are inspect's Mounts. Callers hold c.mu.
func (c *ctr) dockerMounts() []container.MountPoint {
	out := make([]container.MountPoint, 0, len(c.rec.Mounts))
	for _, mp := range c.rec.Mounts {
		out = append(out, mp.MountPoint)
	}
	return out
}

// networkSettings is inspect's NetworkSettings: the container's network
// by its mode, with no address (berth's networks come later), and its
// exposed ports, unpublished. Callers hold c.mu.
func (c *ctr) networkSettings() *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: network.PortMap{}, Networks: map[string]*network.EndpointSettings{}}
	mode := container.NetworkMode(c.rec.HostConfig.NetworkMode)
	if !mode.IsContainer() {
		ep := &network.EndpointSettings{}
		if nc := c.rec.NetworkingConfig; nc != nil {
			if cfg := nc.EndpointsConfig[string(mode)]; cfg != nil {
				ep = cfg.Copy()
			}
		}
		ns.Networks[string(mode)] = ep
	}
	if !mode.IsHost() && !mode.IsNone() {
		for p := range c.rec.Config.ExposedPorts {
			ns.Ports[p] = nil
		}
	}
	return ns
}

// graphDriver is inspect's GraphDriver: the overlay directories of the
// container's snapshot. Callers hold c.mu.
func (e *Engine) graphDriver(ctx context.Context, c *ctr) *storage.DriverData {
	mounts, err := e.snaps.Mounts(ctx, c.id)
	if err != nil || len(mounts) == 0 {
		return nil
	}
	gd := &storage.DriverData{Name: c.rec.Driver, Data: map[string]string{}}
	for _, o := range mounts[0].Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			gd.Data["LowerDir"] = v
		case "upperdir":
			gd.Data["UpperDir"] = v
		case "workdir":
			gd.Data["WorkDir"] = v
		}
	}
	if mounts[0].Type == "bind" {
		gd.Data["UpperDir"] = mounts[0].Source
	}
	gd.Data["MergedDir"] = filepath.Join(c.run, "rootfs")
	return gd
}

// sizes are the bytes of the writable layer and of the whole root
// (writable layer plus image). Callers hold c.mu.
func (e *Engine) sizes(ctx context.Context, c *ctr) (rw, rootfs int64) {
	if u, err := e.snaps.Usage(ctx, c.id); err == nil {
		rw = u.Size
	}
	rootfs = rw
	if img, err := e.images.Get(ctx, c.rec.ImageID); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs
}
