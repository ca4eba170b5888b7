package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const (
	psFormat     = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	psSizeFormat = psFormat + "\t{{.Size}}"
)

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Size": "SIZE", "Labels": "LABELS",
	"Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
}

func (c *CLI) psCommand(use string) *cobra.Command {
	var all, quiet, size, latest, noTrunc bool
	var last int
	var filters []string
	var tmpl string
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS]",
		Aliases: nil,
		Short:   "List containers",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			def := psFormat
			if size {
				def = psSizeFormat
			}
			if quiet {
				tmpl, def = "{{.ID}}", "{{.ID}}"
			}
			t, table, err := format.Parse(tmpl, def)
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			opts := client.ContainerListOptions{All: all, Size: size || strings.Contains(tmpl, ".Size"), Limit: last, Filters: f}
			if latest {
				opts.Limit = 1
			}
			res, err := api.ContainerList(cmd.Context(), opts)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]map[string]any, 0, len(res.Items))
			for _, s := range res.Items {
				rows = append(rows, psRow(s, !noTrunc, now))
			}
			return format.Write(c.Out, t, table, psHeaders, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	fl.StringVar(&tmpl, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// psRow is one container as docker ps shows it.
func psRow(s container.Summary, trunc bool, now time.Time) map[string]any {
	id, command, img := s.ID, s.Command, s.Image
	if trunc {
		id = format.ShortID(id)
		command = format.Ellipsis(command, 20)
		if strings.HasPrefix(img, "sha256:") {
			img = format.ShortID(img)
		}
	}
	var names []string
	for _, n := range s.Names {
		n = strings.TrimPrefix(n, "/")
		// Names with a slash are links of other containers.
		if !strings.Contains(n, "/") || !trunc {
			names = append(names, n)
		}
	}
	created := time.Unix(s.Created, 0)
	sz := format.Size(s.SizeRw)
	if s.SizeRootFs > 0 {
		sz += " (virtual " + format.Size(s.SizeRootFs) + ")"
	}
	var labels []string
	for _, k := range sortedKeys(s.Labels) {
		labels = append(labels, k+"="+s.Labels[k])
	}
	var mounts, volumes []string
	for _, m := range s.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if trunc {
			name = format.Ellipsis(name, 15)
		}
		mounts = append(mounts, name)
		if m.Type == "volume" && m.Driver == "local" {
			volumes = append(volumes, m.Name)
		}
	}
	var networks []string
	if s.NetworkSettings != nil {
		networks = sortedKeys(s.NetworkSettings.Networks)
	}
	return map[string]any{
		"ID":           id,
		"Image":        img,
		"Command":      strconv.Quote(command),
		"CreatedAt":    created.String(),
		"RunningFor":   format.Since(created, now),
		"Status":       s.Status,
		"State":        string(s.State),
		"Ports":        formatPorts(s.Ports),
		"Names":        strings.Join(names, ","),
		"Size":         sz,
		"Labels":       strings.Join(labels, ","),
		"Mounts":       strings.Join(mounts, ","),
		"LocalVolumes": fmt.Sprint(len(volumes)),
		"Networks":     strings.Join(networks, ","),
		"Platform":     "",
	}
}

// formatPorts is the PORTS column: "0.0.0.0:8080->80/tcp, 443/tcp".
func formatPorts(ports []container.PortSummary) string {
	var out []string
	for _, p := range ports {
		if p.PublicPort == 0 {
			out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
			continue
		}
		ip := ""
		if p.IP.IsValid() {
			ip = p.IP.String()
			if p.IP.Is6() {
				ip = "[" + ip + "]"
			}
			ip += ":"
		}
		out = append(out, fmt.Sprintf("%s%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ", ")
}
