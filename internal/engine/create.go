package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-project/berth/internal/errdefs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/specconv"
	"github.com/docker/go-units"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// defaultShmSize is docker's /dev/shm size, shown in inspect.
const defaultShmSize = 64 << 20

// Create makes a container of cfg.Image with the user's settings, as
// docker's POST /containers/create: it resolves the image, names the
// container (a generated "mood_scientist" name when name is empty),
// prepares its writable snapshot over the image's layers, makes the
// volumes it needs, writes its hostname, hosts and resolv.conf, checks
// the OCI spec it would run with, and records it. It returns the ID and
// docker's warnings.
func (e *Engine) Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (_ string, warnings []string, err error) {
	if cfg == nil {
		return "", nil, invalidf("config cannot be empty in order to create a container")
	}
	cfg = cloneJSON(cfg)
	if hc == nil {
		hc = &container.HostConfig{}
	} else {
		hc = cloneJSON(hc)
	}
	if nc != nil {
		nc = cloneJSON(nc)
	}
	if cfg.Image == "" {
		return "", nil, invalidf("config.Image is empty: an image is required")
	}
	if warnings, err = e.checkHostConfig(cfg, hc, nc); err != nil {
		return "", nil, err
	}
	img, err := e.images.Get(ctx, cfg.Image)
	if err != nil {
		return "", nil, err
	}
	if len(img.Layers) == 0 {
		return "", nil, invalidf("image %s has no layers to run", cfg.Image)
	}

	cid := newID()
	fullName, err := e.reserveName(name, cid)
	if err != nil {
		return "", nil, err
	}
	// undo runs the cleanups in reverse when the create fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { e.releaseName(fullName, cid) })

	mergeImageConfig(cfg, &img.Config.Config)
	entry := cfg.Entrypoint
	if len(entry) == 1 && entry[0] == "" {
		entry = nil
	}
	argv := append(slices.Clone(entry), cfg.Cmd...)
	if len(argv) == 0 {
		return "", nil, invalidf("no command specified")
	}
	if cfg.Hostname == "" {
		if container.NetworkMode(hc.NetworkMode).IsHost() || container.UTSMode(hc.UTSMode).IsHost() {
			cfg.Hostname = e.host.Hostname
		} else {
			cfg.Hostname = cid[:12]
		}
	}
	if _, err := specconv.StopSignal(nil, cfg.StopSignal); err != nil {
		return "", nil, classify(errdefs.ErrInvalid, err)
	}

	rec := &record{
		ID:               cid,
		Name:             fullName,
		Created:          time.Now().UTC(),
		Path:             argv[0],
		Args:             argv[1:],
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: nc,
		ImageID:          img.ID.String(),
		ChainID:          img.Layers[len(img.Layers)-1].ChainID.String(),
		Driver:           e.images.Driver(),
		State:            state{Status: container.StateCreated},
		Runtime:          hc.Runtime,
		Network:          string(hc.NetworkMode),
	}
	if img.Target.Digest != "" {
		t := img.Target
		rec.ImageManifest = &t
	}
	c := newCtr(e, rec)

	for _, d := range []string{c.dir, c.run} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return "", nil, fmt.Errorf("create container %s: %w", cid, err)
		}
	}
	undo = append(undo, func() {
		os.RemoveAll(c.dir)
		os.RemoveAll(c.run)
	})
	if err := e.createEtcFiles(c.dir, cfg, hc); err != nil {
		return "", nil, err
	}

	plan := &mountPlan{e: e, id: cid, dests: map[string]bool{}}
	undo = append(undo, plan.rollback)
	if err := plan.build(ctx, cfg, hc); err != nil {
		return "", nil, err
	}
	rec.Mounts = plan.points

	if _, err := e.snaps.Prepare(ctx, cid, rec.ChainID, nil); err != nil {
		return "", nil, fmt.Errorf("create container %s: %w", cid, err)
	}
	undo = append(undo, func() {
		if err := e.snaps.Remove(context.Background(), cid); err != nil {
			e.logf("container %s: remove snapshot after a failed create: %v", cid, err)
		}
	})
	if err := c.mountRootfs(ctx, e); err != nil {
		return "", nil, err
	}
	undo = append(undo, func() { c.unmountRootfs() })
	// The spec is built now only to refuse bad settings at create, as
	// docker does; start builds it again from the record.
	_, specWarnings, err := e.buildSpec(c, rec, true)
	if err != nil {
		return "", nil, err
	}
	warnings = append(warnings, specWarnings...)

	if err := rec.save(c.dir); err != nil {
		return "", nil, err
	}
	e.mu.Lock()
	e.ctrs[cid] = c
	e.mu.Unlock()
	e.emit(events.ActionCreate, c, nil)
	return cid, warnings, nil
}

// reserveName takes a name for id: the user's (refused when taken, with
// docker's message) or a generated one.
func (e *Engine) reserveName(name, id string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if name == "" {
		n := generateName(func(n string) bool { _, taken := e.names[n]; return taken })
		e.names[n] = id
		return n, nil
	}
	n, err := normalizeName(name)
	if err != nil {
		return "", err
	}
	if other, taken := e.names[n]; taken {
		return "", conflictf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse the name.", n, other)
	}
	e.names[n] = id
	return n, nil
}

