package engine

import (
	"sync/atomic"

	"context"
	"errors"
	"github.com/berth-project/berth/internal/shim"
	"io"
	"strings"

	"github.com/berth-project/berth/internal/logs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// AttachOptions are docker's POST /containers/{id}/attach parameters,
// with the streams already split: docker's stdcopy framing (for a
// container without a tty) is the server's.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Logs replays the log first; Stream attaches to the live streams.
	Logs, Stream bool
	// DetachKeys ends the attach when read from Stdin (docker's
	// "ctrl-p,ctrl-q" form, the default).
	DetachKeys string
	// Registered, when set, is called once the attach is in place:
	// registered with the container's shim or, for a container that
	// is not running, queued for its next start. Nothing is read from
	// Stdin or written to Stdout and Stderr before it returns, so a
	// server can answer its client only then (docker's 101 Switching
	// Protocols) and hand Attach writers that become usable in
	// Registered: a client that starts the container once answered
	// (docker run, docker start -a) misses none of its output. An
	// error from Registered ends the attach with that error. Without
	// Stream it is called before the log is replayed.
	Registered func() error
}

// pendingAttach is an attach to a container that is not running yet: it
// is connected by the next start, before the process runs.
type pendingAttach struct {
	ctx     context.Context
	opts    shim.AttachOptions
	started chan struct{}
	done    chan error
}

// connect attaches to the new shim; it returns once the shim registered
// the attachment, so that the process's output, once it starts, reaches
// it.
func (p *pendingAttach) connect(t *shim.Client) {
	defer close(p.started)
	a, err := t.Attach(p.ctx, p.opts)
	if err != nil {
		p.done <- err
		return
	}
	go func() { p.done <- a.Wait() }()
}

// Attach attaches to a container's stdio as docker's attach does. It
// returns when the container's output ends (it exited), when the
// detach keys are read, or when ctx ends. A container that is not
// running is attached when it next starts (docker start -a, docker run);
// a start that fails ends the attach without an error (the start's
// caller has it).
func (e *Engine) Attach(ctx context.Context, ref string, opts AttachOptions) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	keys, err := parseDetachKeys(opts.DetachKeys)
	if err != nil {
		return err
	}
	registered := func() error {
		if opts.Registered == nil {
			return nil
		}
		return opts.Registered()
	}
	c.mu.Lock()
	tty := c.rec.Config.Tty
	c.mu.Unlock()
	stdout, stderr := opts.Stdout, opts.Stderr
	if tty && stderr != nil && stdout == nil {
		stdout = stderr
	}
	if !opts.Stream {
		if err := registered(); err != nil {
			return err
		}
		return e.replayLogs(ctx, c, tty, opts.Logs, stdout, stderr)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The live streams wait behind a gate until Registered returned and
	// the log was replayed.
	gate := make(chan struct{})
	streams := shim.AttachOptions{}
	if stdout != nil {
		streams.Stdout = &gatedWriter{w: stdout, gate: gate, done: actx.Done()}
	}
	if stderr != nil && !tty {
		streams.Stderr = &gatedWriter{w: stderr, gate: gate, done: actx.Done()}
	}
	var detached atomic.Bool
	if opts.Stdin != nil {
		in := &gatedReader{r: opts.Stdin, gate: gate, done: actx.Done()}
		streams.Stdin = &detachReader{r: in, keys: keys, onDetach: func() { detached.Store(true); cancel() }}
	}

	c.mu.Lock()
	if c.removing || c.removed {
		c.mu.Unlock()
		return conflictf("container %s is being removed", c.id)
	}
	if c.rec.State.Status == container.StatePaused {
		c.mu.Unlock()
		return conflictf("You cannot attach to a paused container, unpause it first")
	}
	// docker: a container without StdinOnce keeps its stdin open when
	// an attached client goes.
	streams.KeepStdinOpen = !c.rec.Config.StdinOnce
	e.emit(events.ActionAttach, c, nil)
	// open lets the live streams through once the client has its answer
	// and the log.
	open := func() error {
		if err := registered(); err != nil {
			return err
		}
		if err := e.replayLogs(ctx, c, tty, opts.Logs, stdout, stderr); err != nil {
			return err
		}
		close(gate)
		return nil
	}
	if t := c.task; t != nil {
		c.mu.Unlock()
		a, err := t.Attach(actx, streams)
		if err != nil {
			return err
		}
		if err := open(); err != nil {
			a.Close()
			return err
		}
		return attachResult(a.Wait(), detached.Load(), ctx)
	}
	p := &pendingAttach{ctx: actx, opts: streams, started: make(chan struct{}), done: make(chan error, 1)}
	c.pending = append(c.pending, p)
	c.mu.Unlock()
	if err := open(); err != nil {
		c.dropPending(p)
		return err
	}
	select {
	case <-p.started:
		return attachResult(<-p.done, detached.Load(), ctx)
	case <-ctx.Done():
		c.dropPending(p)
		return ctx.Err()
	}
}

