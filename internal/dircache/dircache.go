package dircache

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Publish builds a cache entry at final through build, which fills the
// directory it is given.
//
// Postcondition: final exists and is complete, whether this call or a
// concurrent one built it. A build that fails or dies half-way leaves at
// most a .tmp-* directory, which Prune removes later.
func Publish(final string, build func(dir string) error) error {
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return fmt.Errorf("create cache directory: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".tmp-"+filepath.Base(final)+"-")
	if err != nil {
		return fmt.Errorf("create build directory: %w", err)
	}
	if err := build(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	// MkdirTemp made tmp 0700; entries are read by containers and guests
	// running as other users.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("chmod build directory: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		// rename(2) onto a non-empty directory fails: someone else won.
		if _, serr := os.Stat(final); serr == nil {
			return nil
		}
		return fmt.Errorf("publish %s: %w", final, err)
	}
	return nil
}

// StaleAfter is how long an entry may go unused before Prune removes it.
// Entries are touched on every use, so one in use is never that old.
const StaleAfter = 7 * 24 * time.Hour

// Touch marks a cache entry as used now.
func Touch(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// Prune removes the entries of root matching pattern (a filepath.Match
// pattern of base names) unused for StaleAfter, other than keep, and build
// leftovers (.tmp-*) older than a day. Without it every recipe change would
// leave an entry behind. Failures are ignored: pruning is housekeeping.
func Prune(root, pattern, keep string) {
	stale := func(glob string, age time.Duration) {
		matches, _ := filepath.Glob(filepath.Join(root, glob))
		for _, m := range matches {
			if m == keep {
				continue
			}
			if fi, err := os.Lstat(m); err == nil && time.Since(fi.ModTime()) > age {
				_ = os.RemoveAll(m)
			}
		}
	}
	stale(pattern, StaleAfter)
	stale(".tmp-*", 24*time.Hour)
}
