package logs

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest piece of a line one message carries: docker's
// copier reads 16 KiB at a time and sends a longer line in partial pieces.
const MaxLine = 16 << 10

// A Message is one entry of the log: one line of a stream, or one piece of
// a long line.
type Message struct {
	// Stream is "stdout" or "stderr".
	Stream string
	// Line is the text, with its newline unless Partial.
	Line []byte
	// Time is when the line was read from the container.
	Time time.Time
	// Partial is true for a piece of a longer line and for the unterminated
	// end of a stream: Line has no newline.
	Partial bool
}

// appendEntry appends m as one json-file line, newline included. Partial
// is not stored: it is the absence of a newline at the end of "log".
func appendEntry(b []byte, m *Message) []byte {
	b = append(b, `{"log":`...)
	b = appendString(b, m.Line)
	b = append(b, `,"stream":`...)
	b = appendString(b, []byte(m.Stream))
	b = append(b, `,"time":"`...)
	b = m.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json's Marshal
// writes a Go string, which is what docker's log lines hold: HTML-sensitive
// characters and U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
// It exists because Marshal would need a string copy of every line and
// reflection on the shim's hot path.
func appendString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// entry is a json-file line as decoded.
type entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

var errEmptyEntry = errors.New("no stream and no time")

// parseEntry decodes one json-file line (without its newline).
func parseEntry(line []byte) (*Message, error) {
	var e entry
	if err := json.Unmarshal(line, &e); err != nil {
		return nil, fmt.Errorf("decode log line: %w", err)
	}
	if e.Stream == "" && e.Time.IsZero() {
		return nil, fmt.Errorf("decode log line: %w", errEmptyEntry)
	}
	n := len(e.Log)
	return &Message{
		Stream:  e.Stream,
		Line:    []byte(e.Log),
		Time:    e.Time,
		Partial: n == 0 || e.Log[n-1] != '\n',
	}, nil
}
