package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/internal/runtimeclient"
)

// runtimeOf is the container's OCI runtime, for the queries the engine
// makes itself (the shim makes the rest): runc's command line through
// internal/runtimeclient, so runc and crun serve as well.
func (e *Engine) runtimeOf(c *ctr) (*runtimeclient.Runtime, error) {
	rt, err := e.runtimePath(c.rec.HostConfig.Runtime)
	if err != nil {
		return nil, err
	}
	return &runtimeclient.Runtime{Path: rt, Root: e.runtimeRoot(), SystemdCgroup: e.cfg.SystemdCgroup}, nil
}

// forceDeleteRuntime removes what the runtime may still hold of c (its
// state, cgroup, processes) when the shim could not. Callers hold c.mu.
func (e *Engine) forceDeleteRuntime(c *ctr) {
	// runc, crun and berth-runtime keep a container's state at ROOT/ID:
	// without it there is nothing to delete, and no process to run.
	if _, err := os.Stat(filepath.Join(e.runtimeRoot(), c.id)); errors.Is(err, os.ErrNotExist) {
		return
	}
	rt, err := e.runtimeOf(c)
	if err != nil {
		e.logf("container %s: %v", c.id, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Delete(ctx, c.id, true); err != nil && !errors.Is(err, runtimeclient.ErrNotExist) {
		e.logf("container %s: %v", c.id, err)
	}
}

// runtimePids lists the container's processes (host PIDs), with the
// runtime's ps.
func (e *Engine) runtimePids(ctx context.Context, c *ctr) ([]int, error) {
	rt, err := e.runtimeOf(c)
	if err != nil {
		return nil, err
	}
	return rt.Ps(ctx, c.id)
}

// runtimeStats samples the container's cgroup with the runtime's
// `events --stats`.
func (e *Engine) runtimeStats(ctx context.Context, c *ctr) (*cgroups.Stats, error) {
	rt, err := e.runtimeOf(c)
	if err != nil {
		return nil, err
	}
	return rt.Stats(ctx, c.id)
}
