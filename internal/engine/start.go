package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/berth-project/berth/internal/shim"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
)

// Start starts a created or stopped container, as docker's POST
// /containers/{id}/start: its root and volumes are mounted, its bundle
// written, its shim spawned (which creates it in the runtime) and told to
// start the process. A running container gives ErrNotModified. A --rm
// container that fails to start is removed before Start returns, as
// dockerd does: the docker CLI waits for that removal before it reports
// the error.
func (e *Engine) Start(ctx context.Context, ref string) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	remove, err := e.start(ctx, c, ref)
	if remove {
		if rerr := e.Remove(context.WithoutCancel(ctx), c.id, RemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
			e.logf("container %s: --rm after a failed start: %v", c.id, rerr)
		}
	}
	return err
}

// start is Start under the container's lock; remove tells that the
// start was tried and failed, and the container goes with --rm.
func (e *Engine) start(ctx context.Context, c *ctr, ref string) (remove bool, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removing || c.removed {
		return false, conflictf("container is marked for removal and cannot be started")
	}
	switch c.rec.State.Status {
	case container.StateRunning:
		return false, notModified("container %s is already running", ref)
	case container.StatePaused:
		return false, conflictf("cannot start a paused container, try unpause instead")
	case container.StateRestarting:
		c.cancelRestart()
	}
	c.rec.HasBeenManuallyStopped = false
	c.exitOnNext = false
	if err := e.startLocked(ctx, c); err != nil {
		return c.rec.HostConfig.AutoRemove, e.startFailed(c, err)
	}
	return false, nil
}

// startFailed records a start that failed as docker does: the error in
// State.Error and an exit code naming the class of failure (startError);
// a container that never ran stays "created". Attaches waiting for this
// start end, as dockerd closes a container's streams: their clients
// learn why from the start's answer. It returns the error in docker's
// words. Callers hold c.mu.
func (e *Engine) startFailed(c *ctr, err error) error {
	code, err := startError(err, false)
	st := &c.rec.State
	st.Error = err.Error()
	st.ExitCode = code
	st.Pid = 0
	c.lastExit = code // what a wait for a --rm container's removal reports
	if c.rec.HasBeenStartedBefore {
		st.Status = container.StateExited
		st.FinishedAt = time.Now().UTC()
	} else {
		st.Status = container.StateCreated
	}
	if err := c.save(); err != nil {
		e.logf("container %s: %v", c.id, err)
	}
	for _, p := range c.pending {
		p.done <- nil
		close(p.started)
	}
	c.pending = nil
	c.notify()
	return err
}

// startLocked starts c. Callers hold c.mu.
func (e *Engine) startLocked(ctx context.Context, c *ctr) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if err := c.mountRootfs(ctx, e); err != nil {
		return err
	}
	undo = append(undo, func() { c.unmountRootfs() })
	if err := e.mountVolumes(ctx, c); err != nil {
		return err
	}
	undo = append(undo, func() { e.unmountVolumes(c) })

	spec, _, err := e.buildSpec(c, c.rec, false)
	if err != nil {
		return err
	}
	undo = append(undo, e.poolNetwork(c, spec))
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(c.run, "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("container %s: write bundle: %w", c.id, err)
	}
	// A previous run's exit status must not be mistaken for this run's
	// by a berthd that restarts.
	os.Remove(filepath.Join(c.run, "exit.json"))

	rt, err := e.runtimePath(c.rec.HostConfig.Runtime)
	if err != nil {
		return err
	}
	lc := logConfig(c.rec.HostConfig.LogConfig)
	t, err := shim.Spawn(ctx, shim.SpawnOptions{
		Binary:        e.cfg.ShimBinary,
		ID:            c.id,
		Bundle:        c.run,
		Runtime:       rt,
		RuntimeRoot:   e.runtimeRoot(),
		SystemdCgroup: e.cfg.SystemdCgroup,
		Log:           c.logPath(),
		LogConfig:     &lc,
		Tty:           c.rec.Config.Tty,
		Stdin:         c.rec.Config.OpenStdin,
	})
	if err != nil {
		return err
	}
	undo = append(undo, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := t.Delete(dctx); err != nil {
			e.logf("container %s: delete after a failed start: %v", c.id, err)
		}
	})
	undo = append(undo, func() { e.stopNetworking(c) })
	if err := e.startNetworking(ctx, c, t); err != nil {
		return err
	}
	// Attaches made before the start are connected now, before the
	// process runs, so they see its first byte.
	for _, p := range c.pending {
		p.connect(t)
	}
	c.pending = nil
	// StartedAt is taken before the process may run, so that it never
	// comes after the FinishedAt of a process that exits at once.
	begin := time.Now().UTC()
	if err := t.Start(ctx); err != nil {
		return err
	}
	// The pid came with Spawn's report: no round trip to the shim.
	pid := t.InitPid()
	if pid == 0 {
		st, err := t.State(ctx)
		if err != nil {
			return err
		}
		pid = st.Pid
	}
	c.task = t
	c.rec.State = state{
		Status:     container.StateRunning,
		Pid:        pid,
		StartedAt:  begin,
		FinishedAt: c.rec.State.FinishedAt,
	}
	c.rec.HasBeenStartedBefore = true
	if err := c.save(); err != nil {
		e.logf("container %s: %v", c.id, err)
	}
	c.notify()
	e.emit(events.ActionStart, c, nil)
	e.monitor(c, t)
	e.startHealth(c)
	return nil
}

// logPath is the container's json-file log.
func (c *ctr) logPath() string { return filepath.Join(c.dir, c.id+"-json.log") }

// mountVolumes readies the container's volumes: driver-option mounts are
// made, and a volume that is still empty gets the image's content at its
// destination (docker's copy-up), unless nocopy.
func (e *Engine) mountVolumes(ctx context.Context, c *ctr) error {
	for _, mp := range c.rec.Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		if _, err := e.volumes.Mount(mp.Name); err != nil {
			e.unmountVolumes(c)
			return err
		}
		c.volumeMounts = append(c.volumeMounts, mp.Name)
		if mp.CopyData {
			if err := copyUp(ctx, c.rootfs, mp.Destination, mp.Source); err != nil {
				e.unmountVolumes(c)
				return fmt.Errorf("populate volume %s from the image at %s: %w", mp.Name, mp.Destination, err)
			}
		}
	}
	return nil
}

// unmountVolumes undoes mountVolumes.
func (e *Engine) unmountVolumes(c *ctr) {
	for _, name := range c.volumeMounts {
		if err := e.volumes.Unmount(name); err != nil {
			e.logf("container %s: %v", c.id, err)
		}
	}
	c.volumeMounts = nil
}

// writeFileAtomic writes path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
