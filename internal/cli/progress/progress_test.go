package progress

import (
	"bytes"
	"errors"
	"iter"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"
)

func pullMessages() []jsonstream.Message {
	p := func(cur, total int64) *jsonstream.Progress { return &jsonstream.Progress{Current: cur, Total: total} }
	return []jsonstream.Message{
		{ID: "latest", Status: "Pulling from library/busybox"},
		{ID: "aaa", Status: "Pulling fs layer", Progress: &jsonstream.Progress{}},
		{ID: "bbb", Status: "Pulling fs layer", Progress: &jsonstream.Progress{}},
		{ID: "aaa", Status: "Downloading", Progress: p(1000000, 2000000)},
		{ID: "bbb", Status: "Downloading", Progress: p(300, 300)},
		{ID: "aaa", Status: "Download complete", Progress: &jsonstream.Progress{}},
		{ID: "aaa", Status: "Pull complete", Progress: &jsonstream.Progress{}},
		{ID: "bbb", Status: "Pull complete", Progress: &jsonstream.Progress{}},
		{Status: "Digest: sha256:abc"},
		{Status: "Status: Downloaded newer image for busybox:latest"},
	}
}

func seq(msgs []jsonstream.Message) iter.Seq2[jsonstream.Message, error] {
	return func(yield func(jsonstream.Message, error) bool) {
		for _, m := range msgs {
			if !yield(m, nil) {
				return
			}
		}
	}
}

func TestPlain(t *testing.T) {
	var b bytes.Buffer
	if err := New(&b, false, 0).Run(seq(pullMessages()), nil); err != nil {
		t.Fatal(err)
	}
	want := `latest: Pulling from library/busybox
aaa: Pulling fs layer
bbb: Pulling fs layer
aaa: Download complete
aaa: Pull complete
bbb: Pull complete
Digest: sha256:abc
Status: Downloaded newer image for busybox:latest
`
	if b.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", b.String(), want)
	}
}

// screen replays the ANSI sequences the display uses onto a grid of
// lines, to check what a terminal would show.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	row, col := 0, 0
	set := func(s string) {
		for len(lines) <= row {
			lines = append(lines, "")
		}
		l := []rune(lines[row])
		for len(l) < col {
			l = append(l, ' ')
		}
		l = append(l[:col], []rune(s)...)
		lines[row] = string(l)
		col += len([]rune(s))
	}
	for i := 0; i < len(out); {
		switch {
		case strings.HasPrefix(out[i:], "\x1b[2K"):
			for len(lines) <= row {
				lines = append(lines, "")
			}
			lines[row] = ""
			i += 4
		case out[i] == '\x1b':
			j := i + 2
			n := 0
			for out[j] >= '0' && out[j] <= '9' {
				n = n*10 + int(out[j]-'0')
				j++
			}
			switch out[j] {
			case 'A':
				row -= n
			case 'B':
				row += n
			default:
				t.Fatalf("unexpected escape %q", out[i:j+1])
			}
			if row < 0 {
				t.Fatal("cursor moved above the block")
			}
			i = j + 1
		case out[i] == '\r':
			col = 0
			i++
		case out[i] == '\n':
			row++
			col = 0
			i++
		default:
			j := strings.IndexAny(out[i:], "\x1b\r\n")
			if j < 0 {
				j = len(out) - i
			}
			set(out[i : i+j])
			i += j
		}
	}
	return lines
}

func TestTerminalRedrawsInPlace(t *testing.T) {
	msgs := pullMessages()
	var b bytes.Buffer
	d := New(&b, true, 200)
	// Stop mid-download to look at the bars.
	for _, m := range msgs[:5] {
		if err := d.Show(m); err != nil {
			t.Fatal(err)
		}
	}
	got := screen(t, b.String())
	want := []string{
		"latest: Pulling from library/busybox",
		"aaa: Downloading [=========================>                         ]      1MB/2MB",
		"bbb: Downloading [==================================================>]     300B/300B",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("terminal mid-pull:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, m := range msgs[5:] {
		d.Show(m)
	}
	got = screen(t, b.String())
	want = []string{
		"latest: Pulling from library/busybox",
		"aaa: Pull complete",
		"bbb: Pull complete",
		"Digest: sha256:abc",
		"Status: Downloaded newer image for busybox:latest",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("terminal end:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNarrowTerminalHasNoBar(t *testing.T) {
	var b bytes.Buffer
	d := New(&b, true, 80)
	d.Show(jsonstream.Message{ID: "aaa", Status: "Downloading", Progress: &jsonstream.Progress{Current: 5, Total: 10}})
	if got := screen(t, b.String())[0]; got != "aaa: Downloading       5B/10B" {
		t.Errorf("narrow: %q", got)
	}
}

func TestStreamErrorAndStream(t *testing.T) {
	var b bytes.Buffer
	err := New(&b, false, 0).Run(seq([]jsonstream.Message{
		{Stream: "Loaded image: busybox:latest\n"},
		{Error: &jsonstream.Error{Message: "layer sha256:x: digest mismatch"}},
		{Status: "never shown"},
	}), nil)
	if !IsStreamError(err) || err.Error() != "layer sha256:x: digest mismatch" {
		t.Errorf("err = %v", err)
	}
	if b.String() != "Loaded image: busybox:latest\n" {
		t.Errorf("output %q", b.String())
	}
	if IsStreamError(errors.New("x")) {
		t.Error("plain error taken for a stream error")
	}
}
