package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/image"
	berthnet "github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/specconv"
	"github.com/berth-project/berth/internal/volume"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
)

// Config configures an Engine.
type Config struct {
	// DataRoot holds what survives a reboot: containers/<id>/ (records,
	// logs, hostname, hosts, resolv.conf) and volumes/.
	DataRoot string
	// ExecRoot holds what lives as long as the containers: containers/<id>/
	// (bundle, rootfs mount point, the shim's socket and files) and the
	// runtime's state (runtime/).
	ExecRoot string
	// Images is the image store; its snapshotter holds container roots.
	Images *image.Service
	// Runtime is the OCI runtime: a path, or a name looked up in PATH
	// (berth-runtime, runc, crun).
	Runtime string
	// Runtimes are the other runtimes a container may ask for by name
	// (docker's --runtime), name -> path or command name.
	Runtimes map[string]string
	// ShimBinary is berth-shim's path.
	ShimBinary string
	// InitPath is the init bound at /sbin/docker-init for --init; empty
	// refuses --init.
	InitPath string
	// Network attaches containers on the default bridge and
	// user-defined networks (network.go); nil gives every container
	// that has a namespace of its own loopback only.
	Network *berthnet.Manager
	// Events, when set, receives docker's container and volume events.
	// It is called synchronously and must not block.
	Events func(events.Message)
	// SystemdCgroup is docker's native.cgroupdriver=systemd: containers'
	// cgroups are systemd scopes ("slice:berth:id") that the runtime
	// asks systemd for over D-Bus, rather than directories berth makes.
	SystemdCgroup bool
	// CgroupParent is the parent of containers' cgroups: a path under
	// the cgroup root with cgroupfs (default /berth), a slice with
	// systemd (default system.slice). A container's --cgroup-parent wins.
	CgroupParent string
	// Host describes the host to specconv; nil detects it.
	Host *specconv.Host
	// Log receives the engine's own diagnostics (a restart that failed, a
	// shim that could not be deleted); nil discards them.
	Log func(format string, args ...any)
}

// Engine runs containers. Its methods are safe for concurrent use.
type Engine struct {
	cfg     Config
	images  *image.Service
	snaps   snapshot.Snapshotter
	volumes *volume.Store
	host    *specconv.Host
	runtime string // resolved path of the default runtime

	mu    sync.RWMutex
	ctrs  map[string]*ctr   // by full ID
	names map[string]string // "/name" -> ID
	execs map[string]*execSession

	// ctx ends when the engine closes: it stops the engine's goroutines
	// (exit monitors, restart timers, health checks), never containers.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// gmu orders goroutine starts before Close's wait: none starts once
	// closed is set.
	gmu    sync.Mutex
	closed bool
}

