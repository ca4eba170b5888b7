package progress

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
)

// barWidth is the width of the bar between brackets; terminals narrower
// than wideTerminal get only the byte counts.
const (
	barWidth     = 50
	wideTerminal = 110
)

// Display renders a message stream.
type Display struct {
	out      io.Writer
	terminal bool
	width    int
	lines    map[string]int // terminal: ID -> line number in the block
	count    int            // terminal: lines written so far
}

// New returns a display on out; terminal selects in-place redrawing, width
// is the terminal's column count (0 when unknown).
func New(out io.Writer, terminal bool, width int) *Display {
	return &Display{out: out, terminal: terminal, width: width, lines: map[string]int{}}
}

// StreamError is an error that arrived inside the stream (errorDetail),
// printed as it came, without the "Error response from daemon" of an
// error status.
type StreamError struct{ Message string }

func (e *StreamError) Error() string { return e.Message }

// Run displays every message of seq and returns the stream's error, if
// any; aux receives aux messages (nil ignores them).
func (d *Display) Run(seq iter.Seq2[jsonstream.Message, error], aux func(jsonstream.Message)) error {
	for m, err := range seq {
		if err != nil {
			return err
		}
		if m.Aux != nil {
			if aux != nil {
				aux(m)
			}
			continue
		}
		if err := d.Show(m); err != nil {
			return err
		}
	}
	return nil
}

// Show displays one message; an error message is returned as an error.
func (d *Display) Show(m jsonstream.Message) error {
	if m.Error != nil {
		return &StreamError{Message: m.Error.Message}
	}
	if m.Stream != "" {
		_, err := io.WriteString(d.out, m.Stream)
		return err
	}
	counted := m.Progress != nil && (m.Progress.Current > 0 || m.Progress.Total > 0)
	if !d.terminal {
		if counted {
			return nil
		}
		_, err := io.WriteString(d.out, d.text(m)+"\n")
		return err
	}
	if m.ID == "" {
		_, err := io.WriteString(d.out, "\x1b[2K\r"+d.text(m)+"\n")
		d.count++
		return err
	}
	line, seen := d.lines[m.ID]
	if !seen {
		d.lines[m.ID] = d.count
		d.count++
		_, err := io.WriteString(d.out, "\x1b[2K\r"+d.text(m)+"\n")
		return err
	}
	// Up to the layer's line, rewrite it, back down to the bottom.
	up := d.count - line
	_, err := fmt.Fprintf(d.out, "\x1b[%dA\x1b[2K\r%s\x1b[%dB\r", up, d.text(m), up)
	return err
}

// text is one message as a line: "<id>: <status> <bar>".
func (d *Display) text(m jsonstream.Message) string {
	var b strings.Builder
	if m.ID != "" {
		b.WriteString(m.ID + ": ")
	}
	b.WriteString(m.Status)
	if m.Progress != nil {
		if bar := d.bar(m.Progress); bar != "" {
			b.WriteString(" " + bar)
		}
	}
	return b.String()
}

// bar draws "[=====>     ]  1.2MB/4.3MB"; without a total, only the
// count so far.
func (d *Display) bar(p *jsonstream.Progress) string {
	if p.Current <= 0 && p.Total <= 0 {
		return ""
	}
	size := func(n int64) string {
		if p.Units != "" && p.Units != "bytes" {
			return fmt.Sprintf("%d %s", n, p.Units)
		}
		return units.HumanSize(float64(n))
	}
	if p.Total <= 0 {
		return fmt.Sprintf("%8v", size(p.Current))
	}
	filled := min(int(float64(p.Current)/float64(p.Total)*100)/2, barWidth)
	var box string
	if d.width == 0 || d.width > wideTerminal {
		box = "[" + strings.Repeat("=", filled) + ">" + strings.Repeat(" ", max(barWidth-filled, 0)) + "] "
	}
	if p.HideCounts || p.Current > p.Total {
		return strings.TrimSpace(box)
	}
	return box + fmt.Sprintf("%8v/%v", size(p.Current), size(p.Total))
}

// IsStreamError reports whether err came from inside a stream.
func IsStreamError(err error) bool {
	var se *StreamError
	return errors.As(err, &se)
}
