package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/shim"
	"os"
	"time"

	"github.com/berth-project/berth/internal/snapshot"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"
)

// RemoveOptions are docker's DELETE /containers/{id} parameters.
type RemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// RemoveVolumes removes the container's anonymous volumes (-v);
	// named volumes stay, as with docker.
	RemoveVolumes bool
}

// Remove removes a container: its process (with Force), its shim and
// runtime state, its root snapshot and mounts, its record, logs and
// files, and with RemoveVolumes its anonymous volumes.
func (e *Engine) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.removing {
		c.mu.Unlock()
		return conflictf("removal of container %s is already in progress", ref)
	}
	if st := c.rec.State.Status; (c.rec.State.running() || st == container.StateRestarting) && !opts.Force {
		c.mu.Unlock()
		return conflictf("cannot remove container %q: container is %s: stop the container before removing or force remove", c.rec.Name, st)
	}
	c.removing = true
	c.exitOnNext = true
	c.cancelRestart()
	t := c.task
	paused := c.rec.State.Status == container.StatePaused
	c.mu.Unlock()

	if t != nil {
		if err := t.Kill(ctx, unix.SIGKILL, true); err != nil && !errors.Is(err, shim.ErrNotRunning) {
			e.logf("container %s: kill for removal: %v", c.id, err)
		} else if err == nil {
			e.emit(events.ActionKill, c, map[string]string{"signal": "9"})
		}
		if paused {
			// SIGKILL waits for a frozen process to be thawed.
			if err := t.Resume(ctx); err != nil && !errors.Is(err, shim.ErrNotRunning) {
				e.logf("container %s: resume for removal: %v", c.id, err)
			}
		}
		// The exit monitor releases the run; give it a bounded time, then
		// take over.
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		stopped := e.waitStopped(wctx, c)
		cancel()
		if !stopped {
			c.mu.Lock()
			if c.task == t {
				c.task = nil
				e.stopHealth(c)
				dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := t.Delete(dctx); err != nil {
					e.logf("container %s: delete: %v", c.id, err)
				}
				dcancel()
				e.releaseRun(c)
			}
			c.mu.Unlock()
		}
	}
	return e.destroy(c, opts.RemoveVolumes)
}

// destroy removes a container without a process. The record goes first,
// so a crash part-way leaves only orphans (a snapshot, directories),
// which the next New removes.
func (e *Engine) destroy(c *ctr, removeVolumes bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.State.Status = container.StateRemoving
	c.notify()
	if err := os.Remove(c.dir + "/" + recordFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.removing = false
		c.rec.State.Status = container.StateDead
		c.save()
		return fmt.Errorf("remove container %s: %w", c.id, err)
	}
	e.mu.Lock()
	delete(e.ctrs, c.id)
	if e.names[c.rec.Name] == c.id {
		delete(e.names, c.rec.Name)
	}
	for _, id := range c.execIDs {
		delete(e.execs, id)
	}
	e.mu.Unlock()

	var errs []error
	e.forceDeleteRuntime(c)
	e.releaseRun(c)
	if err := e.snaps.Remove(context.Background(), c.id); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		errs = append(errs, err)
	}
	for _, mp := range c.rec.Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		e.volumes.Release(mp.Name, c.id)
		if removeVolumes && mp.Anonymous {
			switch err := e.volumes.Remove(context.Background(), mp.Name, false); {
			case err == nil:
				e.emitVolume(events.ActionDestroy, mp.Name, nil)
			case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrNotFound):
				// Still used by another container, or gone: docker
				// leaves it too.
			default:
				errs = append(errs, err)
			}
		}
	}
	// A rootfs mount that survived (busy, detached late) must not be
	// walked into by RemoveAll.
	snapshot.Unmount(c.run + "/rootfs")
	for _, d := range []string{c.run, c.dir} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	c.removed = true
	// Attaches waiting for a start that will not come end now.
	for _, p := range c.pending {
		p.done <- conflictf("container %s was removed", c.id)
		close(p.started)
	}
	c.pending = nil
	c.notify()
	e.emit(events.ActionDestroy, c, nil)
	if len(errs) > 0 {
		e.logf("container %s: removed with leftovers: %v", c.id, errors.Join(errs...))
	}
	return nil
}
