package shim

import (
	"context"
	"syscall"

	"github.com/berth-project/berth/internal/runtimeclient"
)

// Runtime is the container's OCI runtime as the shim drives it. The
// command-line client (*runtimeclient.Runtime) is one, for any
// runc-compatible binary; berth-runtime's lifecycle run in the shim's own
// process (internal/runtimeclient/inprocess, wired by cmd/berth-shim
// through Config.InProcess) is the other.
type Runtime interface {
	Create(ctx context.Context, id string, o runtimeclient.CreateOptions) error
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Delete(ctx context.Context, id string, force bool) error
	Exec(ctx context.Context, id string, o runtimeclient.ExecOptions) error
}

// forgetter is a Runtime that keeps state per container between calls,
// which it can drop once the container has settled.
type forgetter interface{ Forget(id string) }

// heldRuntime is an in-process Runtime whose calls start and wait for
// children of the shim's own process (the init, hooks, helpers) with
// os/exec: the reaper is held for the length of each call, so that it
// reaps only the processes it watches and leaves those to their waiters.
type heldRuntime struct {
	rt     Runtime
	reaper *reaper
}

func (h heldRuntime) Create(ctx context.Context, id string, o runtimeclient.CreateOptions) error {
	defer h.reaper.hold()()
	return h.rt.Create(ctx, id, o)
}

func (h heldRuntime) Start(ctx context.Context, id string) error {
	defer h.reaper.hold()()
	return h.rt.Start(ctx, id)
}

func (h heldRuntime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	defer h.reaper.hold()()
	return h.rt.Kill(ctx, id, sig, all)
}

func (h heldRuntime) Pause(ctx context.Context, id string) error {
	defer h.reaper.hold()()
	return h.rt.Pause(ctx, id)
}

func (h heldRuntime) Resume(ctx context.Context, id string) error {
	defer h.reaper.hold()()
	return h.rt.Resume(ctx, id)
}

func (h heldRuntime) Delete(ctx context.Context, id string, force bool) error {
	defer h.reaper.hold()()
	return h.rt.Delete(ctx, id, force)
}

func (h heldRuntime) Exec(ctx context.Context, id string, o runtimeclient.ExecOptions) error {
	defer h.reaper.hold()()
	return h.rt.Exec(ctx, id, o)
}

func (h heldRuntime) Forget(id string) {
	if f, ok := h.rt.(forgetter); ok {
		f.Forget(id)
	}
}
