package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const volumeFormat = "table {{.Driver}}\t{{.Name}}"

var volumeHeaders = map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "Labels": "LABELS", "CreatedAt": "CREATED AT"}

func (c *CLI) volumeCommand() *cobra.Command {
	vol := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	vol.AddCommand(c.volumeCreateCommand(), c.volumeListCommand(), c.volumeInspectCommand(), c.volumeRemoveCommand(), c.volumePruneCommand())
	return vol
}

func (c *CLI) volumeCreateCommand() *cobra.Command {
	var driver string
	var opts, labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.VolumeCreateOptions{Driver: driver, DriverOpts: map[string]string{}, Labels: map[string]string{}}
			if len(args) == 1 {
				o.Name = args[0]
			}
			for _, kv := range opts {
				k, v, _ := strings.Cut(kv, "=")
				o.DriverOpts[k] = v
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				o.Labels[k] = v
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.VolumeCreate(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Out, res.Volume.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	cmd.Flags().StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	return cmd
}

func (c *CLI) volumeListCommand() *cobra.Command {
	var quiet bool
	var filters []string
	var tmpl string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			def := volumeFormat
			if quiet {
				tmpl, def = "{{.Name}}", "{{.Name}}"
			}
			t, table, err := format.Parse(tmpl, def)
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: f})
			if err != nil {
				return err
			}
			var rows []map[string]any
			for _, v := range res.Items {
				var labels []string
				for _, k := range sortedKeys(v.Labels) {
					labels = append(labels, k+"="+v.Labels[k])
				}
				rows = append(rows, map[string]any{"Driver": v.Driver, "Name": v.Name, "Mountpoint": v.Mountpoint,
					"Scope": v.Scope, "Labels": strings.Join(labels, ","), "CreatedAt": v.CreatedAt})
			}
			return format.Write(c.Out, t, table, volumeHeaders, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. \"dangling=true\")")
	cmd.Flags().StringVar(&tmpl, "format", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) volumeInspectCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.inspectObjects(cmd, args, tmpl, "volume", false)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) volumeRemoveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(n string) error {
				_, err := api.VolumeRemove(cmd.Context(), n, client.VolumeRemoveOptions{Force: force})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func (c *CLI) volumePruneCommand() *cobra.Command {
	var force, all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			if all {
				f.Add("all", "true")
			}
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
			if all {
				warning = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
			}
			if !force && !c.confirm(warning) {
				return nil
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.VolumePrune(cmd.Context(), client.VolumePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.VolumesDeleted) > 0 {
				fmt.Fprintln(c.Out, "Deleted Volumes:")
				for _, n := range res.Report.VolumesDeleted {
					fmt.Fprintln(c.Out, n)
				}
				fmt.Fprintln(c.Out)
			}
			fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"label=<label>\")")
	return cmd
}

// inspectObjects prints containers, images or volumes as docker inspect
// does: kind "" looks each name up as a container, then an image, then a
// volume. The objects found are printed even when others are not; the
// errors follow.
func (c *CLI) inspectObjects(cmd *cobra.Command, names []string, tmpl, kind string, size bool) error {
	t, err := inspectTemplate(tmpl)
	if err != nil {
		return err
	}
	api, err := c.Client(cmd.Context())
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var raws []json.RawMessage
	var errs []string
	for _, n := range names {
		var raw json.RawMessage
		var found error = errors.New("not found")
		if kind == "" || kind == "container" {
			if res, err := api.ContainerInspect(ctx, n, client.ContainerInspectOptions{Size: size}); err == nil {
				raw, found = res.Raw, nil
			} else if !isNotFound(err) {
				return err
			}
		}
		if found != nil && (kind == "" || kind == "image") {
			if raw, err = c.rawImage(ctx, api, n); err == nil {
				found = nil
			} else if !isNotFound(err) {
				return err
			}
		}
		if found != nil && (kind == "" || kind == "volume") {
			if res, err := api.VolumeInspect(ctx, n, client.VolumeInspectOptions{}); err == nil {
				if raw, err = json.Marshal(res.Volume); err == nil {
					found = nil
				}
			} else if !isNotFound(err) {
				return err
			}
		}
		if found != nil {
			what := "object"
			if kind != "" {
				what = kind
			}
			errs = append(errs, fmt.Sprintf("Error: No such %s: %s", what, n))
			continue
		}
		raws = append(raws, raw)
	}
	if err := c.printInspect(t, raws); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}
