package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/cli/progress"
)

// messages decodes a JSON message stream (load, import) one message at a
// time.
func messages(r io.Reader) iter.Seq2[jsonstream.Message, error] {
	return func(yield func(jsonstream.Message, error) bool) {
		dec := json.NewDecoder(r)
		for {
			var m jsonstream.Message
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(m, fmt.Errorf("reading the daemon's answer: %w", err))
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

// display shows a stream on stdout, with bars when stdout is a terminal;
// quiet shows nothing but still reads the stream for its error.
func (c *CLI) display(seq iter.Seq2[jsonstream.Message, error], quiet bool) error {
	out := c.Out
	if quiet {
		out = io.Discard
	}
	tty, width := c.outIsTerminal()
	return progress.New(out, tty && !quiet, width).Run(seq, nil)
}

// parsePlatform reads --platform "os[/arch[/variant]]".
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return nil, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
	}
	p := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}
