package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func (c *CLI) runCommand() *cobra.Command {
	var o ctrOpts
	var detach, sigProxy, quiet bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd, &o, args, detach, sigProxy, quiet, detachKeys)
		},
	}
	fs := cmd.Flags()
	o.addFlags(fs)
	fs.BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Suppress the pull output")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func (c *CLI) createCommand() *cobra.Command {
	var o ctrOpts
	var quiet bool
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.createContainer(cmd, &o, args, quiet)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Out, id)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the pull output")
	return cmd
}

// createContainer creates the container of run and create, pulling the
// image first when berthd does not have it (or always, with --pull
// always), as docker does. Errors carry docker's exit status 125.
func (c *CLI) createContainer(cmd *cobra.Command, o *ctrOpts, args []string, quiet bool) (string, error) {
	ctx := cmd.Context()
	cfg, hc, nc, err := o.parse(cmd.Flags(), args[0], args[1:])
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.help {
			se.Message += fmt.Sprintf("\nSee '%s --help'.", cmd.CommandPath())
		}
		return "", err
	}
	if cfg.Tty {
		// The terminal's size from the start, as the docker CLI sets it.
		if cs := c.consoleSize(); cs.Height > 0 && cs.Width > 0 {
			hc.ConsoleSize = [2]uint{cs.Height, cs.Width}
		}
	}
	platform, err := parsePlatform(o.platform)
	if err != nil {
		return "", &StatusError{Status: 125, Message: err.Error()}
	}
	switch o.pull {
	case "always", "missing", "never":
	default:
		return "", invalid("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", o.pull)
	}
	api, err := c.Client(ctx)
	if err != nil {
		return "", status125(err)
	}
	opts := client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: o.name, Platform: platform}
	if o.pull == "always" {
		if err := c.pullForRun(ctx, api, args[0], platform, quiet); err != nil {
			return "", status125(err)
		}
	}
	res, err := api.ContainerCreate(ctx, opts)
	if err != nil && isNotFound(err) && o.pull == "missing" && strings.Contains(err.Error(), "No such image") {
		name := args[0]
		if named, err := reference.ParseNormalizedNamed(name); err == nil {
			name = reference.FamiliarString(reference.TagNameOnly(named))
		}
		fmt.Fprintf(c.Err, "Unable to find image '%s' locally\n", name)
		if err := c.pullForRun(ctx, api, args[0], platform, quiet); err != nil {
			return "", status125(err)
		}
		res, err = api.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", status125(err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.Err, "WARNING: %s\n", w)
	}
	return res.ID, nil
}

// isNotFound tells a 404 of berthd: the client classifies its errors by
// status with containerd's error classes.
func isNotFound(err error) bool {
	return cerrdefs.IsNotFound(err)
}

// pullForRun pulls an image with its progress on stderr, as docker run
// shows it.
func (c *CLI) pullForRun(ctx context.Context, api *client.Client, img string, platform *ocispec.Platform, quiet bool) error {
	named, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return err
	}
	named = reference.TagNameOnly(named)
	opts := client.ImagePullOptions{}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := api.ImagePull(ctx, named.String(), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	out := c.Out
	c.Out = c.Err
	defer func() { c.Out = out }()
	return c.display(resp.JSONMessages(ctx), quiet)
}

// status125 marks an error of berth or berthd (not of the container) with
// docker's status 125, keeping its words.
func status125(err error) error {
	var se *StatusError
	if errors.As(err, &se) {
		return err
	}
	return &StatusError{Status: 125, Message: runMessage(describe(err, ""))}
}

// runMessage words an error of run or create as docker's CLI does.
func runMessage(msg string) string {
	return "berth: " + msg + "\n\nRun 'berth run --help' for more information"
}

// startError is docker run's status for a container that could not
// start: 127 when the command is missing, 126 when it cannot be run, 125
// otherwise.
func startError(err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "not found in $PATH"):
		code = 127
	case strings.Contains(msg, "permission denied"):
		code = 126
	}
	return &StatusError{Status: code, Message: runMessage(msg)}
}

