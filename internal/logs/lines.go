package logs

import (
	"bytes"
	"time"
)

// A LineWriter cuts one stream of a container's output into messages: one
// per line, and pieces of MaxLine bytes for longer lines (all but the last
// partial). It is an io.Writer for the shim's copy loop; it is not safe for
// concurrent use (each stream has its own).
type LineWriter struct {
	w      *Writer
	stream string
	buf    []byte
	// first is the time the first piece of the pending line was read, which
	// every piece of that line carries, as docker's copier does, so a long
	// line reassembles in order.
	first time.Time
	// now is replaceable by tests.
	now func() time.Time
}

// Stream returns a LineWriter for the named stream ("stdout", "stderr").
func (w *Writer) Stream(name string) *LineWriter {
	return &LineWriter{w: w, stream: name, now: time.Now}
}

// Write logs every complete line of p and keeps the rest for the next
// call. It reports the log's first write error but always consumes all of
// p: a log that cannot be written must not stall the container.
func (l *LineWriter) Write(p []byte) (int, error) {
	now := l.now()
	var firstErr error
	emit := func(line []byte, partial bool) {
		t := now
		if !l.first.IsZero() {
			t = l.first
		}
		if partial {
			l.first = t
		} else {
			l.first = time.Time{}
		}
		err := l.w.WriteMessage(&Message{Stream: l.stream, Line: line, Time: t, Partial: partial})
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := MaxLine - len(l.buf)
			if len(p) < room {
				l.buf = append(l.buf, p...)
				break
			}
			l.buf = append(l.buf, p[:room]...)
			p = p[room:]
			emit(l.buf, true)
			l.buf = l.buf[:0]
			continue
		}
		line := p[:i+1]
		if len(l.buf) > 0 {
			line = append(l.buf, line...)
		}
		// A line of exactly MaxLine plus its newline still fits in the
		// piece docker would send: the newline is what ends it.
		for len(line) > MaxLine+1 {
			emit(line[:MaxLine], true)
			line = line[MaxLine:]
		}
		emit(line, false)
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, firstErr
}

// Flush logs what is left of an unterminated last line as a partial
// message; the shim calls it at the end of the stream.
func (l *LineWriter) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	t := l.now()
	if !l.first.IsZero() {
		t = l.first
	}
	err := l.w.WriteMessage(&Message{Stream: l.stream, Line: l.buf, Time: t, Partial: true})
	l.buf = l.buf[:0]
	l.first = time.Time{}
	return err
}

// Pending returns the start of an unterminated line not logged yet, and
// when its first piece was read (zero when none was). A shim that
// re-executes itself hands them to its next image (Resume).
func (l *LineWriter) Pending() (line []byte, first time.Time) {
	return append([]byte(nil), l.buf...), l.first
}

// Resume gives l the pending line another LineWriter of the same stream
// returned, as if l had read it itself. Beyond MaxLine, it is cut.
func (l *LineWriter) Resume(line []byte, first time.Time) {
	if len(line) > MaxLine {
		line = line[:MaxLine]
	}
	l.buf = append(l.buf[:0], line...)
	l.first = first
}
