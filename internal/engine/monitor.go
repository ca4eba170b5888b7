package engine

import (
	"context"
	"github.com/berth-project/berth/internal/shim"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Restart backoff, docker's: the first restart after 100 ms, each next
// one twice as late up to a minute; a container that ran for 10 s or more
// starts over at 100 ms.
const (
	restartMinDelay = 100 * time.Millisecond
	restartMaxDelay = time.Minute
	restartResetRun = 10 * time.Second
)

// monitor waits for t's container to exit and handles the exit. It ends
// without handling anything when the engine closes: the next engine finds
// the shim again.
func (e *Engine) monitor(c *ctr, t *shim.Client) {
	e.goroutine(func() {
		exit, err := t.Wait(e.ctx)
		if e.ctx.Err() != nil {
			return
		}
		if err != nil {
			// The shim is gone (killed, crashed): its exit.json, when it
			// wrote one, still has the status.
			if x, rerr := shim.ReadExit(c.run); rerr == nil {
				exit, err = x, nil
			} else {
				exit = &shim.Exit{Code: 255, ExitedAt: time.Now()}
			}
		}
		e.handleExit(c, t, exit, err)
	})
}

// handleExit records the exit of t's container, releases what the run
// held, and applies the restart policy or --rm. werr is why the status
// could not be had from the shim, if so.
func (e *Engine) handleExit(c *ctr, t *shim.Client, exit *shim.Exit, werr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.task != t {
		return // handled already (a stop raced the monitor)
	}
	c.task = nil
	e.stopHealth(c)
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := t.Delete(dctx); err != nil {
		e.logf("container %s: delete from the runtime: %v", c.id, err)
		e.forceDeleteRuntime(c)
	}
	cancel()
	msg := ""
	if werr != nil {
		msg = "the container's shim is gone: " + werr.Error()
	}
	e.exited(c, exit, msg)
}

// exited records an exit whose task is gone, releases the run, emits
// oom and die, and applies the restart policy or --rm. Callers hold c.mu.
func (e *Engine) exited(c *ctr, exit *shim.Exit, errMsg string) {
	e.releaseRun(c)
	st := &c.rec.State
	ran := time.Since(st.StartedAt)
	st.Status = container.StateExited
	st.Pid = 0
	st.ExitCode = exit.Code
	st.OOMKilled = exit.OOMKilled
	st.FinishedAt = exit.ExitedAt.UTC()
	if st.FinishedAt.IsZero() {
		st.FinishedAt = time.Now().UTC()
	}
	st.Error = errMsg
	if c.rec.State.Health != nil {
		c.rec.State.Health.Status = container.Unhealthy
	}
	c.lastExit = exit.Code
	c.exits++
	e.dropExecs(c)
	restart := e.shouldRestart(c)
	c.exitOnNext = false
	if restart {
		c.rec.RestartCount++
		st.Status = container.StateRestarting
	}
	if err := c.save(); err != nil {
		e.logf("container %s: %v", c.id, err)
	}
	if exit.OOMKilled {
		e.emit(events.ActionOOM, c, nil)
	}
	e.emit(events.ActionDie, c, map[string]string{"exitCode": strconv.Itoa(exit.Code)})
	c.notify()

	switch {
	case restart:
		delay := c.restartDelay * 2
		if delay < restartMinDelay || ran >= restartResetRun {
			delay = restartMinDelay
		}
		if delay > restartMaxDelay {
			delay = restartMaxDelay
		}
		c.restartDelay = delay
		e.scheduleRestart(c, delay)
	case c.rec.HostConfig.AutoRemove && !c.removing:
		e.goroutine(func() {
			if err := e.Remove(context.Background(), c.id, RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				e.logf("container %s: --rm: %v", c.id, err)
			}
		})
	}
}

// releaseRun undoes what a run mounted. Callers hold c.mu.
func (e *Engine) releaseRun(c *ctr) {
	e.stopNetworking(c)
	e.unmountVolumes(c)
	if err := c.unmountRootfs(); err != nil {
		e.logf("container %s: unmount rootfs: %v", c.id, err)
	}
}

// shouldRestart is the restart policy's verdict on an exit. Callers hold
// c.mu.
func (e *Engine) shouldRestart(c *ctr) bool {
	if c.exitOnNext || c.removing || c.removed {
		return false
	}
	p := c.rec.HostConfig.RestartPolicy
	switch {
	case p.IsAlways():
		return true
	case p.IsUnlessStopped():
		return !c.rec.HasBeenManuallyStopped
	case p.IsOnFailure():
		return c.rec.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.rec.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// scheduleRestart starts c again after delay, unless a stop, start or
// remove cancels it meanwhile. Callers hold c.mu.
func (e *Engine) scheduleRestart(c *ctr, delay time.Duration) {
	cancel := make(chan struct{})
	c.restartCancel = cancel
	e.goroutine(func() {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-cancel:
			return
		case <-e.ctx.Done():
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.restartCancel != cancel || c.rec.State.Status != container.StateRestarting {
			return
		}
		c.restartCancel = nil
		if err := e.startLocked(e.ctx, c); err != nil {
			e.logf("container %s: restart: %v", c.id, err)
			e.startFailed(c, err)
		}
	})
}

// cancelRestart drops a pending restart; the container stays exited.
// Callers hold c.mu.
func (c *ctr) cancelRestart() {
	if c.restartCancel != nil {
		close(c.restartCancel)
		c.restartCancel = nil
	}
	if c.rec.State.Status == container.StateRestarting {
		c.rec.State.Status = container.StateExited
	}
}