func (c *CLI) run(cmd *cobra.Command, o *ctrOpts, args []string, detach, sigProxy, quiet bool, detachKeys string) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	if detach && len(o.attach) > 0 {
		return &StatusError{Status: 125, Message: "Conflicting options: -a and -d"}
	}
	if detach {
		// -d attaches nothing; stdin stays open in the container with -i.
		o.attach = []string{}
	}
	id, err := c.createContainer(cmd, o, args, quiet)
	if err != nil {
		return err
	}
	api, _ := c.Client(ctx)
	if detach {
		if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return startError(err)
		}
		fmt.Fprintln(c.Out, id)
		return nil
	}
	insp, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return status125(err)
	}
	cfg := insp.Container.Config
	return c.attachStartWait(ctx, api, id, cfg, o.rm, sigProxy && !cfg.Tty, detachKeys, true)
}

// attachStartWait is the attached half of run and start -a: attach, wait
// for the exit registered before the start, start, relay the streams and
// end with the container's status.
func (c *CLI) attachStartWait(ctx context.Context, api *client.Client, id string, cfg *container.Config, autoRemove, sigProxy bool, detachKeys string, start bool) error {
	var streamDone chan error
	if cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr {
		resp, err := api.ContainerAttach(ctx, id, client.ContainerAttachOptions{
			Stream: true, Stdin: cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr, DetachKeys: detachKeys,
		})
		if err != nil {
			return status125(err)
		}
		so := streamOptions{tty: cfg.Tty, stdout: io.Discard, stderr: io.Discard, detachKeys: detachKeys}
		if cfg.AttachStdin {
			so.stdin = c.In
		}
		if cfg.AttachStdout {
			so.stdout = c.Out
		}
		if cfg.AttachStderr {
			so.stderr = c.Err
		}
		streamDone = make(chan error, 1)
		go func() { streamDone <- c.stream(ctx, resp.HijackedResponse, so) }()
	}
	cond := container.WaitConditionNextExit
	if autoRemove {
		cond = container.WaitConditionRemoved
	}
	wait := api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	if start {
		if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			if autoRemove {
				api.ContainerRemove(context.WithoutCancel(ctx), id, client.ContainerRemoveOptions{Force: true})
			}
			return startError(err)
		}
	}
	if cfg.Tty && isTerminal(c.Out) {
		c.monitorSize(ctx, func(h, w uint) error {
			_, err := api.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if sigProxy {
		c.proxySignals(ctx, api, id)
	}
	if streamDone != nil {
		if err := <-streamDone; err != nil {
			if errors.Is(err, errDetached) {
				fmt.Fprintln(c.Err)
				return nil
			}
			return err
		}
	}
	select {
	case res := <-wait.Result:
		if res.Error != nil && res.Error.Message != "" {
			return &StatusError{Status: 125, Message: res.Error.Message}
		}
		if res.StatusCode != 0 {
			return &StatusError{Status: int(res.StatusCode)}
		}
		return nil
	case err := <-wait.Error:
		return status125(err)
	}
}

func (c *CLI) startCommand() *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			api, err := c.Client(ctx)
			if err != nil {
				return err
			}
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				insp, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
				if err != nil {
					return err
				}
				cfg := *insp.Container.Config
				cfg.AttachStdin = interactive && cfg.OpenStdin
				cfg.AttachStdout, cfg.AttachStderr = true, true
				return c.attachStartWait(ctx, api, insp.Container.ID, &cfg, false, !cfg.Tty, detachKeys, true)
			}
			return c.eachContainer(ctx, args, func(name string) error {
				_, err := api.ContainerStart(ctx, name, client.ContainerStartOptions{})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// eachContainer runs f for every name, printing each name that
// succeeded and the errors together at the end, as docker's multi-target
// verbs do.
func (c *CLI) eachContainer(ctx context.Context, names []string, f func(string) error) error {
	var errs []string
	for _, n := range names {
		if err := f(n); err != nil {
			errs = append(errs, describe(err, c.host))
			continue
		}
		fmt.Fprintln(c.Out, n)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}