// dropPending forgets an attach that waited for a start.
func (c *ctr) dropPending(p *pendingAttach) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.pending {
		if q == p {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			break
		}
	}
}

// replayLogs writes the container's log so far to the attach's writers
// (docker's attach with logs=1).
func (e *Engine) replayLogs(ctx context.Context, c *ctr, tty, replay bool, stdout, stderr io.Writer) error {
	if !replay || stdout == nil && stderr == nil {
		return nil
	}
	return e.Logs(ctx, c.id, LogsOptions{Stdout: stdout != nil, Stderr: stderr != nil, Tail: -1}, func(m *logs.Message) error {
		w := stdout
		if m.Stream == "stderr" && !tty {
			w = stderr
		}
		if w == nil {
			return nil
		}
		_, err := w.Write(m.Line)
		return err
	})
}

// gatedWriter holds writes back until gate closes; once done closes
// first, they fail.
type gatedWriter struct {
	w    io.Writer
	gate <-chan struct{}
	done <-chan struct{}
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	select {
	case <-g.gate:
		return g.w.Write(p)
	case <-g.done:
		return 0, io.ErrClosedPipe
	}
}

// gatedReader holds reads back until gate closes; once done closes
// first, it is at its end.
type gatedReader struct {
	r    io.Reader
	gate <-chan struct{}
	done <-chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	select {
	case <-g.gate:
		return g.r.Read(p)
	case <-g.done:
		return 0, io.EOF
	}
}

// attachResult turns the end of an attach into the caller's answer: a
// detach is a normal end.
func attachResult(err error, detached bool, ctx context.Context) error {
	if detached && ctx.Err() == nil {
		return nil
	}
	return err
}

// parseDetachKeys reads docker's detach key list: comma-separated
// "ctrl-<key>" (a-z, @, [, \, ], ^, _) or single characters.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = "ctrl-p,ctrl-q"
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		if rest, ok := strings.CutPrefix(k, "ctrl-"); ok {
			if len(rest) != 1 {
				return nil, invalidf("Invalid detach keys (%s) provided", s)
			}
			ch := rest[0]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, invalidf("Invalid detach keys (%s) provided", s)
			}
			continue
		}
		if len(k) != 1 {
			return nil, invalidf("Invalid detach keys (%s) provided", s)
		}
		out = append(out, k[0])
	}
	return out, nil
}

// detachReader passes stdin through until the detach keys arrive. Bytes
// that could start the sequence are held back until it is clear they
// do not, so a detach sends none of its keys to the container.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	pending  []byte
	onDetach func()
	done     bool
}

func (d *detachReader) Read(p []byte) (int, error) {
	if d.done {
		return 0, io.EOF
	}
	for {
		if len(d.pending) > 0 {
			n := copy(p, d.pending)
			d.pending = d.pending[n:]
			return n, nil
		}
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		var out []byte
		for _, b := range buf[:n] {
			if b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					d.done = true
					d.pending = append(d.pending, out...)
					d.onDetach()
					if len(d.pending) > 0 {
						m := copy(p, d.pending)
						d.pending = d.pending[m:]
						return m, nil
					}
					return 0, io.EOF
				}
				continue
			}
			if d.matched > 0 {
				out = append(out, d.keys[:d.matched]...)
				d.matched = 0
				if b == d.keys[0] {
					d.matched = 1
					continue
				}
			}
			out = append(out, b)
		}
		if len(out) > 0 {
			d.pending = out
			continue
		}
		if err != nil {
			if d.matched > 0 && errors.Is(err, io.EOF) {
				d.pending = append(d.pending, d.keys[:d.matched]...)
				d.matched = 0
				continue
			}
			return 0, err
		}
	}
}