func (e *Engine) releaseName(name, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.names[name] == id {
		delete(e.names, name)
	}
}

// cloneJSON deep-copies an API value so the engine never shares slices or
// maps with its caller.
func cloneJSON[T any](v *T) *T {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("engine: %T does not encode: %v", v, err))
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		panic(fmt.Sprintf("engine: %T does not decode: %v", v, err))
	}
	return &out
}

// mergeImageConfig fills what the user left empty from the image, as
// docker's create does, so that inspect shows what the container runs:
// the image's env entries the user did not set, its labels under the
// user's, its exposed ports and volumes added, its Cmd unless the user
// gave an entrypoint or a command, and its entrypoint, working
// directory, user, stop signal, health check and ONBUILD.
func mergeImageConfig(cfg *container.Config, img *dockerspec.DockerOCIImageConfig) {
	if cfg.User == "" {
		cfg.User = img.User
	}
	for p := range img.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		if port, err := network.ParsePort(p); err == nil {
			cfg.ExposedPorts[port] = struct{}{}
		}
	}
	for _, kv := range img.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(cfg.Env, func(u string) bool { uk, _, _ := strings.Cut(u, "="); return uk == k }) {
			cfg.Env = append(cfg.Env, kv)
		}
	}
	if len(img.Labels) > 0 {
		labels := maps.Clone(img.Labels)
		maps.Copy(labels, cfg.Labels)
		cfg.Labels = labels
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = slices.Clone(img.Cmd)
			cfg.ArgsEscaped = img.ArgsEscaped
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	for v := range img.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if len(cfg.OnBuild) == 0 {
		cfg.OnBuild = slices.Clone(img.OnBuild)
	}
	if h := img.Healthcheck; h != nil {
		if cfg.Healthcheck == nil {
			hc := *h
			hc.Test = slices.Clone(h.Test)
			cfg.Healthcheck = &hc
		} else {
			u := cfg.Healthcheck
			if len(u.Test) == 0 {
				u.Test = slices.Clone(h.Test)
			}
			if u.Interval == 0 {
				u.Interval = h.Interval
			}
			if u.Timeout == 0 {
				u.Timeout = h.Timeout
			}
			if u.StartPeriod == 0 {
				u.StartPeriod = h.StartPeriod
			}
			if u.StartInterval == 0 {
				u.StartInterval = h.StartInterval
			}
			if u.Retries == 0 {
				u.Retries = h.Retries
			}
		}
	}
}

