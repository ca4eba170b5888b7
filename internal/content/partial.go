package content

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Partial describes an unfinished ingest: the bytes kept so far.
type Partial struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time // of the last write
}

// Partials lists the unfinished ingests, in digest order.
func (s *Store) Partials() ([]Partial, error) {
	entries, err := os.ReadDir(s.ingest)
	if err != nil {
		return nil, fmt.Errorf("list partials: %w", err)
	}
	var out []Partial
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if validDigest(d) != nil || !e.IsDir() {
			continue
		}
		p := Partial{Digest: d}
		fi, err := os.Lstat(filepath.Join(s.ingest, e.Name(), "data"))
		switch {
		case err == nil:
			p.Size, p.ModTime = fi.Size(), fi.ModTime()
		case errors.Is(err, fs.ErrNotExist):
			// Being set up or torn down right now; an empty partial.
			if fi, err := e.Info(); err == nil {
				p.ModTime = fi.ModTime()
			}
		default:
			return nil, fmt.Errorf("list partials: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// CleanPartials removes the partials last written before cutoff that no
// ingest (of any process) is using, and returns how many it removed.
func (s *Store) CleanPartials(cutoff time.Time) (int, error) {
	parts, err := s.Partials()
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, p := range parts {
		if !p.ModTime.Before(cutoff) {
			continue
		}
		ok, err := s.removeIdle(p.Digest, cutoff)
		if err != nil {
			return removed, err
		}
		if ok {
			removed++
		}
	}
	return removed, nil
}

// removeIdle removes the partial of d if nobody holds its lock and it is
// still older than cutoff once locked.
func (s *Store) removeIdle(d digest.Digest, cutoff time.Time) (bool, error) {
	dir := filepath.Join(s.ingest, d.Encoded())
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("clean partial %s: %w", d, err)
	}
	defer f.Close()
	// flock conflicts between descriptors of one process too, so this also
	// skips the ingests of this process.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("clean partial %s: %w", d, os.NewSyscallError("flock", err))
	}
	data := filepath.Join(dir, "data")
	if fi, err := os.Lstat(data); err == nil && !fi.ModTime().Before(cutoff) {
		return false, nil
	}
	if err := os.Remove(data); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("clean partial %s: %w", d, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("clean partial %s: %w", d, err)
	}
	return true, nil
}
