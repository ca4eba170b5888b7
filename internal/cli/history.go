package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const historyFormat = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

var historyHeaders = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
	"Size": "SIZE", "Comment": "COMMENT",
}

func (c *CLI) historyCommand() *cobra.Command {
	var human, quiet, noTrunc bool
	var tmpl string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			def := historyFormat
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
			res, err := api.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			now := time.Now()
			var rows []map[string]any
			for _, h := range res.Items {
				id := h.ID
				if !noTrunc {
					id = format.ShortID(id)
				}
				created := time.Unix(h.Created, 0)
				createdAt := created.Format(time.RFC3339)
				since := createdAt
				if human {
					since = format.Since(created, now)
				}
				size := strconv.FormatInt(h.Size, 10)
				if human {
					size = format.Size(h.Size)
				}
				createdBy := strings.ReplaceAll(h.CreatedBy, "\t", " ")
				if !noTrunc {
					createdBy = format.Ellipsis(createdBy, 45)
				}
				rows = append(rows, map[string]any{
					"ID": id, "CreatedSince": since, "CreatedAt": createdAt, "CreatedBy": createdBy,
					"Size": size, "Comment": h.Comment,
				})
			}
			return format.Write(c.Out, t, table, historyHeaders, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&tmpl, "format", "", "Format output using a custom template")
	return cmd
}
