package inprocess

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/berth-project/berth/internal/runtime"
	"github.com/berth-project/berth/internal/runtimeclient"
)

// Runtime runs berth-runtime's lifecycle in the calling process for the
// runtime binary CLI.Path with CLI's root and cgroup driver; what it does
// not do itself (exec) goes to CLI.
type Runtime struct {
	// CLI is the same runtime's command-line client.
	CLI *runtimeclient.Runtime
	// Warn receives what the runtime would log as warnings (a resource
	// the host cannot limit, a failed poststop hook).
	Warn func(string)

	mu sync.Mutex
	// created are the containers this Runtime created, kept (unlocked)
	// for the later steps, which then decode state.json again only when
	// another process changed it (runtime.Container.Reload).
	created map[string]*runtime.Container
}

// root is the runtime's --root: runtimeclient leaves it empty for the
// binary's default.
func (r *Runtime) root() string {
	if r.CLI.Root != "" {
		return r.CLI.Root
	}
	return "/run/berth-runtime"
}

func (r *Runtime) warn(format string, args ...any) {
	if r.Warn != nil {
		r.Warn(fmt.Sprintf(format, args...))
	}
}

// Warm readies this process for its first Create ahead of time (see
// runtime.Warm): berth-shim's standby calls it while it waits. It also
// has os settle, once, whether the kernel's pidfds work (a probe that
// forks a child), which the first process started would otherwise do.
func Warm() {
	runtime.Warm()
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
}

// Create is `berth-runtime create`. Descriptors beyond stdio are passed
// by the command line's --preserve-fds, which numbers them in the
// runtime's own table: such creates go to the binary.
func (r *Runtime) Create(ctx context.Context, id string, o runtimeclient.CreateOptions) error {
	if len(o.ExtraFiles) > 0 {
		return r.CLI.Create(ctx, id, o)
	}
	if err := ctx.Err(); err != nil {
		return wrap("create", id, err)
	}
	// The init inherits what it is given, never the caller's own stdio
	// (the shim's stderr is its log): /dev/null stands in, as for an
	// executed runtime whose stdio the client leaves unset.
	stdio := []*os.File{o.Stdin, o.Stdout, o.Stderr}
	for i, f := range stdio {
		if f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return wrap("create", id, err)
			}
			defer null.Close()
			stdio[i] = null
		}
	}
	c, _, err := runtime.Create(&runtime.CreateOptions{
		Root: r.root(), ID: id, Bundle: o.Bundle, PidFile: o.PidFile, ConsoleSocket: o.ConsoleSocket,
		NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, SystemdCgroup: r.CLI.SystemdCgroup,
		Stdin: stdio[0], Stdout: stdio[1], Stderr: stdio[2],
		Warn:   func(msg string) { r.warn("create %s: %s", id, msg) },
		Binary: r.CLI.Path,
	})
	if err != nil {
		return wrap("create", id, err)
	}
	err = c.Close()
	go trimCHeap()
	r.mu.Lock()
	if r.created == nil {
		r.created = map[string]*runtime.Container{}
	}
	r.created[id] = c
	r.mu.Unlock()
	return err
}

// Start is `berth-runtime start`: it returns once the user's program has
// been executed.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.with("start", id, func(c *runtime.Container) error { return c.Start() })
}

// Kill is `berth-runtime kill [--all]`.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	return r.with("kill", id, func(c *runtime.Container) error { return c.Kill(sig, all) })
}

// Pause is `berth-runtime pause`.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.with("pause", id, func(c *runtime.Container) error { return c.Pause() })
}

// Resume is `berth-runtime resume`.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.with("resume", id, func(c *runtime.Container) error { return c.Resume() })
}

// Delete is `berth-runtime delete [--force]`. A failed poststop hook is a
// warning, as on the command line: the container is gone.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	err := r.with("delete", id, func(c *runtime.Container) error { return c.Delete(force) })
	var w *runtime.Warning
	if errors.As(err, &w) {
		r.warn("delete %s: %v", id, w.Err)
		return nil
	}
	return err
}

// Exec is `berth-runtime exec`, always through the binary: the process
// joins the container's namespaces, which the nsenter constructor of a
// fresh runtime process does.
func (r *Runtime) Exec(ctx context.Context, id string, o runtimeclient.ExecOptions) error {
	return r.CLI.Exec(ctx, id, o)
}

// Forget drops the handle kept for container id: the next call decodes
// its state again. A shim calls it once its container has settled, so
// that an idle shim does not hold the whole spec.
func (r *Runtime) Forget(id string) {
	r.mu.Lock()
	delete(r.created, id)
	r.mu.Unlock()
}

// with loads container id (or reloads the one this Runtime created), runs
// fn on it and releases it. Calls for one id run one at a time: the
// container's lock serialises them, as it does separate processes.
func (r *Runtime) with(op, id string, fn func(*runtime.Container) error) error {
	r.mu.Lock()
	c := r.created[id]
	delete(r.created, id) // back once released, unless deleted
	r.mu.Unlock()
	var err error
	if c != nil {
		err = c.Reload()
	} else {
		c, err = runtime.Load(r.root(), id)
	}
	if err != nil {
		return wrap(op, id, err)
	}
	err = fn(c)
	c.Close()
	if !(op == "delete" && (err == nil || isWarning(err))) {
		r.mu.Lock()
		if r.created == nil {
			r.created = map[string]*runtime.Container{}
		}
		if r.created[id] == nil {
			r.created[id] = c
		}
		r.mu.Unlock()
	}
	return wrap(op, id, err)
}

func isWarning(err error) bool {
	var w *runtime.Warning
	return errors.As(err, &w)
}

// Error is a lifecycle step that failed, worded as runtimeclient.Error
// words the binary's failures ("runtime start ID: ..."), and matching the
// same kinds: runtimeclient.ErrNotExist, ErrExist and ErrNotRunning.
type Error struct {
	Op, ID string
	Err    error
}

func (e *Error) Error() string { return "runtime " + e.Op + " " + e.ID + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Is maps the runtime's error kinds to the client's.
func (e *Error) Is(target error) bool {
	switch target {
	case runtimeclient.ErrNotExist:
		return errors.Is(e.Err, runtime.ErrNotExist)
	case runtimeclient.ErrExist:
		return errors.Is(e.Err, runtime.ErrExist)
	case runtimeclient.ErrNotRunning:
		return errors.Is(e.Err, runtime.ErrNotRunning)
	}
	return false
}

func wrap(op, id string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, ID: id, Err: err}
}
