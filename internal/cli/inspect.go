package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

func (c *CLI) imageInspectCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.inspectImages(cmd, args, tmpl)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// inspectCommand is "berth inspect": docker's inspect of containers,
// images and volumes, looked up in that order unless --type says which.
func (c *CLI) inspectCommand() *cobra.Command {
	var tmpl, kind string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch kind {
			case "", "container", "image", "volume":
			default:
				return fmt.Errorf("%q is not a valid value for --type", kind)
			}
			return c.inspectObjects(cmd, args, tmpl, kind, size)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format output using a custom template")
	cmd.Flags().StringVar(&kind, "type", "", "Only inspect objects of the given type")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

// inspectTemplate parses inspect's --format; nil prints JSON.
func inspectTemplate(tmpl string) (*template.Template, error) {
	if tmpl == "" || tmpl == "json" {
		return nil, nil
	}
	t, err := template.New("inspect").Funcs(format.Funcs).Parse(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(tmpl))
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// rawImage is an image's inspect JSON.
func (c *CLI) rawImage(ctx context.Context, api *client.Client, name string) (json.RawMessage, error) {
	var raw bytes.Buffer
	if _, err := api.ImageInspect(ctx, name, client.ImageInspectWithRawResponse(&raw)); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSpace(raw.Bytes())), nil
}

// printInspect prints objects as docker does: a JSON array indented by
// four spaces, or the template once per object over its JSON fields.
func (c *CLI) printInspect(t *template.Template, raws []json.RawMessage) error {
	if t == nil {
		if raws == nil {
			raws = []json.RawMessage{}
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		if err := enc.Encode(raws); err != nil {
			return err
		}
		_, err := c.Out.Write(b.Bytes())
		return err
	}
	for _, raw := range raws {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, m); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		b.WriteByte('\n')
		if _, err := c.Out.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// inspectImages prints the images as docker does: a JSON array indented
// by four spaces, or the template once per image. Images that exist are
// printed even when others do not; the errors follow on stderr.
func (c *CLI) inspectImages(cmd *cobra.Command, names []string, tmpl string) error {
	var t *template.Template
	if tmpl != "" && tmpl != "json" {
		var err error
		if t, err = template.New("inspect").Funcs(format.Funcs).Parse(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(tmpl)); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
	}
	api, err := c.Client(cmd.Context())
	if err != nil {
		return err
	}
	var raws []json.RawMessage
	var errs []string
	for _, n := range names {
		var raw bytes.Buffer
		res, err := api.ImageInspect(cmd.Context(), n, client.ImageInspectWithRawResponse(&raw))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if t != nil {
			if err := executeInspect(c, t, res.InspectResponse, raw.Bytes()); err != nil {
				return err
			}
			continue
		}
		raws = append(raws, json.RawMessage(bytes.TrimSpace(raw.Bytes())))
	}
	if t == nil {
		if raws == nil {
			raws = []json.RawMessage{}
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		if err := enc.Encode(raws); err != nil {
			return err
		}
		c.Out.Write(b.Bytes())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// executeInspect runs the template over the typed response, as docker
// does, and over the raw JSON object when the typed one lacks a field the
// template names (.Id is the JSON key of the typed .ID).
func executeInspect(c *CLI, t *template.Template, typed imagetypes.InspectResponse, raw []byte) error {
	var b bytes.Buffer
	if err := t.Execute(&b, typed); err == nil {
		b.WriteByte('\n')
		_, err := c.Out.Write(b.Bytes())
		return err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return err
	}
	b.Reset()
	if err := t.Execute(&b, m); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	b.WriteByte('\n')
	_, err := c.Out.Write(b.Bytes())
	return err
}
