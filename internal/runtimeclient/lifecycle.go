package runtimeclient

import (
	"context"
	"strconv"
	"syscall"
)

// Start runs the user's process in created container id.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, id, []string{"start", id}, nil)
	return err
}

// Kill sends sig to the container's init, or with all to every process of
// the container.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, id, strconv.Itoa(int(sig)))
	_, err := r.run(ctx, id, args, nil)
	return err
}

// Delete removes container id and what it holds (cgroup, state); with
// force a running container is killed first.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	args = append(args, id)
	_, err := r.run(ctx, id, args, nil)
	return err
}

// Pause freezes every process of container id.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	_, err := r.run(ctx, id, []string{"pause", id}, nil)
	return err
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	_, err := r.run(ctx, id, []string{"resume", id}, nil)
	return err
}
