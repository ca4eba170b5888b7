package logs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// How often a follower looks at the file without being told: as a safety
// net beside inotify, and as the only way where inotify is unavailable
// (fs.inotify.max_user_instances is 128 by default, and every `logs -f`
// holds one).
const (
	pollWithInotify = time.Second
	pollAlone       = 100 * time.Millisecond
)

// follow keeps reading the current file cur (nil when the log did not
// exist yet) from off, switching to the new file when the writer rotates.
func (r *reader) follow(ctx context.Context, cur *os.File, off int64) error {
	w := newWatcher(r.path)
	defer w.close()
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	stopping := false
	for {
		// Read what is there, and across every rotation since last time.
		for {
			if cur != nil {
				if st, err := cur.Stat(); err == nil && st.Size() < off {
					// Truncated in place by something else than a
					// Writer (which replaces the file): start over.
					off = 0
					r.pending = r.pending[:0]
					r.skipping = false
				}
				n, err := r.readFrom(cur, off, true)
				off += n
				if err != nil || r.done {
					return err
				}
			}
			between, next, err := successors(r.path, cur)
			if err != nil {
				return err
			}
			if next == nil {
				break
			}
			if cur != nil {
				// The writer may have added lines between our read and
				// its rotation; it writes no more to cur now. An
				// unterminated tail there will never be finished.
				n, err := r.readFrom(cur, off, false)
				off += n
				if err != nil || r.done {
					closeFiles(between)
					next.Close()
					return err
				}
				cur.Close()
				r.pending = r.pending[:0]
				r.skipping = false
			}
			for i, f := range between {
				_, err := r.readFrom(f, 0, false)
				if err != nil || r.done {
					for _, g := range between[i:] {
						g.Close()
					}
					next.Close()
					cur = nil
					return err
				}
				f.Close()
			}
			cur, off = next, 0
		}
		if stopping {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.cfg.Stop:
			// One more pass: what was written before Stop is read.
			stopping = true
		case <-w.changed:
		case <-w.tick.C:
		}
	}
}

// successors finds what the writer wrote after cur: when path is still
// cur (or missing), next is nil; otherwise next is path opened afresh, and
// between are the rotated files newer than cur, oldest first, when more
// than one rotation happened since cur was current (or every rotated file,
// when cur itself has aged out). cur nil means the log did not exist.
//
// Files are opened newest first and matched by inode (held open, so no
// inode is reused meanwhile): a rotation during the walk shows up as a
// file seen twice or a name missing in the middle, and the walk starts
// over.
func successors(path string, cur *os.File) (between []*os.File, next *os.File, err error) {
	var curSt fs.FileInfo
	if cur != nil {
		if curSt, err = cur.Stat(); err != nil {
			return nil, nil, fmt.Errorf("follow log: %w", err)
		}
	}
	for attempt := 0; attempt < 100; attempt++ {
		if attempt > 2 {
			time.Sleep(time.Millisecond) // let the writer finish its renames
		}
		next, err = os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("follow log: %w", err)
		}
		nst, err := next.Stat()
		if err != nil {
			next.Close()
			return nil, nil, fmt.Errorf("follow log: %w", err)
		}
		if cur == nil {
			return nil, next, nil
		}
		if os.SameFile(nst, curSt) {
			next.Close()
			return nil, nil, nil
		}
		seen := []fs.FileInfo{nst}
		var newer []*os.File // newest first
		restart := false
		for i := 1; ; i++ {
			f, err := os.Open(path + "." + strconv.Itoa(i))
			if errors.Is(err, fs.ErrNotExist) {
				// A gap in the middle is a rotation under way (the
				// writer renames from the oldest down, so one name is
				// missing at a time); at the end, cur has aged out and
				// every rotated file is newer.
				if _, err := os.Stat(path + "." + strconv.Itoa(i+1)); err == nil {
					restart = true
				}
				break
			}
			if err != nil {
				closeFiles(newer)
				next.Close()
				return nil, nil, fmt.Errorf("follow log: %w", err)
			}
			st, err := f.Stat()
			if err != nil {
				f.Close()
				closeFiles(newer)
				next.Close()
				return nil, nil, fmt.Errorf("follow log: %w", err)
			}
			if os.SameFile(st, curSt) {
				f.Close()
				break
			}
			for _, s := range seen {
				if os.SameFile(s, st) {
					restart = true
				}
			}
			if restart {
				f.Close()
				break
			}
			seen = append(seen, st)
			newer = append(newer, f)
		}
		if restart {
			closeFiles(newer)
			next.Close()
			continue
		}
		slices.Reverse(newer)
		return newer, next, nil
	}
	return nil, nil, fmt.Errorf("follow log %s: rotating too fast to follow", path)
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func inode(f *os.File) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, os.NewSyscallError("fstat", err)
	}
	return st.Ino, nil
}

// watcher wakes a follower when the log's directory changes, through
// inotify where available, and on a timer.
type watcher struct {
	changed chan struct{}
	tick    *time.Ticker
	file    *os.File
	done    chan struct{}
}

func newWatcher(path string) *watcher {
	w := &watcher{changed: make(chan struct{}, 1), done: make(chan struct{})}
	f, err := watchDir(filepath.Dir(path))
	if err != nil {
		w.tick = time.NewTicker(pollAlone)
		return w
	}
	w.file = f
	w.tick = time.NewTicker(pollWithInotify)
	go w.loop(filepath.Base(path))
	return w
}

// watchDir returns a non-blocking inotify descriptor, in Go's poller, that
// reports writes, creations and renames in dir. The directory rather than
// the file is watched, so the rotated-in file is seen without re-arming.
func watchDir(dir string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	mask := uint32(unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF)
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("inotify_add_watch", err)
	}
	return os.NewFile(uintptr(fd), "inotify:"+dir), nil
}

// loop signals changed for events about the log's files (base, base.N);
// it ends when the descriptor is closed.
func (w *watcher) loop(base string) {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		n, err := w.file.Read(buf)
		if err != nil {
			return
		}
		relevant := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			// struct inotify_event: wd, mask, cookie, len, then the name.
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := binary.NativeEndian.Uint32(buf[off+12:])
			nameEnd := off + unix.SizeofInotifyEvent + int(nameLen)
			if nameEnd > n {
				break
			}
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:nameEnd]), "\x00")
			if name == "" || name == base || strings.HasPrefix(name, base+".") || mask&unix.IN_Q_OVERFLOW != 0 {
				relevant = true
			}
			off = nameEnd
		}
		if relevant {
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}
}

func (w *watcher) close() {
	w.tick.Stop()
	if w.file != nil {
		w.file.Close()
		<-w.done
	}
}
