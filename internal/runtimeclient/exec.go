package runtimeclient

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions are the flags and descriptors of `exec`.
type ExecOptions struct {
	// Process is the process to run, passed as --process.
	Process *specs.Process
	// Detach returns once the process runs instead of waiting for it;
	// with a PidFile and a subreaper, the caller then reaps it.
	Detach bool
	// PidFile receives the process's pid.
	PidFile string
	// ConsoleSocket receives the pty master when Process.Terminal.
	ConsoleSocket string
	// Stdin, Stdout and Stderr become the process's stdio when it has no
	// terminal; nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles are passed after stdio (--preserve-fds).
	ExtraFiles []*os.File
}

// Exec runs a new process in container id. Without Detach it returns when
// the process exits, and a non-zero exit of the process is an *Error with
// its Status (the runtime exits with the process's status).
func (r *Runtime) Exec(ctx context.Context, id string, o ExecOptions) error {
	if o.Process == nil {
		return fmt.Errorf("runtime exec %s: no process", id)
	}
	spec, err := json.Marshal(o.Process)
	if err != nil {
		return fmt.Errorf("runtime exec %s: encode process: %w", id, err)
	}
	pf, err := newMemfd("process.json")
	if err != nil {
		return err
	}
	defer pf.close()
	if _, err := pf.f.Write(spec); err != nil {
		return fmt.Errorf("runtime exec %s: write process: %w", id, err)
	}
	args := []string{"exec", "--process", pf.path()}
	if o.Detach {
		args = append(args, "--detach")
	}
	if o.PidFile != "" {
		args = append(args, "--pid-file", o.PidFile)
	}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	if len(o.ExtraFiles) > 0 {
		args = append(args, "--preserve-fds", strconv.Itoa(len(o.ExtraFiles)))
	}
	args = append(args, id)
	_, err = r.run(ctx, id, args, &procIO{stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr, extra: o.ExtraFiles, passthrough: true})
	return err
}