// New opens the engine on cfg's roots: loads every container record,
// re-attaches to the shims that still run (live restore), records the
// exits that happened meanwhile, and applies restart policies as docker's
// daemon does when it starts.
func New(cfg Config) (*Engine, error) {
	if cfg.DataRoot == "" || cfg.ExecRoot == "" {
		return nil, errors.New("engine: DataRoot and ExecRoot are required")
	}
	if cfg.Images == nil {
		return nil, errors.New("engine: an image store is required")
	}
	if cfg.ShimBinary == "" {
		return nil, errors.New("engine: the shim binary is required")
	}
	rt, err := lookRuntime(cfg.Runtime)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(cfg.DataRoot, "containers"), filepath.Join(cfg.ExecRoot, "containers"), filepath.Join(cfg.ExecRoot, "runtime")} {
		// 0711: container processes running as other users must reach
		// the files bound into them (hosts, resolv.conf) through here,
		// without listing anything.
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	vols, err := volume.New(filepath.Join(cfg.DataRoot, "volumes"))
	if err != nil {
		return nil, err
	}
	host := cfg.Host
	if host == nil {
		if host, err = specconv.DetectHost(); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	if cfg.SystemdCgroup || cfg.CgroupParent != "" {
		h := *host
		h.SystemdCgroup = cfg.SystemdCgroup
		switch {
		case cfg.CgroupParent != "":
			h.CgroupParent = cfg.CgroupParent
		case cfg.SystemdCgroup:
			h.CgroupParent = "" // specconv's default slice
		}
		host = &h
	}
	e := &Engine{
		cfg:     cfg,
		images:  cfg.Images,
		snaps:   cfg.Images.Snapshotter(),
		volumes: vols,
		host:    host,
		runtime: rt,
		ctrs:    map[string]*ctr{},
		names:   map[string]string{},
		execs:   map[string]*execSession{},
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if err := e.restore(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// lookRuntime resolves a runtime name or path.
func lookRuntime(rt string) (string, error) {
	if rt == "" {
		rt = "berth-runtime"
	}
	p, err := exec.LookPath(rt)
	if err != nil {
		return "", fmt.Errorf("engine: runtime %q: %w", rt, err)
	}
	return filepath.Abs(p)
}

// Close stops the engine's own work and lets go of the shims. Containers
// keep running: a new Engine on the same roots finds them again, as a
// restarted berthd does.
func (e *Engine) Close() error {
	e.gmu.Lock()
	e.closed = true
	e.gmu.Unlock()
	e.cancel()
	e.mu.RLock()
	ctrs := make([]*ctr, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		ctrs = append(ctrs, c)
	}
	e.mu.RUnlock()
	e.wg.Wait()
	for _, c := range ctrs {
		c.mu.Lock()
		c.task = nil // the shim keeps running; a Client holds nothing open
		c.mu.Unlock()
	}
	return nil
}

// Volumes is the engine's volume store.
func (e *Engine) Volumes() *volume.Store { return e.volumes }

// logf reports a diagnostic.
func (e *Engine) logf(format string, args ...any) {
	if e.cfg.Log != nil {
		e.cfg.Log(format, args...)
	}
}

// goroutine runs f as one of the engine's goroutines, which Close waits
// for; once the engine is closed, f does not run.
func (e *Engine) goroutine(f func()) {
	e.gmu.Lock()
	defer e.gmu.Unlock()
	if e.closed {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

func (e *Engine) dataDir(id string) string {
	return filepath.Join(e.cfg.DataRoot, "containers", id)
}

func (e *Engine) execDir(id string) string {
	return filepath.Join(e.cfg.ExecRoot, "containers", id)
}

func (e *Engine) runtimeRoot() string { return filepath.Join(e.cfg.ExecRoot, "runtime") }

// lookup finds a container as docker does: full ID, then name, then a
// unique ID prefix.
func (e *Engine) lookup(ref string) (*ctr, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.lookupLocked(ref)
}

func (e *Engine) lookupLocked(ref string) (*ctr, error) {
	if ref == "" {
		return nil, noSuchContainer(ref)
	}
	if c, ok := e.ctrs[ref]; ok {
		return c, nil
	}
	if id, ok := e.names["/"+strings.TrimPrefix(ref, "/")]; ok {
		return e.ctrs[id], nil
	}
	var found *ctr
	for id, c := range e.ctrs {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, invalidf("multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, noSuchContainer(ref)
	}
	return found, nil
}

// ImageInUse tells whether a container uses image id; the image store's
// Config.InUse hook.
func (e *Engine) ImageInUse(id digest.Digest) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, c := range e.ctrs {
		if c.imageID == id.String() {
			return true
		}
	}
	return false
}

// emit sends docker's event for a container.
func (e *Engine) emit(action events.Action, c *ctr, extra map[string]string) {
	if e.cfg.Events == nil {
		return
	}
	attrs := map[string]string{}
	// docker puts the image's and the container's labels among the
	// attributes; the name and image come last so labels cannot hide them.
	for k, v := range c.rec.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	attrs["name"] = strings.TrimPrefix(c.rec.Name, "/")
	attrs["image"] = c.rec.Config.Image
	now := time.Now()
	e.cfg.Events(events.Message{
		Type:     events.ContainerEventType,
		Action:   action,
		Actor:    events.Actor{ID: c.rec.ID, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	})
}

// emitVolume sends docker's event for a volume.
func (e *Engine) emitVolume(action events.Action, name string, extra map[string]string) {
	if e.cfg.Events == nil {
		return
	}
	attrs := map[string]string{"driver": volume.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	now := time.Now()
	e.cfg.Events(events.Message{
		Type:     events.VolumeEventType,
		Action:   action,
		Actor:    events.Actor{ID: name, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	})
}
