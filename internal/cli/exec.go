package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"os"
)

func (c *CLI) execCommand() *cobra.Command {
	var interactive, tty, detach, privileged bool
	var env, envFiles []string
	var user, workdir, detachKeys string
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			api, err := c.Client(ctx)
			if err != nil {
				return err
			}
			o := ctrOpts{env: env, envFiles: envFiles}
			vars, err := o.environment()
			if err != nil {
				return err
			}
			create := client.ExecCreateOptions{
				User: user, Privileged: privileged, TTY: tty, AttachStdin: interactive,
				AttachStdout: !detach, AttachStderr: !detach, DetachKeys: detachKeys,
				Env: vars, WorkingDir: workdir, Cmd: args[1:],
			}
			if tty {
				create.ConsoleSize = c.consoleSize()
			}
			res, err := api.ExecCreate(ctx, args[0], create)
			if err != nil {
				return err
			}
			if detach {
				_, err := api.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true, TTY: tty, ConsoleSize: create.ConsoleSize})
				return err
			}
			att, err := api.ExecAttach(ctx, res.ID, client.ExecAttachOptions{TTY: tty, ConsoleSize: create.ConsoleSize})
			if err != nil {
				return err
			}
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if tty {
				c.monitorSize(sctx, func(h, w uint) error {
					_, err := api.ExecResize(sctx, res.ID, client.ExecResizeOptions{Height: h, Width: w})
					return err
				})
			}
			so := streamOptions{tty: tty, stdout: c.Out, stderr: c.Err, detachKeys: detachKeys}
			if interactive {
				so.stdin = c.In
			}
			if err := c.stream(sctx, att.HijackedResponse, so); err != nil {
				if errors.Is(err, errDetached) {
					return nil
				}
				return err
			}
			insp, err := api.ExecInspect(ctx, res.ID, client.ExecInspectOptions{})
			if err != nil {
				return err
			}
			if insp.ExitCode != 0 {
				return &StatusError{Status: insp.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fl.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	fl.StringArrayVarP(&env, "env", "e", nil, "Set environment variables")
	fl.StringArrayVar(&envFiles, "env-file", nil, "Read in a file of environment variables")
	fl.StringVarP(&user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// consoleSize is the terminal's [height, width], zero when stdout is no
// terminal.
func (c *CLI) consoleSize() client.ConsoleSize {
	if f, ok := c.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			return client.ConsoleSize{Height: uint(h), Width: uint(w)}
		}
	}
	return client.ConsoleSize{}
}

func (c *CLI) attachCommand() *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			api, err := c.Client(ctx)
			if err != nil {
				return err
			}
			insp, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			st := insp.Container.State
			if st == nil || !st.Running {
				return errors.New("You cannot attach to a stopped container, start it first")
			}
			if st.Paused {
				return errors.New("You cannot attach to a paused container, unpause it first")
			}
			id, cfg := insp.Container.ID, insp.Container.Config
			stdin := cfg.OpenStdin && !noStdin
			resp, err := api.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
			if err != nil {
				return err
			}
			wait := api.ContainerWait(ctx, id, client.ContainerWaitOptions{})
			if cfg.Tty {
				c.monitorSize(ctx, func(h, w uint) error {
					_, err := api.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
					return err
				})
			}
			if sigProxy && !cfg.Tty {
				c.proxySignals(ctx, api, id)
			}
			so := streamOptions{tty: cfg.Tty, stdout: c.Out, stderr: c.Err, detachKeys: detachKeys}
			if stdin {
				so.stdin = c.In
			}
			if err := c.stream(ctx, resp.HijackedResponse, so); err != nil {
				if errors.Is(err, errDetached) {
					fmt.Fprintln(c.Err)
					return nil
				}
				return err
			}
			select {
			case res := <-wait.Result:
				if res.StatusCode != 0 {
					return &StatusError{Status: int(res.StatusCode)}
				}
			case err := <-wait.Error:
				return err
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}
