package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"time"
)

// ReadConfig chooses what Read returns.
type ReadConfig struct {
	// Tail, when >= 0, starts at the Tail-th message from the end (across
	// the rotated files); < 0 means from the beginning.
	Tail int
	// Since and Until, when set, keep messages with Since <= Time <= Until;
	// the first message after Until ends the read, also when following.
	// They filter after Tail, as docker's do.
	Since, Until time.Time
	// Follow keeps reading as the log grows, across rotations, until ctx is
	// done (Read returns ctx's error) or Stop is closed (Read reads what
	// was written until then and returns nil).
	Follow bool
	Stop   <-chan struct{}
}

// maxEntry bounds one line of the file: a message is at most MaxLine
// bytes, which JSON escaping can make six times longer; anything longer
// was not written by a Writer and is skipped.
const maxEntry = 1 << 20

// Read calls fn with each message of the log at path (and its rotated
// files) that cfg selects, oldest first, and returns fn's first error. A
// log that does not exist yet is empty (when following, Read waits for it).
func Read(ctx context.Context, path string, cfg ReadConfig, fn func(*Message) error) error {
	r := &reader{path: path, cfg: cfg, fn: fn}
	return r.run(ctx)
}

type reader struct {
	path string
	cfg  ReadConfig
	fn   func(*Message) error
	// done is set once a message after Until was seen.
	done bool
	// pending is an unterminated tail of the current file, kept until its
	// newline arrives.
	pending []byte
	// skipping is set while the rest of an over-long line is discarded.
	skipping bool
}

// span is a file to read from an offset on.
type span struct {
	f   *os.File
	off int64
}

func (r *reader) run(ctx context.Context) error {
	// The current file is opened first: a rotation after this point shows
	// up as a new inode at path, and our descriptor keeps the old one.
	cur, err := os.Open(r.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read log: %w", err)
	}
	var curIno uint64
	if cur != nil {
		defer func() {
			if cur != nil {
				cur.Close()
			}
		}()
		if curIno, err = inode(cur); err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
	rotated, err := r.openRotated(curIno)
	if err != nil {
		return err
	}
	defer closeSpans(rotated)
	spans := rotated
	if cur != nil {
		spans = append(spans, span{f: cur})
	}
	if r.cfg.Tail >= 0 {
		if spans, err = tailSpans(spans, r.cfg.Tail); err != nil {
			return err
		}
	}
	var off int64
	for i, s := range spans {
		last := cur != nil && i == len(spans)-1
		n, err := r.readFrom(s.f, s.off, last)
		if err != nil || r.done {
			return err
		}
		if last {
			off = s.off + n
		}
	}
	if !r.cfg.Follow {
		return nil
	}
	f := cur
	cur = nil // follow owns it now
	return r.follow(ctx, f, off)
}

// openRotated opens PATH.N ... PATH.1, oldest first, skipping a file that
// is the current one (renamed since we opened it). A name missing in the
// middle is a rotation under way: the listing starts over.
func (r *reader) openRotated(curIno uint64) ([]span, error) {
	for attempt := 0; attempt < 100; attempt++ {
		if attempt > 2 {
			time.Sleep(time.Millisecond)
		}
		out, retry, err := r.listRotated(curIno)
		if err != nil || !retry {
			return out, err
		}
	}
	return nil, fmt.Errorf("read log %s: rotating too fast to read", r.path)
}

func (r *reader) listRotated(curIno uint64) (out []span, retry bool, err error) {
	for i := 1; ; i++ {
		name := r.path + "." + strconv.Itoa(i)
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(r.path + "." + strconv.Itoa(i+1)); err == nil {
				closeSpans(out)
				return nil, true, nil
			}
			break
		}
		if err != nil {
			closeSpans(out)
			return nil, false, fmt.Errorf("read log: %w", err)
		}
		if ino, err := inode(f); err == nil && curIno != 0 && ino == curIno {
			f.Close()
			continue
		}
		out = append(out, span{f: f})
	}
	slices.Reverse(out)
	return out, false, nil
}

func closeSpans(spans []span) {
	for _, s := range spans {
		s.f.Close()
	}
}

// readFrom reads f from off to its end and hands on each complete line; it
// returns the bytes consumed. With keep, an unterminated tail stays in
// pending (the writer may be in the middle of it); otherwise it is a
// damaged line and dropped.
func (r *reader) readFrom(f *os.File, off int64, keep bool) (int64, error) {
	buf := make([]byte, 64<<10)
	var consumed int64
	for {
		n, err := f.ReadAt(buf, off+consumed)
		if n > 0 {
			consumed += int64(n)
			if ferr := r.feed(buf[:n]); ferr != nil || r.done {
				return consumed, ferr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return consumed, fmt.Errorf("read log %s: %w", f.Name(), err)
		}
	}
	if !keep {
		r.pending = r.pending[:0]
		r.skipping = false
	}
	return consumed, nil
}

// feed splits p into lines, joining the pending tail.
func (r *reader) feed(p []byte) error {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if r.skipping {
				return nil
			}
			if len(r.pending)+len(p) > maxEntry {
				r.pending = r.pending[:0]
				r.skipping = true
				return nil
			}
			r.pending = append(r.pending, p...)
			return nil
		}
		line := p[:i]
		p = p[i+1:]
		if r.skipping {
			r.skipping = false
			continue
		}
		if len(r.pending) > 0 {
			line = append(r.pending, line...)
			r.pending = r.pending[:0]
		}
		if err := r.emit(line); err != nil || r.done {
			return err
		}
	}
	return nil
}

func (r *reader) emit(line []byte) error {
	m, err := parseEntry(line)
	if err != nil {
		return nil // damaged line: skip it
	}
	if !r.cfg.Since.IsZero() && m.Time.Before(r.cfg.Since) {
		return nil
	}
	if !r.cfg.Until.IsZero() && m.Time.After(r.cfg.Until) {
		r.done = true
		return nil
	}
	return r.fn(m)
}

// tailSpans narrows spans (oldest first) to the last n lines.
func tailSpans(spans []span, n int) ([]span, error) {
	for i := len(spans) - 1; i >= 0; i-- {
		off, found, err := lastLines(spans[i].f, n)
		if err != nil {
			return nil, err
		}
		n -= found
		if n <= 0 {
			spans[i].off = off
			return spans[i:], nil
		}
	}
	return spans, nil
}

// lastLines finds where the last n complete lines of f start, reading
// backwards in blocks: just after the (n+1)-th newline from the end, or at
// 0 when the file has no more than n lines (found tells how many it has).
// Bytes after the last newline are a line still being written; they do not
// count, and the read that follows starts before them anyway.
func lastLines(f *os.File, n int) (off int64, found int, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("read log: %w", err)
	}
	buf := make([]byte, 32<<10)
	pos := st.Size()
	newlines := 0
	for pos > 0 {
		size := min(int64(len(buf)), pos)
		pos -= size
		b := buf[:size]
		if _, err := f.ReadAt(b, pos); err != nil && err != io.EOF {
			return 0, 0, fmt.Errorf("read log %s: %w", f.Name(), err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			newlines++
			if newlines == n+1 {
				return pos + int64(i) + 1, n, nil
			}
		}
	}
	return 0, newlines, nil
}
