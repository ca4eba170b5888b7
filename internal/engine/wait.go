package engine

import (
	"context"

	"github.com/moby/moby/api/types/container"
)

// Wait waits for a condition as docker's POST /containers/{id}/wait:
// "not-running" (the default) until the container has no process,
// "next-exit" until its next exit, "removed" until it is removed. It
// returns once the wait is registered (an unknown container or condition
// is an error then) and sends the one result on the channel, or closes it
// without a result when ctx ends first. Registering before a start (as
// docker run does) sees that start's exit.
func (e *Engine) Wait(ctx context.Context, ref string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, invalidf("invalid condition: %q", cond)
	}
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	exits := c.exits
	c.mu.Unlock()
	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		for {
			c.mu.Lock()
			done := false
			switch cond {
			case container.WaitConditionNotRunning:
				done = !c.rec.State.running() && c.rec.State.Status != container.StateRestarting && c.task == nil
			case container.WaitConditionNextExit:
				done = c.exits > exits
			case container.WaitConditionRemoved:
				done = c.removed
			}
			if c.removed && cond != container.WaitConditionRemoved && !done {
				done = true
			}
			var resp container.WaitResponse
			if done {
				resp.StatusCode = int64(c.lastExit)
				if !c.removed {
					resp.StatusCode = int64(c.rec.State.ExitCode)
				}
				if msg := c.rec.State.Error; msg != "" {
					resp.Error = &container.WaitExitError{Message: msg}
				}
			}
			ch := c.changed
			c.mu.Unlock()
			if done {
				out <- resp
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
