package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
)

// Docker's suggested caps, berth's defaults (see the package comment).
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 3
)

// Config caps a log.
type Config struct {
	// MaxSize is the size in bytes past which the file is rotated; <= 0
	// means never (docker's json-file default).
	MaxSize int64
	// MaxFiles is how many files are kept, the current one included;
	// values below 1 mean 1.
	MaxFiles int
}

// DefaultConfig is berth's default cap.
func DefaultConfig() Config {
	return Config{MaxSize: DefaultMaxSize, MaxFiles: DefaultMaxFiles}
}

// A Writer appends messages to a json-file log and rotates it. It is safe
// for concurrent use (a container's stdout and stderr share one).
type Writer struct {
	mu     sync.Mutex
	path   string
	cfg    Config
	f      *os.File
	size   int64
	buf    []byte
	closed bool
}

// OpenWriter opens (creating it with mode 0640 when missing) the log at path
// for appending: a restarted container adds to the log it had, as docker's
// does.
func OpenWriter(path string, cfg Config) (*Writer, error) {
	if cfg.MaxFiles < 1 {
		cfg.MaxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open log %s: not a regular file", path)
	}
	return &Writer{path: path, cfg: cfg, f: f, size: st.Size()}, nil
}

// Path returns the path of the current file.
func (w *Writer) Path() string { return w.path }

// WriteMessage appends m as one line, rotating first when the line would
// take the file past MaxSize. A failed write (a full disk) loses that
// message only: the next one is tried afresh.
func (w *Writer) WriteMessage(m *Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("write log %s: %w", w.path, fs.ErrClosed)
	}
	w.buf = appendEntry(w.buf[:0], m)
	if w.cfg.MaxSize > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.cfg.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if len(w.buf) > 64<<10 {
		w.buf = nil // do not keep a buffer the size of one huge line
	}
	if err != nil {
		return fmt.Errorf("write log %s: %w", w.path, err)
	}
	return nil
}

// rotate shifts PATH.i to PATH.i+1, PATH to PATH.1 and starts an empty
// PATH; with MaxFiles 1 it replaces PATH. Readers that follow the log
// notice the new inode and switch.
func (w *Writer) rotate() error {
	if w.cfg.MaxFiles == 1 {
		// Replaced rather than truncated in place: a follower notices a
		// new inode for sure, while a truncated file refilled past its
		// read offset looks like a file that merely grew.
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	} else if err := w.shift(); err != nil {
		return err
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		// Keep writing to the old file rather than losing output.
		return fmt.Errorf("rotate log: %w", err)
	}
	w.f.Close()
	w.f = f
	w.size = 0
	return nil
}

// shift renames PATH.i to PATH.i+1 and PATH to PATH.1, dropping the oldest.
func (w *Writer) shift() error {
	for i := w.cfg.MaxFiles - 1; i > 1; i-- {
		err := os.Rename(w.path+"."+strconv.Itoa(i-1), w.path+"."+strconv.Itoa(i))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return nil
}

// Close closes the file; later writes fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return w.f.Close()
}
