package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A flight is one goroutine's ownership of a digest's ingest inside this
// process. done is closed when the owner commits the blob or gives up;
// waiters then look for the committed blob and, if there is none, race to
// become the next owner.
type flight struct {
	done chan struct{}
}

// A lease is the exclusive right to write ingest/<hex>: the flight inside
// this process and the flock on the directory across processes.
type lease struct {
	s      *Store
	d      digest.Digest
	dir    string
	data   string
	lock   *os.File // the ingest directory, flocked
	flight *flight
	done   bool
}

// acquire returns either the committed blob d or a lease to write it,
// waiting (as long as ctx allows) while another goroutine or process holds
// the lease.
func (s *Store) acquire(ctx context.Context, d digest.Digest) (*os.File, *lease, error) {
	for {
		if f, err := s.Open(d); err == nil {
			return f, nil, nil
		} else if !errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
		s.mu.Lock()
		if other := s.flights[d]; other != nil {
			s.mu.Unlock()
			select {
			case <-other.done:
				continue
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("wait for the ingest of %s: %w", d, ctx.Err())
			}
		}
		fl := &flight{done: make(chan struct{})}
		s.flights[d] = fl
		s.mu.Unlock()

		l := &lease{s: s, d: d, dir: filepath.Join(s.ingest, d.Encoded()), flight: fl}
		l.data = filepath.Join(l.dir, "data")
		if err := l.lockDir(ctx); err != nil {
			l.release()
			return nil, nil, err
		}
		// Another process may have committed the blob while we waited for
		// its lock.
		if f, err := s.Open(d); err == nil {
			l.release()
			return f, nil, nil
		}
		return nil, l, nil
	}
}

// lockDir creates ingest/<hex> if needed and flocks it. A directory removed
// by its previous holder (after a commit or a mismatch) while we waited is
// not the one to write into: we retry on a fresh one.
func (l *lease) lockDir(ctx context.Context) error {
	for {
		if err := os.Mkdir(l.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("ingest %s: %w", l.d, err)
		}
		f, err := os.OpenFile(l.dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ingest %s: %w", l.d, err)
		}
		if err := flockWait(ctx, f); err != nil {
			f.Close()
			return fmt.Errorf("lock the ingest of %s: %w", l.d, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Lstat(l.dir)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			l.lock = f
			return nil
		}
		f.Close()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// flockWait takes an exclusive flock on f, polling so that ctx can end the
// wait: a blocking flock cannot be interrupted from Go.
func flockWait(ctx context.Context, f *os.File) error {
	delay := 5 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return os.NewSyscallError("flock", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// release gives the lease up. An ingest directory without data is removed
// (while still locked, so no one writes into it after); one with data stays
// for the next ingest to resume.
func (l *lease) release() {
	if l.done {
		return
	}
	l.done = true
	if l.lock != nil {
		if fi, err := os.Lstat(l.data); errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
			os.Remove(l.data)
			os.Remove(l.dir)
		}
		l.lock.Close()
		l.lock = nil
	}
	l.s.mu.Lock()
	if l.s.flights[l.d] == l.flight {
		delete(l.s.flights, l.d)
	}
	l.s.mu.Unlock()
	close(l.flight.done)
}

// discard removes the partial: its bytes are known to be wrong.
func (l *lease) discard() {
	os.Remove(l.data)
}

// commit moves the verified data file into blobs/. The data file must
// already be fsynced.
func (l *lease) commit() error {
	if err := os.Chmod(l.data, blobMode); err != nil {
		return fmt.Errorf("commit %s: %w", l.d, err)
	}
	if err := os.Rename(l.data, l.s.blobPath(l.d)); err != nil {
		return fmt.Errorf("commit %s: %w", l.d, err)
	}
	if err := syncDir(l.s.blobs); err != nil {
		return fmt.Errorf("commit %s: %w", l.d, err)
	}
	return nil
}
