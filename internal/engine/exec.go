package engine

import (
	"context"
	"github.com/berth-project/berth/internal/shim"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execSession is one exec, docker's model: made by ExecCreate, run once
// by ExecStart, inspected until its container goes.
type execSession struct {
	id  string
	c   *ctr
	req container.ExecCreateRequest

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	pid      int
	proc     *shim.Exec
	done     chan struct{} // closed when the exec ended
	created  time.Time
}

// ExecStartOptions are docker's POST /exec/{id}/start parameters, with
// the streams split (framing is the server's).
type ExecStartOptions struct {
	Detach         bool
	ConsoleSize    *[2]uint
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExecCreate registers a command to run in a running container and
// returns its ID, as docker's POST /containers/{id}/exec.
func (e *Engine) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", invalidf("No exec command specified")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.rec.State.Status == container.StatePaused:
		return "", conflictf("Container %s is paused, unpause the container before exec", c.id)
	case c.rec.State.Status == container.StateRestarting:
		return "", conflictf("Container %s is restarting, wait until the container is running", c.id)
	case c.task == nil:
		return "", conflictf("Container %s is not running", c.id)
	}
	x := &execSession{id: newID(), c: c, req: *cloneJSON(&req), done: make(chan struct{}), created: time.Now()}
	e.mu.Lock()
	e.execs[x.id] = x
	e.mu.Unlock()
	c.execIDs = append(c.execIDs, x.id)
	e.emit(events.Action("exec_create: "+strings.Join(req.Cmd, " ")), c, map[string]string{"execID": x.id})
	return x.id, nil
}

func (e *Engine) execSession(id string) (*execSession, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	x, ok := e.execs[id]
	if !ok {
		return nil, notFoundf("No such exec instance: %s", id)
	}
	return x, nil
}

// ExecStart runs an exec, as docker's POST /exec/{id}/start: detached it
// returns once the process started; attached it returns when the process
// ended and its output was copied.
func (e *Engine) ExecStart(ctx context.Context, execID string, opts ExecStartOptions) error {
	x, err := e.execSession(execID)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		if x.exitCode != nil {
			return conflictf("exec %s has already run", execID)
		}
		return conflictf("Error: Exec command %s is already running", execID)
	}
	x.started = true
	x.mu.Unlock()

	c := x.c
	c.mu.Lock()
	t := c.task
	if t == nil || c.rec.State.Status != container.StateRunning {
		c.mu.Unlock()
		return conflictf("Container %s is not running", c.id)
	}
	p, err := e.execProcessSpec(c, &x.req, opts.ConsoleSize)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	withStdin := x.req.AttachStdin && opts.Stdin != nil && !opts.Detach
	proc, err := t.Exec(ctx, shim.ExecOptions{ID: execID, Process: p, Tty: x.req.Tty, Stdin: withStdin})
	if err != nil {
		return err
	}
	// Attached before the start, so the output is whole.
	var att *shim.Attachment
	if !opts.Detach {
		streams := shim.AttachOptions{}
		if withStdin {
			streams.Stdin = opts.Stdin
		}
		if x.req.AttachStdout || x.req.Tty {
			streams.Stdout = opts.Stdout
		}
		if x.req.AttachStderr && !x.req.Tty {
			streams.Stderr = opts.Stderr
		}
		if streams.Stdin != nil || streams.Stdout != nil || streams.Stderr != nil {
			if att, err = proc.Attach(ctx, streams); err != nil {
				return err
			}
		}
	}
	if err := proc.Start(ctx); err != nil {
		if att != nil {
			att.Close()
		}
		return e.execStartFailed(x, proc, err)
	}
	pid := 0
	if st, err := proc.State(ctx); err == nil {
		pid = st.Pid
	}
	x.mu.Lock()
	x.proc, x.pid, x.running = proc, pid, true
	x.mu.Unlock()
	e.emit(events.Action("exec_start: "+strings.Join(x.req.Cmd, " ")), c, map[string]string{"execID": execID})

	finish := func(exit *shim.Exit, err error) {
		code := 126
		if err == nil {
			code = exit.Code
		}
		x.mu.Lock()
		x.running = false
		x.exitCode = &code
		x.mu.Unlock()
		close(x.done)
		e.emit(events.ActionExecDie, c, map[string]string{"execID": execID, "exitCode": strconv.Itoa(code)})
	}
	if opts.Detach {
		e.goroutine(func() { finish(proc.Wait(e.ctx)) })
		return nil
	}
	exit, werr := proc.Wait(ctx)
	var aerr error
	if att != nil {
		aerr = att.Wait()
	}
	finish(exit, werr)
	if werr != nil {
		return werr
	}
	return aerr
}

