package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// simpleVerb is a verb that applies one call to each container named.
func (c *CLI) simpleVerb(use, short string, call func(ctx context.Context, api *client.Client, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(n string) error { return call(cmd.Context(), api, n) })
		},
	}
}

func (c *CLI) stopCommand(use string) *cobra.Command {
	var timeout int
	var signal string
	short := "Stop one or more running containers"
	if use == "restart" {
		short = "Restart one or more containers"
	}
	cmd := c.simpleVerb(use+" [OPTIONS]", short, nil)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		api, err := c.Client(cmd.Context())
		if err != nil {
			return err
		}
		var t *int
		if cmd.Flags().Changed("timeout") {
			t = &timeout
		}
		return c.eachContainer(cmd.Context(), args, func(n string) error {
			if use == "restart" {
				_, err := api.ContainerRestart(cmd.Context(), n, client.ContainerRestartOptions{Timeout: t, Signal: signal})
				return err
			}
			_, err := api.ContainerStop(cmd.Context(), n, client.ContainerStopOptions{Timeout: t, Signal: signal})
			return err
		})
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *CLI) killCommand() *cobra.Command {
	var signal string
	cmd := c.simpleVerb("kill [OPTIONS]", "Kill one or more running containers", func(ctx context.Context, api *client.Client, n string) error {
		_, err := api.ContainerKill(ctx, n, client.ContainerKillOptions{Signal: signal})
		return err
	})
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *CLI) rmCommand() *cobra.Command {
	var force, volumes, link bool
	cmd := c.simpleVerb("rm [OPTIONS]", "Remove one or more containers", func(ctx context.Context, api *client.Client, n string) error {
		_, err := api.ContainerRemove(ctx, n, client.ContainerRemoveOptions{Force: force, RemoveVolumes: volumes, RemoveLinks: link})
		return err
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	cmd.Flags().BoolVarP(&link, "link", "l", false, "Remove the specified link")
	return cmd
}

func (c *CLI) pauseCommand(unpause bool) *cobra.Command {
	if unpause {
		return c.simpleVerb("unpause", "Unpause all processes within one or more containers", func(ctx context.Context, api *client.Client, n string) error {
			_, err := api.ContainerUnpause(ctx, n, client.ContainerUnpauseOptions{})
			return err
		})
	}
	return c.simpleVerb("pause", "Pause all processes within one or more containers", func(ctx context.Context, api *client.Client, n string) error {
		_, err := api.ContainerPause(ctx, n, client.ContainerPauseOptions{})
		return err
	})
}

func (c *CLI) renameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			if strings.TrimSpace(args[1]) == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			_, err = api.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: args[1]})
			return err
		},
	}
}

func (c *CLI) waitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			var errs []string
			for _, n := range args {
				w := api.ContainerWait(cmd.Context(), n, client.ContainerWaitOptions{})
				select {
				case res := <-w.Result:
					fmt.Fprintln(c.Out, res.StatusCode)
				case err := <-w.Error:
					errs = append(errs, err.Error())
				}
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "\n"))
			}
			return nil
		},
	}
}

func (c *CLI) topCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.Out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
}

func (c *CLI) portCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			ns := res.Container.NetworkSettings
			if ns == nil {
				return nil
			}
			var want string
			if len(args) == 2 {
				want = args[1]
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
			}
			var lines []string
			found := false
			for p, bindings := range ns.Ports {
				if want != "" && p.String() != want {
					continue
				}
				found = true
				for _, b := range bindings {
					addr := "0.0.0.0"
					if b.HostIP.IsValid() {
						addr = b.HostIP.String()
						if b.HostIP.Is6() {
							addr = "[" + addr + "]"
						}
					}
					if want != "" {
						lines = append(lines, addr+":"+b.HostPort)
					} else {
						lines = append(lines, p.String()+" -> "+addr+":"+b.HostPort)
					}
				}
			}
			if want != "" && !found {
				return fmt.Errorf("Error: No public port '%s' published for %s", want, args[0])
			}
			sort.Strings(lines)
			for _, l := range lines {
				fmt.Fprintln(c.Out, l)
			}
			return nil
		},
	}
}

func (c *CLI) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				kind := map[container.ChangeType]string{container.ChangeModify: "C", container.ChangeAdd: "A", container.ChangeDelete: "D"}[ch.Kind]
				fmt.Fprintf(c.Out, "%s %s\n", kind, ch.Path)
			}
			return nil
		},
	}
}

func (c *CLI) exportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, closeOut, err := c.archiveOutput(output, "export")
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			rc, err := api.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			if _, err := io.Copy(out, rc); err != nil {
				return err
			}
			return closeOut()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

// archiveOutput is -o FILE, or stdout unless it is a terminal.
func (c *CLI) archiveOutput(path, verb string) (io.Writer, func() error, error) {
	if path == "" {
		if isTerminal(c.Out) {
			return nil, nil, fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
		return c.Out, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to %s container: %w", verb, err)
	}
	return f, f.Close, nil
}

func (c *CLI) logsCommand() *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			insp, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			o.ShowStdout, o.ShowStderr = true, true
			rc, err := api.ContainerLogs(cmd.Context(), insp.Container.ID, o)
			if err != nil {
				return err
			}
			defer rc.Close()
			if insp.Container.Config.Tty {
				_, err = io.Copy(c.Out, rc)
			} else {
				_, err = stdcopy.StdCopy(c.Out, c.Err, rc)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	fl.StringVar(&o.Since, "since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fl.StringVar(&o.Until, "until", "", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fl.BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	fl.BoolVar(&o.Details, "details", false, "Show extra details provided to logs")
	fl.StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

func (c *CLI) containerPruneCommand() *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			if !force && !c.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?") {
				return nil
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.ContainersDeleted) > 0 {
				fmt.Fprintln(c.Out, "Deleted Containers:")
				for _, id := range res.Report.ContainersDeleted {
					fmt.Fprintln(c.Out, id)
				}
				fmt.Fprintln(c.Out)
			}
			fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

func (c *CLI) commitCommand() *cobra.Command {
	var o client.ContainerCommitOptions
	var changes []string
	pause := true
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 2 {
				o.Reference = args[1]
			}
			o.Changes, o.NoPause = changes, !pause
			res, err := api.ContainerCommit(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Out, res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fl.StringVarP(&o.Comment, "message", "m", "", "Commit message")
	fl.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	fl.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}
