package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// Funcs are the template functions docker's --format offers.
var Funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(b.String()), nil
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"println": func(args ...any) string { return fmt.Sprintln(args...) },
}

// Parse compiles a --format value. It returns the template and whether
// the format is a table (its rows aligned under a header). "json" means
// one JSON object per row; "table" alone means def.
func Parse(format, def string) (*template.Template, bool, error) {
	switch {
	case format == "" || format == "table":
		format = def
	case format == "json":
		format = "{{json .}}"
	}
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		table, format = true, strings.TrimLeft(rest, " ")
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	if table {
		format = strings.Trim(format, " ")
	}
	tmpl, err := template.New("format").Funcs(Funcs).Option("missingkey=error").Parse(format)
	if err != nil {
		return nil, false, fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl, table, nil
}

// Write renders rows with tmpl. A table gets the header row first, made by
// running the template over headers, and its columns aligned as docker
// aligns them (minimum width 10, padding 3).
func Write(w io.Writer, tmpl *template.Template, table bool, headers map[string]string, rows []map[string]any) error {
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		h := make(map[string]any, len(headers))
		for k, v := range headers {
			h[k] = v
		}
		var b bytes.Buffer
		// A header cell the template transforms (upper, truncate...)
		// still shows the header; a failing one is left empty.
		if err := tmpl.Execute(&b, h); err == nil {
			fmt.Fprintln(out, strings.TrimRight(b.String(), "\n"))
		}
	}
	for _, r := range rows {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		b.WriteByte('\n')
		if _, err := out.Write(b.Bytes()); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// Execute runs a --format template over one value (inspect, version,
// info) and writes the result and a newline.
func Execute(w io.Writer, tmpl *template.Template, v any) error {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