// execStartFailed ends an exec whose process could not be started, as
// dockerd does: not running, with the exit code of the failure (127 for
// a program that is not there, 126 for one that cannot be run) for
// ExecInspect — the docker CLI exits with it — and the error in docker's
// words. The shim records the failed process as exited with that code;
// its status is taken when the shim has it.
func (e *Engine) execStartFailed(x *execSession, proc *shim.Exec, err error) error {
	code, err := startError(err, true)
	wctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	if exit, werr := proc.Wait(wctx); werr == nil && exit.Code != 0 {
		code = exit.Code
	}
	cancel()
	x.mu.Lock()
	x.running = false
	x.exitCode = &code
	x.mu.Unlock()
	close(x.done)
	return err
}

// execProcessSpec is the OCI process of an exec: the container's own
// (capabilities, rlimits, no_new_privs, AppArmor) with the exec's
// command, user, environment, working directory and terminal. specconv
// builds it from the record so a user name is looked up in the
// container's /etc/passwd the same way. Callers hold c.mu.
func (e *Engine) execProcessSpec(c *ctr, req *container.ExecCreateRequest, size *[2]uint) (*specs.Process, error) {
	saved := c.rec
	rec := *saved
	cfg := *saved.Config
	hc := *saved.HostConfig
	cfg.Cmd = req.Cmd
	cfg.Entrypoint = nil
	cfg.Tty = req.Tty
	cfg.Env = append(slices.Clone(saved.Config.Env), req.Env...)
	if req.User != "" {
		cfg.User = req.User
	}
	if req.WorkingDir != "" {
		cfg.WorkingDir = req.WorkingDir
	}
	no := false
	hc.Init = &no
	if req.Privileged {
		hc.Privileged = true
	}
	if size != nil {
		hc.ConsoleSize = *size
	} else if req.ConsoleSize != nil {
		hc.ConsoleSize = *req.ConsoleSize
	} else {
		hc.ConsoleSize = [2]uint{}
	}
	rec.Config, rec.HostConfig = &cfg, &hc
	spec, _, err := e.buildSpec(c, &rec, false)
	if err != nil {
		return nil, err
	}
	return spec.Process, nil
}

// dropExecs forgets a container's exec sessions when it stops: their
// processes went with it. Callers hold c.mu.
func (e *Engine) dropExecs(c *ctr) {
	if len(c.execIDs) == 0 {
		return
	}
	e.mu.Lock()
	for _, id := range c.execIDs {
		delete(e.execs, id)
	}
	e.mu.Unlock()
	c.execIDs = nil
}

// ExecInspect describes an exec, as docker's GET /exec/{id}/json.
func (e *Engine) ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error) {
	x, err := e.execSession(execID)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	resp := &container.ExecInspectResponse{
		ID:          x.id,
		Running:     x.running,
		OpenStdin:   x.req.AttachStdin,
		OpenStdout:  x.req.AttachStdout,
		OpenStderr:  x.req.AttachStderr,
		ContainerID: x.c.id,
		Pid:         x.pid,
		CanRemove:   x.exitCode != nil,
		DetachKeys:  []byte(x.req.DetachKeys),
		ProcessConfig: &container.ExecProcessConfig{
			Tty:        x.req.Tty,
			Entrypoint: x.req.Cmd[0],
			Arguments:  slices.Clone(x.req.Cmd[1:]),
			User:       x.req.User,
			Privileged: &x.req.Privileged,
		},
	}
	if x.exitCode != nil {
		code := *x.exitCode
		resp.ExitCode = &code
	}
	return resp, nil
}

// ExecResize resizes an exec's terminal.
func (e *Engine) ExecResize(ctx context.Context, execID string, height, width uint) error {
	x, err := e.execSession(execID)
	if err != nil {
		return err
	}
	x.mu.Lock()
	proc := x.proc
	x.mu.Unlock()
	if proc == nil {
		return conflictf("Exec %s is not running", execID)
	}
	return proc.Resize(ctx, uint16(width), uint16(height))
}

// Resize resizes a container's terminal.
func (e *Engine) Resize(ctx context.Context, ref string, height, width uint) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	t := c.task
	c.mu.Unlock()
	if t == nil {
		return conflictf("Container %s is not running", c.id)
	}
	return t.Resize(ctx, uint16(width), uint16(height))
}
