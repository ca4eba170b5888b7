package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"

	"github.com/berth-project/berth/internal/cli/format"
)

func TestImageRowsAsDockerLists(t *testing.T) {
	now := time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC)
	dg := "sha256:" + strings.Repeat("d", 64)
	img := imagetypes.Summary{
		ID:          "sha256:" + strings.Repeat("a", 64),
		RepoTags:    []string{"busybox:latest", "busybox:1.36", "127.0.0.1:5000/x/y:v1"},
		RepoDigests: []string{"busybox@" + dg, "other@" + dg},
		Created:     now.Add(-48 * time.Hour).Unix(),
		Size:        4261211,
		SharedSize:  -1,
		Containers:  -1,
	}
	dangling := imagetypes.Summary{ID: "sha256:" + strings.Repeat("b", 64), Created: now.Unix() - 30, Size: 999}

	render := func(digests, trunc bool, tmpl string) string {
		def := imagesFormat
		if digests {
			def = imagesDigestsFormat
		}
		tm, table, err := format.Parse(tmpl, def)
		if err != nil {
			t.Fatal(err)
		}
		var rows []map[string]any
		for _, i := range []imagetypes.Summary{img, dangling} {
			rows = append(rows, imageRows(i, digests, trunc, now)...)
		}
		var b bytes.Buffer
		if err := format.Write(&b, tm, table, imageHeaders, rows); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	want := "" +
		"REPOSITORY           TAG       IMAGE ID       CREATED          SIZE\n" +
		"127.0.0.1:5000/x/y   v1        aaaaaaaaaaaa   2 days ago       4.26MB\n" +
		"busybox              latest    aaaaaaaaaaaa   2 days ago       4.26MB\n" +
		"busybox              1.36      aaaaaaaaaaaa   2 days ago       4.26MB\n" +
		"other                <none>    aaaaaaaaaaaa   2 days ago       4.26MB\n" +
		"<none>               <none>    bbbbbbbbbbbb   30 seconds ago   999B\n"
	if got := render(false, true, ""); got != want {
		t.Errorf("images:\n%s\nwant:\n%s", got, want)
	}
	got := render(true, true, "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}")
	for _, line := range []string{
		"busybox              latest    " + dg,
		"other                <none>    " + dg,
		"127.0.0.1:5000/x/y   v1        <none>",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("images --digests lacks %q:\n%s", line, got)
		}
	}
	got = render(false, false, "{{.ID}} {{.Containers}} {{.SharedSize}}")
	if !strings.HasPrefix(got, img.ID+" N/A N/A\n") {
		t.Errorf("--no-trunc: %q", got)
	}
}
