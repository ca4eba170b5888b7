package engine

import (
	"context"
	"errors"
	"github.com/berth-project/berth/internal/shim"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/berth-project/berth/internal/snapshot"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

var containerID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// restore loads every container record and brings each back to what is
// true now (live restore):
//   - a container whose shim still runs is re-attached: the engine
//     monitors its exit again; if it exited meanwhile, the shim still
//     has the status and the exit is handled now;
//   - a container whose shim is gone is marked exited with the status of
//     the shim's exit.json, or 255 and an error when there is none;
//   - then restart policies are applied as docker's daemon does when it
//     starts: always, unless-stopped (unless stopped by the user) and
//     on-failure (within its retries) bring containers back.
//
// Leftovers of a crash in the middle of a create or a remove (a
// directory without a record, a container snapshot nobody owns) are
// removed.
func (e *Engine) restore() error {
	dir := filepath.Join(e.cfg.DataRoot, "containers")
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var ctrs []*ctr
	for _, de := range des {
		id := de.Name()
		if !de.IsDir() || !containerID.MatchString(id) {
			continue
		}
		rec, err := loadRecord(filepath.Join(dir, id))
		if errors.Is(err, os.ErrNotExist) {
			e.removeOrphan(id)
			continue
		}
		if err != nil {
			e.logf("skipping container %s: %v", id, err)
			continue
		}
		c := newCtr(e, rec)
		if other, taken := e.names[rec.Name]; taken {
			e.logf("container %s: name %s is taken by %s; renaming", id, rec.Name, other)
			rec.Name = generateName(func(n string) bool { _, t := e.names[n]; return t })
		}
		e.names[rec.Name] = id
		e.ctrs[id] = c
		for _, mp := range rec.Mounts {
			if mp.Type == mount.TypeVolume {
				if err := e.volumes.Acquire(mp.Name, id); err != nil {
					e.logf("container %s: volume %s: %v", id, mp.Name, err)
				}
			}
		}
		ctrs = append(ctrs, c)
	}
	e.removeOrphanSnapshots()
	if des, err := os.ReadDir(filepath.Join(e.cfg.ExecRoot, "containers")); err == nil {
		for _, de := range des {
			if _, known := e.ctrs[de.Name()]; !known && containerID.MatchString(de.Name()) {
				e.removeOrphan(de.Name())
			}
		}
	}

	for _, c := range ctrs {
		e.reattach(c)
	}
	e.reconcileNetworks()
	// Restart policies, once every container is known (a container may
	// join another's namespaces).
	for _, c := range ctrs {
		c.mu.Lock()
		if c.task == nil && !c.removing && c.rec.State.Status != container.StateRestarting && e.restartOnBoot(c) {
			c.rec.State.Status = container.StateRestarting
			c.save()
			e.scheduleRestart(c, 0)
		}
		c.mu.Unlock()
	}
	return nil
}

// reattach finds a container's shim again, or records that it is gone.
func (e *Engine) reattach(c *ctr) {
	c.mu.Lock()
	status := c.rec.State.Status
	wasRunning := c.rec.State.running()
	c.mu.Unlock()
	if mounted(filepath.Join(c.run, "rootfs")) {
		c.rootfs = filepath.Join(c.run, "rootfs")
	}
	if !wasRunning {
		if status == container.StateRestarting {
			// A pending restart died with the old engine: it happens now.
			c.mu.Lock()
			e.scheduleRestart(c, 0)
			c.mu.Unlock()
		}
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	t, err := shim.Dial(c.run)
	if err == nil {
		st, serr := t.State(ctx)
		if serr == nil && (st.Status == "running" || st.Status == "paused") {
			c.mu.Lock()
			c.task = t
			c.rec.State.Pid = st.Pid
			if st.Status == "paused" {
				c.rec.State.Status = container.StatePaused
			} else {
				c.rec.State.Status = container.StateRunning
			}
			for _, mp := range c.rec.Mounts {
				if mp.Type == mount.TypeVolume {
					if _, err := e.volumes.Mount(mp.Name); err == nil {
						c.volumeMounts = append(c.volumeMounts, mp.Name)
					}
				}
			}
			c.save()
			e.monitor(c, t)
			e.startHealth(c)
			c.mu.Unlock()
			return
		}
		if serr == nil && st.Status == "stopped" {
			// It exited while no engine watched: the shim kept the
			// status.
			c.mu.Lock()
			c.task = t
			c.mu.Unlock()
			e.handleExit(c, t, &shim.Exit{Code: st.ExitCode, ExitedAt: st.ExitedAt, OOMKilled: st.OOMKilled}, nil)
			return
		}
	}
	exit, err := shim.ReadExit(c.run)
	msg := ""
	if err != nil {
		exit = &shim.Exit{Code: 255, ExitedAt: time.Now()}
		msg = "the container's shim is gone and left no exit status"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e.forceDeleteRuntime(c)
	e.exited(c, exit, msg)
}

// restartOnBoot is docker's verdict at daemon start on a container
// without a process. Callers hold c.mu.
func (e *Engine) restartOnBoot(c *ctr) bool {
	p := c.rec.HostConfig.RestartPolicy
	switch {
	case p.IsAlways():
		return true
	case p.IsUnlessStopped():
		return !c.rec.HasBeenManuallyStopped
	case p.IsOnFailure():
		return c.rec.HasBeenStartedBefore && !c.rec.HasBeenManuallyStopped && c.rec.State.ExitCode != 0 &&
			(p.MaximumRetryCount == 0 || c.rec.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// removeOrphan removes what a container without a record left.
func (e *Engine) removeOrphan(id string) {
	e.logf("removing the remains of container %s", id)
	snapshot.Unmount(filepath.Join(e.execDir(id), "rootfs"))
	os.RemoveAll(e.execDir(id))
	os.RemoveAll(e.dataDir(id))
	if err := e.snaps.Remove(context.Background(), id); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		e.logf("container %s: %v", id, err)
	}
}

// removeOrphanSnapshots removes container snapshots (active, keyed by a
// container ID) that no container owns.
func (e *Engine) removeOrphanSnapshots() {
	var orphans []string
	e.snaps.Walk(context.Background(), func(info snapshot.Info) error {
		if info.Kind == snapshot.Active && containerID.MatchString(info.Name) {
			if _, ok := e.ctrs[info.Name]; !ok {
				orphans = append(orphans, info.Name)
			}
		}
		return nil
	})
	for _, id := range orphans {
		e.removeOrphan(id)
	}
}
