package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

// rfc3339NanoFixed is docker's event time format: always nine digits.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

func (c *CLI) eventsCommand() *cobra.Command {
	var since, until, tmpl string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from berthd",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			var t *template.Template
			if tmpl != "" {
				text := tmpl
				if text == "json" {
					text = "{{json .}}"
				}
				if t, err = template.New("events").Funcs(format.Funcs).Parse(text); err != nil {
					return fmt.Errorf("template parsing error: %w", err)
				}
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res := api.Events(cmd.Context(), client.EventsListOptions{Since: since, Until: until, Filters: f})
			for {
				select {
				case m := <-res.Messages:
					if t != nil {
						if err := format.Execute(c.Out, t, m); err != nil {
							return err
						}
						continue
					}
					printEvent(c.Out, m)
				case err := <-res.Err:
					if err == nil || errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "Show all events created since timestamp")
	fl.StringVar(&until, "until", "", "Stream events until this timestamp")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	fl.StringVar(&tmpl, "format", "", "Format output using a custom template")
	return cmd
}

// printEvent writes "<time> <type> <action> <id> (k=v, ...)" as docker does.
func printEvent(w io.Writer, m events.Message) {
	ts := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		ts = time.Unix(m.Time, 0)
	}
	fmt.Fprintf(w, "%s %s %s %s", ts.Format(rfc3339NanoFixed), m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		kv := make([]string, 0, len(keys))
		for _, k := range keys {
			kv = append(kv, k+"="+m.Actor.Attributes[k])
		}
		fmt.Fprintf(w, " (%s)", strings.Join(kv, ", "))
	}
	fmt.Fprintln(w)
}
