package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const (
	imagesFormat        = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	imagesDigestsFormat = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)

var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
	"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
}

func (c *CLI) listCommand(use string) *cobra.Command {
	var all, quiet, digests, noTrunc bool
	var filters []string
	var tmpl string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f.Add("reference", args[0])
			}
			def := imagesFormat
			if digests {
				def = imagesDigestsFormat
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
			res, err := api.ImageList(cmd.Context(), client.ImageListOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			var rows []map[string]any
			now := time.Now()
			for _, img := range res.Items {
				rows = append(rows, imageRows(img, digests, !noTrunc, now)...)
			}
			return format.Write(c.Out, t, table, imageHeaders, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&digests, "digests", false, "Show digests")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	fl.StringVar(&tmpl, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// parseFilterFlags turns -f key=value flags into API filters.
func parseFilterFlags(flags []string) (client.Filters, error) {
	f := client.Filters{}
	for _, s := range flags {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		f.Add(strings.ToLower(strings.TrimSpace(k)), v)
	}
	return f, nil
}

// imageRows is one image as docker's listing shows it: a row per
// repository and tag (per digest too with --digests); digest-only names
// get a "<none>" tag; an image with no name one "<none>" row.
func imageRows(img imagetypes.Summary, showDigests, trunc bool, now time.Time) []map[string]any {
	tags := map[string][]string{}
	digestsOf := map[string][]string{}
	for _, s := range img.RepoTags {
		if ref, err := reference.ParseNormalizedNamed(s); err == nil {
			if t, ok := ref.(reference.NamedTagged); ok {
				repo := reference.FamiliarName(ref)
				tags[repo] = append(tags[repo], t.Tag())
			}
		}
	}
	for _, s := range img.RepoDigests {
		if ref, err := reference.ParseNormalizedNamed(s); err == nil {
			if d, ok := ref.(reference.Canonical); ok {
				repo := reference.FamiliarName(ref)
				digestsOf[repo] = append(digestsOf[repo], d.Digest().String())
			}
		}
	}
	var rows []map[string]any
	add := func(repo, tag, dgst string) {
		rows = append(rows, imageRow(img, repo, tag, dgst, trunc, now))
	}
	for _, repo := range sortedKeys(tags) {
		ds := digestsOf[repo]
		delete(digestsOf, repo)
		for _, tag := range tags[repo] {
			if !showDigests || len(ds) == 0 {
				add(repo, tag, "<none>")
				if len(ds) > 0 {
					rows[len(rows)-1]["Digest"] = ds[0]
				}
				continue
			}
			for _, d := range ds {
				add(repo, tag, d)
			}
		}
	}
	for _, repo := range sortedKeys(digestsOf) {
		if showDigests {
			for _, d := range digestsOf[repo] {
				add(repo, "<none>", d)
			}
		} else {
			add(repo, "<none>", digestsOf[repo][0])
		}
	}
	if len(rows) == 0 {
		add("<none>", "<none>", "<none>")
	}
	return rows
}

func imageRow(img imagetypes.Summary, repo, tag, dgst string, trunc bool, now time.Time) map[string]any {
	id := img.ID
	if trunc {
		id = format.ShortID(id)
	}
	created := time.Unix(img.Created, 0)
	na := func(n int64) string {
		if n < 0 {
			return "N/A"
		}
		return format.Size(n)
	}
	containers := "N/A"
	if img.Containers >= 0 {
		containers = fmt.Sprint(img.Containers)
	}
	unique := "N/A"
	if img.SharedSize >= 0 {
		unique = format.Size(img.Size - img.SharedSize)
	}
	return map[string]any{
		"Repository":   repo,
		"Tag":          tag,
		"Digest":       dgst,
		"ID":           id,
		"CreatedSince": format.Since(created, now),
		"CreatedAt":    created.String(),
		"Size":         format.Size(img.Size),
		"VirtualSize":  format.Size(img.Size),
		"SharedSize":   na(img.SharedSize),
		"UniqueSize":   unique,
		"Containers":   containers,
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
