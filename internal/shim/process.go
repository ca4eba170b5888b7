package shim

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/runtimeclient"
)

// process is the container's init or one exec. Its fields are guarded by
// the server's mutex, except io, set at creation and never replaced.
type process struct {
	srv   *server
	id    string // "" for the init
	tty   bool
	stdin bool
	spec  *specs.Process // an exec's

	status    string
	starting  bool
	pid       int
	startedAt time.Time
	exit      *Exit
	exited    chan struct{}
	io        *stdio
}

func (p *process) isInit() bool { return p.id == "" }

// waitExit records the exit of the process when the reaper reports it:
// the output is drained into the log and the attached clients first, then
// (for the init) exit.json is written, then waiters are released. So a
// client that saw Wait return finds the whole output in the log.
func (p *process) waitExit(ch <-chan syscall.WaitStatus) {
	s := p.srv
	ws := <-ch
	at := time.Now().UTC()
	e := &Exit{Code: runtimeclient.ExitStatus(ws), ExitedAt: at}
	p.io.drain(drainTimeout)
	if p.isInit() {
		e.OOMKilled = s.oom.killed()
		data, _ := json.Marshal(e)
		if err := writeFileAtomic(filepath.Join(s.cfg.Bundle, ExitFile), data, 0o644); err != nil {
			s.logf("record exit: %v", err)
		}
	}
	s.mu.Lock()
	p.exit = e
	p.status = StatusStopped
	if p.isInit() {
		s.paused = false
	}
	s.mu.Unlock()
	close(p.exited)
	p.io.close()
}

// state describes p.
func (p *process) state() *State {
	s := p.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &State{ID: p.id, Pid: p.pid, Status: p.status, Tty: p.tty, StartedAt: p.startedAt}
	if p.isInit() {
		st.ID = s.cfg.ID
		if s.paused && p.status == StatusRunning {
			st.Status = StatusPaused
		}
	}
	if p.exit != nil {
		st.ExitCode = p.exit.Code
		st.ExitedAt = p.exit.ExitedAt
		st.OOMKilled = p.exit.OOMKilled
	}
	return st
}

// dispatch answers every request but attach; after, when not nil, runs
// once the response is written.
func (s *server) dispatch(req *request) (resp response, after func()) {
	var err error
	switch req.Op {
	case opExec:
		err = s.newExec(req)
	case opPause, opResume:
		err = s.pause(req.Op == opPause)
	case opDelete:
		if err = s.delete(); err == nil {
			after = func() { close(s.done) }
		}
	case opState, opStart, opKill, opWait, opResize:
		var p *process
		if p, err = s.lookup(req.Exec); err != nil {
			break
		}
		switch req.Op {
		case opState:
			resp.State = p.state()
		case opStart:
			err = s.startProcess(p)
		case opKill:
			err = s.kill(p, syscall.Signal(req.Signal), req.All)
		case opWait:
			<-p.exited
			s.mu.Lock()
			resp.Exit = p.exit
			s.mu.Unlock()
		case opResize:
			err = s.resize(p, req.Width, req.Height)
		}
	default:
		err = errInvalid("unknown operation %q", req.Op)
	}
	if err != nil {
		resp = response{Error: toWire(err)}
		after = nil
	}
	return resp, after
}

