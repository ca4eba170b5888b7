package cli

import (
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const dfFormat = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

var dfHeaders = map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}

func (c *CLI) dfCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, table, err := format.Parse(tmpl, dfFormat)
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			du, err := api.DiskUsage(cmd.Context(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true})
			if err != nil {
				return err
			}
			row := func(kind string, total, active, size, reclaimable int64) map[string]any {
				rec := format.TotalSize(reclaimable)
				if size > 0 {
					rec = fmt.Sprintf("%s (%d%%)", rec, int(100*reclaimable/size))
				}
				return map[string]any{"Type": kind, "TotalCount": fmt.Sprint(total), "Active": fmt.Sprint(active),
					"Size": format.TotalSize(size), "Reclaimable": rec}
			}
			rows := []map[string]any{
				row("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable),
				row("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable),
				row("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable),
				row("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable),
			}
			return format.Write(c.Out, t, table, dfHeaders, rows)
		},
	}
	cmd.Flags().StringVar(&tmpl, "format", "", "Format output using a custom template")
	return cmd
}
