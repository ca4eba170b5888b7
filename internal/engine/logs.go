package engine

import (
	"context"
	"time"

	"github.com/berth-project/berth/internal/logs"
)

// LogsOptions are docker's GET /containers/{id}/logs parameters.
type LogsOptions struct {
	Stdout, Stderr bool
	// Since and Until bound the messages' times; zero is no bound.
	Since, Until time.Time
	// Tail is the number of messages from the end; < 0 is all.
	Tail int
	// Follow keeps sending new messages until the container stops or
	// ctx ends.
	Follow bool
}

// Logs calls fn with the container's log messages, oldest first, as
// docker's GET /containers/{id}/logs reads the json-file log. Timestamps
// and docker's stream framing are the caller's: each message carries its
// stream and time.
func (e *Engine) Logs(ctx context.Context, ref string, opts LogsOptions, fn func(*logs.Message) error) error {
	if !opts.Stdout && !opts.Stderr {
		return invalidf("Bad parameters: you must choose at least one stream")
	}
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	path := c.logPath()
	running := c.task != nil || c.rec.State.Status == "restarting"
	changed := c.changed
	c.mu.Unlock()

	cfg := logs.ReadConfig{Tail: opts.Tail, Since: opts.Since, Until: opts.Until}
	if opts.Follow && running {
		// Following ends when the container stops (for good: a restart
		// keeps the log going, as docker's does).
		stop := make(chan struct{})
		cfg.Follow, cfg.Stop = true, stop
		go func() {
			defer close(stop)
			for {
				select {
				case <-changed:
				case <-ctx.Done():
					return
				}
				c.mu.Lock()
				running := c.task != nil || c.rec.State.Status == "restarting"
				changed = c.changed
				c.mu.Unlock()
				if !running {
					return
				}
			}
		}()
	}
	return logs.Read(ctx, path, cfg, func(m *logs.Message) error {
		if m.Stream == "stdout" && !opts.Stdout || m.Stream == "stderr" && !opts.Stderr {
			return nil
		}
		return fn(m)
	})
}