func (s *server) lookup(execID string) (*process, error) {
	if execID == "" {
		return s.init, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.execs[execID]
	if !ok {
		return nil, errKind(ErrNotFound, "no exec %q in container %s", execID, s.cfg.ID)
	}
	return p, nil
}

// newExec records an exec, to be started by a later start request. Exits
// of forgotten execs make room (maxExecs).
func (s *server) newExec(req *request) error {
	if !validExecID(req.Exec) {
		return errInvalid("invalid exec id %q", req.Exec)
	}
	if req.Process == nil || len(req.Process.Args) == 0 {
		return errInvalid("exec %s: no process arguments", req.Exec)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleting || s.init.status == StatusStopped {
		return errKind(ErrNotRunning, "container %s is not running", s.cfg.ID)
	}
	if _, ok := s.execs[req.Exec]; ok {
		return errKind(ErrExists, "exec %s already exists in container %s", req.Exec, s.cfg.ID)
	}
	if len(s.execs) >= maxExecs {
		for i, id := range s.execOrder {
			if s.execs[id].status == StatusStopped {
				delete(s.execs, id)
				s.execOrder = append(s.execOrder[:i], s.execOrder[i+1:]...)
				break
			}
		}
		if len(s.execs) >= maxExecs {
			return errKind(ErrConflict, "container %s has %d execs running or waiting to start", s.cfg.ID, len(s.execs))
		}
	}
	spec := *req.Process
	spec.Terminal = req.Tty
	s.execs[req.Exec] = &process{srv: s, id: req.Exec, tty: req.Tty, stdin: req.Stdin, spec: &spec,
		status: StatusCreated, exited: make(chan struct{}), io: newStdio(req.Tty, req.Stdin)}
	s.execOrder = append(s.execOrder, req.Exec)
	return nil
}

// startProcess starts the init (`runtime start`) or an exec (`runtime exec
// --detach`).
func (s *server) startProcess(p *process) error {
	s.mu.Lock()
	if p.status != StatusCreated || p.starting {
		st := p.status
		s.mu.Unlock()
		if st == StatusStopped {
			return errKind(ErrNotRunning, "process has exited")
		}
		return errKind(ErrConflict, "already started")
	}
	if !p.isInit() && s.init.status != StatusRunning {
		s.mu.Unlock()
		return errKind(ErrNotRunning, "container %s is not running", s.cfg.ID)
	}
	p.starting = true
	s.mu.Unlock()

	var err error
	if p.isInit() {
		err = s.startInit()
	} else {
		err = s.startExec(p)
	}
	s.mu.Lock()
	p.starting = false
	if err != nil && !p.isInit() {
		// An exec that could not start has ended, with the status a
		// shell (and docker) gives a command it cannot run, so that
		// Wait returns rather than blocking for ever.
		code := 126
		if m := strings.ToLower(err.Error()); strings.Contains(m, "no such file") || strings.Contains(m, "not found") {
			code = 127
		}
		p.exit = &Exit{Code: code, ExitedAt: time.Now().UTC()}
		p.status = StatusStopped
		close(p.exited)
	}
	if err == nil {
		p.startedAt = time.Now().UTC()
		if p.status == StatusCreated { // not already exited
			p.status = StatusRunning
		}
	}
	s.mu.Unlock()
	return err
}

func (s *server) startInit() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := s.rt.Start(ctx, s.cfg.ID); err != nil {
		return err
	}
	// Creating the container left the shim larger than an idle one
	// needs: once the container has settled, it sheds that (shed.go),
	// off the container's way; a container that ends sooner never pays.
	time.AfterFunc(shedDelays[0], s.settle)
	return nil
}

func (s *server) startExec(p *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), createTimeout)
	defer cancel()
	pidFile := filepath.Join(s.cfg.Bundle, "exec-"+p.id+".pid")
	defer os.Remove(pidFile)
	os.Remove(pidFile)
	pid, since, err := s.runWithStdio(p, pidFile, func(io *stdio, consoleSocket string) error {
		return s.rt.Exec(ctx, s.cfg.ID, runtimeclient.ExecOptions{
			Process: p.spec, Detach: true, PidFile: pidFile, ConsoleSocket: consoleSocket,
			Stdin: io.childIn, Stdout: io.childOut, Stderr: io.childErr,
		})
	})
	if err != nil {
		if errors.Is(err, runtimeclient.ErrNotRunning) {
			return errKind(ErrNotRunning, "%v", err)
		}
		return err
	}
	s.mu.Lock()
	p.pid = pid
	s.mu.Unlock()
	ch := s.reaper.watch(pid, since)
	p.io.pump(nil, func(err error) { s.logf("exec %s output: %v", p.id, err) }, nil)
	go p.waitExit(ch)
	return nil
}

// kill signals the init through the runtime (all: every process of the
// container), or an exec's process directly: the runtime has no command
// for it, and the reaper guarantees the pid is still that process.
func (s *server) kill(p *process, sig syscall.Signal, all bool) error {
	if sig <= 0 || sig > 64 {
		return errInvalid("invalid signal %d", sig)
	}
	s.mu.Lock()
	status, pid := p.status, p.pid
	s.mu.Unlock()
	if status == StatusStopped || pid == 0 {
		return errKind(ErrNotRunning, "process is not running")
	}
	if !p.isInit() {
		if err := s.reaper.signal(pid, sig); err != nil {
			return errKind(ErrNotRunning, "exec %s is not running", p.id)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := s.rt.Kill(ctx, s.cfg.ID, sig, all)
	if errors.Is(err, runtimeclient.ErrNotRunning) {
		return errKind(ErrNotRunning, "%v", err)
	}
	return err
}

func (s *server) resize(p *process, width, height uint16) error {
	if width == 0 || height == 0 {
		return errInvalid("invalid terminal size %dx%d", width, height)
	}
	s.mu.Lock()
	io, status := p.io, p.status
	s.mu.Unlock()
	if !p.tty {
		return errInvalid("the process has no terminal to resize")
	}
	if status != StatusRunning {
		return errKind(ErrNotRunning, "process is not running")
	}
	return io.resize(width, height)
}

func (s *server) pause(pause bool) error {
	s.mu.Lock()
	status := s.init.status
	s.mu.Unlock()
	if status != StatusRunning {
		return errKind(ErrNotRunning, "container %s is not running", s.cfg.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var err error
	if pause {
		err = s.rt.Pause(ctx, s.cfg.ID)
	} else {
		err = s.rt.Resume(ctx, s.cfg.ID)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.paused = pause
	s.mu.Unlock()
	return nil
}

// delete removes the container through the runtime (--force while its
// init has not exited) and waits for the init's exit; the shim exits once
// the answer is written.
func (s *server) delete() error {
	s.mu.Lock()
	if s.deleting {
		s.mu.Unlock()
		return errKind(ErrConflict, "container %s is being deleted", s.cfg.ID)
	}
	s.deleting = true
	running := s.init.status != StatusStopped
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := s.rt.Delete(ctx, s.cfg.ID, running)
	if err != nil && !errors.Is(err, runtimeclient.ErrNotExist) {
		s.mu.Lock()
		s.deleting = false
		s.mu.Unlock()
		return err
	}
	select {
	case <-s.init.exited:
	case <-ctx.Done():
		s.logf("delete: the init did not exit")
	}
	// No new connection from here on: a Dial after Delete returned must
	// find no shim. The answer goes out on the open connection. The
	// socket and pid files go now, before the answer, never after it:
	// the container may then be started again from the same directory,
	// by a new shim whose files this one must not remove.
	s.listener.Close()
	os.Remove(filepath.Join(s.cfg.Bundle, SocketFile))
	os.Remove(filepath.Join(s.cfg.Bundle, PidFile))
	return nil
}
