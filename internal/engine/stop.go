package engine

import (
	"context"
	"errors"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/shim"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/specconv"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// defaultStopTimeout is docker's grace period before SIGKILL.
const defaultStopTimeout = 10

// StopOptions are docker's stop and restart parameters: the signal
// (default the container's stop signal) and the seconds to wait before
// SIGKILL (nil: the container's StopTimeout, else 10; -1: forever).
type StopOptions struct {
	Signal  string
	Timeout *int
}

// Stop stops a container as docker's POST /containers/{id}/stop: the stop
// signal, then SIGKILL once the timeout passes. A stopped container gives
// ErrNotModified. The container is marked stopped by the user, so
// unless-stopped and on-failure policies leave it.
func (e *Engine) Stop(ctx context.Context, ref string, opts StopOptions) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	return e.stop(ctx, c, opts)
}

func (e *Engine) stop(ctx context.Context, c *ctr, opts StopOptions) error {
	c.mu.Lock()
	if c.rec.State.Status == container.StateRestarting {
		c.cancelRestart()
		c.rec.HasBeenManuallyStopped = true
		c.save()
		c.notify()
		c.mu.Unlock()
		e.emit(events.ActionStop, c, nil)
		return nil
	}
	if !c.rec.State.running() || c.task == nil {
		c.mu.Unlock()
		return notModified("container %s is not running", c.id)
	}
	c.rec.HasBeenManuallyStopped = true
	c.exitOnNext = true
	if err := c.save(); err != nil {
		e.logf("container %s: %v", c.id, err)
	}
	sigName := opts.Signal
	if sigName == "" {
		sigName = c.rec.Config.StopSignal
	}
	timeout := defaultStopTimeout
	if c.rec.Config.StopTimeout != nil {
		timeout = *c.rec.Config.StopTimeout
	}
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	}
	t, paused := c.task, c.rec.State.Status == container.StatePaused
	c.mu.Unlock()

	sig, err := specconv.StopSignal(nil, sigName)
	if err != nil {
		return classify(errdefs.ErrInvalid, err)
	}
	if err := e.signal(ctx, c, t, sig, paused); err != nil {
		return err
	}
	if timeout >= 0 {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		stopped := e.waitStopped(wctx, c)
		cancel()
		if !stopped && ctx.Err() == nil {
			if err := e.signal(ctx, c, t, unix.SIGKILL, false); err != nil && !errors.Is(err, errdefs.ErrConflict) {
				return err
			}
		}
	}
	if !e.waitStopped(ctx, c) {
		return ctx.Err()
	}
	e.emit(events.ActionStop, c, nil)
	return nil
}

// signal sends sig to the container's init (every process for SIGKILL,
// which also reaches processes of a shared PID namespace) and emits
// docker's kill event; a paused container is resumed afterwards so that
// it can act on the signal, as docker does.
func (e *Engine) signal(ctx context.Context, c *ctr, t *shim.Client, sig syscall.Signal, resume bool) error {
	if err := t.Kill(ctx, sig, sig == unix.SIGKILL); err != nil {
		c.mu.Lock()
		gone := c.task != t
		c.mu.Unlock()
		if gone || errors.Is(err, shim.ErrNotRunning) {
			// It exited meanwhile; the exit monitor records it.
			return nil
		}
		return err
	}
	e.emit(events.ActionKill, c, map[string]string{"signal": strconv.Itoa(int(sig))})
	if resume {
		if err := e.Unpause(ctx, c.id); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			e.logf("container %s: resume after signal: %v", c.id, err)
		}
	}
	return nil
}

// waitStopped waits until the container has no process or ctx ends, and
// tells which.
func (e *Engine) waitStopped(ctx context.Context, c *ctr) bool {
	for {
		c.mu.Lock()
		running := c.task != nil
		ch := c.changed
		c.mu.Unlock()
		if !running {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Kill sends a signal (docker's names or numbers; default SIGKILL) to a
// running container, as docker's POST /containers/{id}/kill. Killing with
// the container's stop signal counts as a stop for the restart policy;
// other signals leave the policy to act on the exit, as docker does.
func (e *Engine) Kill(ctx context.Context, ref, signal string) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	sig := unix.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if !c.rec.State.running() || c.task == nil {
		c.mu.Unlock()
		return conflictf("cannot kill container: %s: container %s is not running", ref, c.id)
	}
	stopSig, _ := specconv.StopSignal(nil, c.rec.Config.StopSignal)
	if sig == stopSig {
		c.exitOnNext = true
	}
	// A frozen process acts on no signal, SIGKILL included, until it is
	// thawed: docker resumes after the stop signal and SIGKILL.
	resume := c.rec.State.Status == container.StatePaused && (sig == stopSig || sig == unix.SIGKILL)
	t := c.task
	c.mu.Unlock()
	return e.signal(ctx, c, t, sig, resume)
}

// parseSignal reads a signal as docker's kill does.
func parseSignal(s string) (syscall.Signal, error) {
	sig, err := specconv.StopSignal(nil, s)
	if err != nil {
		return 0, invalidf("invalid signal: %s", s)
	}
	return sig, nil
}

// Restart stops a running container and starts it again, as docker's
// POST /containers/{id}/restart.
func (e *Engine) Restart(ctx context.Context, ref string, opts StopOptions) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	if err := e.stop(ctx, c, opts); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		return err
	}
	if err := e.Start(ctx, c.id); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		return err
	}
	e.emit(events.ActionRestart, c, nil)
	return nil
}

// Pause freezes every process of a running container (the runtime's
// pause), as docker's POST /containers/{id}/pause.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.rec.State.Status == container.StatePaused:
		return conflictf("Container %s is already paused", c.id)
	case c.rec.State.Status != container.StateRunning || c.task == nil:
		return conflictf("Container %s is not running", c.id)
	}
	if err := c.task.Pause(ctx); err != nil {
		return err
	}
	c.rec.State.Status = container.StatePaused
	c.save()
	c.notify()
	e.emit(events.ActionPause, c, nil)
	return nil
}

// Unpause thaws a paused container, as docker's POST
// /containers/{id}/unpause.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State.Status != container.StatePaused || c.task == nil {
		return conflictf("Container %s is not paused", c.id)
	}
	if err := c.task.Resume(ctx); err != nil {
		return err
	}
	c.rec.State.Status = container.StateRunning
	c.save()
	c.notify()
	e.emit(events.ActionUnPause, c, nil)
	return nil
}
