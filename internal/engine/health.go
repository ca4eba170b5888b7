package engine

import (
	"bytes"
	"context"
	"fmt"
	"github.com/berth-project/berth/internal/shim"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// docker's health check defaults and limits.
const (
	healthDefaultInterval      = 30 * time.Second
	healthDefaultTimeout       = 30 * time.Second
	healthDefaultStartInterval = 5 * time.Second
	healthDefaultRetries       = 3
	healthMaxLog               = 5
	healthMaxOutput            = 4096
)

// healthCheck is the health check loop of one run of a container.
type healthCheck struct {
	cancel context.CancelFunc
}

// checkHealthConfig applies docker's limits to --health-* values.
func checkHealthConfig(h *container.HealthConfig) error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if d.v != 0 && d.v < container.MinimumDuration {
			return invalidf("%s in Healthcheck cannot be less than %s", d.name, container.MinimumDuration)
		}
	}
	if h.Retries < 0 {
		return invalidf("Retries in Healthcheck cannot be negative")
	}
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			return invalidf("unknown health check type %q: want NONE, CMD or CMD-SHELL", h.Test[0])
		}
	}
	return nil
}

// healthArgs is the probe's command, or nil when there is no check.
func healthArgs(h *container.HealthConfig) []string {
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		if len(h.Test) > 1 {
			return h.Test[1:]
		}
	case "CMD-SHELL":
		if len(h.Test) > 1 {
			return []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
		}
	}
	return nil
}

// startHealth starts the health checks of a container that just
// started. Callers hold c.mu.
func (e *Engine) startHealth(c *ctr) {
	h := c.rec.Config.Healthcheck
	args := healthArgs(h)
	if args == nil {
		c.rec.State.Health = nil
		return
	}
	c.rec.State.Health = &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
	interval, timeout, startInterval, retries := h.Interval, h.Timeout, h.StartInterval, h.Retries
	if interval == 0 {
		interval = healthDefaultInterval
	}
	if timeout == 0 {
		timeout = healthDefaultTimeout
	}
	if startInterval == 0 {
		startInterval = healthDefaultStartInterval
	}
	if retries == 0 {
		retries = healthDefaultRetries
	}
	startPeriod := h.StartPeriod
	ctx, cancel := context.WithCancel(e.ctx)
	c.health = &healthCheck{cancel: cancel}
	t := c.task
	started := time.Now()
	e.goroutine(func() {
		for {
			wait := interval
			if time.Since(started) < startPeriod {
				wait = startInterval
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			res := e.probe(ctx, c, t, args, timeout)
			if ctx.Err() != nil {
				return
			}
			e.recordHealth(c, t, res, retries, time.Since(started) < startPeriod)
		}
	})
}

// stopHealth stops the health checks. Callers hold c.mu.
func (e *Engine) stopHealth(c *ctr) {
	if c.health != nil {
		c.health.cancel()
		c.health = nil
	}
}

// probe runs one check as an exec and returns docker's result: exit
// code 0 healthy, anything else unhealthy, -1 for a probe that timed out
// or could not run.
func (e *Engine) probe(ctx context.Context, c *ctr, t *shim.Client, args []string, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now()}
	fail := func(format string, a ...any) *container.HealthcheckResult {
		res.End, res.ExitCode, res.Output = time.Now(), -1, fmt.Sprintf(format, a...)
		return res
	}
	c.mu.Lock()
	p, err := e.execProcessSpec(c, &container.ExecCreateRequest{Cmd: args}, nil)
	c.mu.Unlock()
	if err != nil {
		return fail("%v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	proc, err := t.Exec(pctx, shim.ExecOptions{ID: "health-" + newID()[:16], Process: p})
	if err != nil {
		return fail("%v", err)
	}
	out := &limitedBuffer{max: healthMaxOutput}
	att, err := proc.Attach(pctx, shim.AttachOptions{Stdout: out, Stderr: out})
	if err != nil {
		return fail("%v", err)
	}
	defer att.Close()
	if err := proc.Start(pctx); err != nil {
		return fail("%v", err)
	}
	exit, err := proc.Wait(pctx)
	if pctx.Err() != nil && ctx.Err() == nil {
		kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
		proc.Kill(kctx, unix.SIGKILL)
		kcancel()
		return fail("Health check exceeded timeout (%s)", timeout)
	}
	if err != nil {
		return fail("%v", err)
	}
	att.Wait()
	res.End, res.ExitCode, res.Output = time.Now(), exit.Code, out.String()
	return res
}

// recordHealth applies a probe's result to the container's health.
func (e *Engine) recordHealth(c *ctr, t *shim.Client, res *container.HealthcheckResult, retries int, inStartPeriod bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.rec.State.Health
	if c.task != t || h == nil {
		return
	}
	old := h.Status
	if res.ExitCode == 0 {
		h.Status, h.FailingStreak = container.Healthy, 0
	} else if !inStartPeriod || old != container.Starting {
		// docker: failures in the start period do not count while the
		// container has never been healthy.
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	h.Log = append(h.Log, res)
	if len(h.Log) > healthMaxLog {
		h.Log = h.Log[len(h.Log)-healthMaxLog:]
	}
	c.save()
	if h.Status != old {
		e.emit(events.Action(string(events.ActionHealthStatus)+": "+string(h.Status)), c, nil)
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
