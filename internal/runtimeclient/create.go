package runtimeclient

import (
	"context"
	"os"
	"strconv"
)

// CreateOptions are the flags and descriptors of `create`.
type CreateOptions struct {
	// Bundle is the bundle directory (config.json, rootfs).
	Bundle string
	// PidFile receives the init's pid.
	PidFile string
	// ConsoleSocket, for a process.terminal spec, is the unix socket that
	// receives the pty master.
	ConsoleSocket string
	// Stdin, Stdout and Stderr become the container's stdio when it has no
	// terminal (the init inherits the runtime's); nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles are passed to the container after stdio
	// (--preserve-fds).
	ExtraFiles []*os.File
	// NoPivot and NoNewKeyring are runc's flags of those names.
	NoPivot, NoNewKeyring bool
}

// Create creates container id from a bundle: its namespaces, mounts and
// cgroup are set up and its init waits for Start.
func (r *Runtime) Create(ctx context.Context, id string, o CreateOptions) error {
	args := []string{"create", "--bundle", o.Bundle}
	if o.PidFile != "" {
		args = append(args, "--pid-file", o.PidFile)
	}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	if len(o.ExtraFiles) > 0 {
		args = append(args, "--preserve-fds", strconv.Itoa(len(o.ExtraFiles)))
	}
	if o.NoPivot {
		args = append(args, "--no-pivot")
	}
	if o.NoNewKeyring {
		args = append(args, "--no-new-keyring")
	}
	args = append(args, id)
	_, err := r.run(ctx, id, args, &procIO{stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr, extra: o.ExtraFiles, passthrough: true})
	return err
}