// checkHostConfig validates what specconv does not see and fills
// docker's defaults, so that inspect shows them: network mode "bridge",
// restart policy "no", IPC "private", the json-file log driver, the shm
// size, the cgroup namespace mode, the runtime.
func (e *Engine) checkHostConfig(cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) ([]string, error) {
	var warnings []string
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return nil, classify(errdefs.ErrInvalid, err)
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return nil, invalidf("can't create 'AutoRemove' container with restart policy")
	}
	if cfg.NetworkDisabled {
		hc.NetworkMode = network.NetworkNone
	}
	netWarnings, err := e.checkNetworking(cfg, hc, nc)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, netWarnings...)
	if !hc.IpcMode.Valid() {
		return nil, invalidf("invalid IPC mode: %s", hc.IpcMode)
	}
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	for _, m := range []struct {
		kind string
		ref  string
	}{{"IPC", hc.IpcMode.Container()}, {"PID", hc.PidMode.Container()}} {
		if m.ref != "" {
			if _, err := e.lookup(m.ref); err != nil {
				return nil, err
			}
		}
	}
	if !hc.PidMode.Valid() {
		return nil, invalidf("invalid PID mode: %s", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return nil, invalidf("invalid UTS mode: %s", hc.UTSMode)
	}
	if !hc.UsernsMode.Valid() {
		return nil, invalidf("invalid user namespace mode: %s", hc.UsernsMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return nil, invalidf("invalid cgroup namespace mode: %s", hc.CgroupnsMode)
	}
	if hc.CgroupnsMode == "" {
		if e.host.CgroupV2 {
			hc.CgroupnsMode = container.CgroupnsModePrivate
		} else {
			hc.CgroupnsMode = container.CgroupnsModeHost
		}
	}
	if !hc.Cgroup.Valid() || hc.Cgroup != "" {
		return nil, invalidf("--cgroup %q is not supported", hc.Cgroup)
	}
	if !hc.Isolation.IsDefault() {
		return nil, invalidf("invalid isolation: %q - linux only supports 'default'", hc.Isolation)
	}
	if len(hc.StorageOpt) > 0 {
		return nil, invalidf("--storage-opt is not supported by the %s snapshotter", e.images.Driver())
	}
	if len(hc.DeviceRequests) > 0 {
		return nil, invalidf("could not select device driver \"%s\" with capabilities: %v", hc.DeviceRequests[0].Driver, hc.DeviceRequests[0].Capabilities)
	}
	if hc.ShmSize < 0 {
		return nil, invalidf("SHM size can not be less than 0")
	}
	if hc.ShmSize == 0 && !hc.IpcMode.IsHost() && !hc.IpcMode.IsNone() && !hc.IpcMode.IsContainer() {
		hc.ShmSize = defaultShmSize
	}
	if err := checkLogConfig(&hc.LogConfig); err != nil {
		return nil, err
	}
	if hc.Runtime == "" {
		hc.Runtime = filepath.Base(e.runtime)
	} else if _, err := e.runtimePath(hc.Runtime); err != nil {
		return nil, err
	}
	if hc.Init != nil && *hc.Init && e.cfg.InitPath == "" {
		return nil, invalidf("--init: no init binary is configured (berthd --init-path)")
	}
	if cfg.StopTimeout != nil && *cfg.StopTimeout < -1 {
		return nil, invalidf("invalid stop timeout %d", *cfg.StopTimeout)
	}
	if h := cfg.Healthcheck; h != nil {
		if err := checkHealthConfig(h); err != nil {
			return nil, err
		}
	}
	return warnings, nil
}

// runtimePath resolves the runtime a container asked for by name.
func (e *Engine) runtimePath(name string) (string, error) {
	if name == "" || name == filepath.Base(e.runtime) || name == e.runtime {
		return e.runtime, nil
	}
	if p, ok := e.cfg.Runtimes[name]; ok {
		return lookRuntime(p)
	}
	return "", invalidf("unknown or invalid runtime name: %s", name)
}

// checkLogConfig accepts docker's json-file driver and its options.
func checkLogConfig(lc *container.LogConfig) error {
	if lc.Type == "" {
		lc.Type = "json-file"
	}
	if lc.Type != "json-file" {
		return invalidf("logger: no log driver named '%s' is registered", lc.Type)
	}
	if lc.Config == nil {
		lc.Config = map[string]string{}
	}
	for k, v := range lc.Config {
		switch k {
		case "max-size":
			if v != "-1" {
				if _, err := units.RAMInBytes(v); err != nil {
					return invalidf("invalid max-size %q for the json-file log driver: %v", v, err)
				}
			}
		case "max-file":
			var n int
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 1 {
				return invalidf("invalid max-file %q for the json-file log driver: must be a number of at least 1", v)
			}
		case "compress", "labels", "labels-regex", "env", "env-regex", "tag":
		default:
			return invalidf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	return nil
}

// logConfig is the shim's log cap from a container's --log-opt.
func logConfig(lc container.LogConfig) logs.Config {
	c := logs.DefaultConfig()
	if v, ok := lc.Config["max-size"]; ok {
		if v == "-1" {
			c.MaxSize = -1
		} else if n, err := units.RAMInBytes(v); err == nil {
			c.MaxSize = n
		}
	}
	if v, ok := lc.Config["max-file"]; ok {
		fmt.Sscanf(v, "%d", &c.MaxFiles)
	}
	return c
}

// build turns the user's binds, mounts, tmpfs, --volumes-from and the
// image's VOLUMEs into the container's mount points.
func (p *mountPlan) build(ctx context.Context, cfg *container.Config, hc *container.HostConfig) error {
	for _, b := range hc.Binds {
		if err := p.addBind(ctx, b); err != nil {
			return err
		}
	}
	for _, m := range hc.Mounts {
		if err := p.addMount(ctx, m, hc.Tmpfs); err != nil {
			return err
		}
	}
	for dest := range hc.Tmpfs {
		d, err := cleanDest("tmpfs", dest)
		if err != nil {
			return err
		}
		if err := p.claim(d); err != nil {
			return err
		}
	}
	for _, from := range hc.VolumesFrom {
		if err := p.addVolumesFrom(from); err != nil {
			return err
		}
	}
	// The image's VOLUMEs (and -v /path, which the docker CLI sends as
	// Config.Volumes) that no mount covers become anonymous volumes
	// filled from the image.
	for _, dest := range slices.Sorted(maps.Keys(cfg.Volumes)) {
		d, err := cleanDest("volume", dest)
		if err != nil {
			return err
		}
		if p.dests[d] {
			continue
		}
		p.dests[d] = true
		if err := p.addVolume(ctx, "", d, "", true, true, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// mountRootfs mounts the container's snapshot at <exec>/rootfs.
func (c *ctr) mountRootfs(ctx context.Context, e *Engine) error {
	if c.rootfs != "" {
		return nil
	}
	mounts, err := e.snaps.Mounts(ctx, c.id)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	target := filepath.Join(c.run, "rootfs")
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	// A mount left from before a berthd restart is reused.
	if mounted(target) {
		c.rootfs = target
		return nil
	}
	if err := snapshot.MountAll(mounts, target); err != nil {
		return fmt.Errorf("container %s: mount rootfs: %w", c.id, err)
	}
	c.rootfs = target
	return nil
}

// unmountRootfs undoes mountRootfs.
func (c *ctr) unmountRootfs() error {
	target := filepath.Join(c.run, "rootfs")
	c.rootfs = ""
	if err := snapshot.Unmount(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
