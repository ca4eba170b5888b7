package vm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultCacheDir is where kernels and guest images are kept.
const DefaultCacheDir = "/var/cache/berth-vm"

// A Cache holds what booting a guest needs and is slow to make:
//
//	kernel/<package>_<version>/   an unpacked kernel (see Kernel)
//	debs/                         .debs fetched for the initramfs
//	image-<hash12>/               a guest image (see Image), named by its recipe
//
// Entries are built in a temporary directory beside their final name and
// renamed into place, so a reader sees a complete entry or none, and a
// build that dies half-way leaves only a .tmp-* directory that a later
// build removes.
type Cache struct {
	Dir string
	// Log receives progress lines of slow steps; nil discards them.
	Log io.Writer
}

func (c *Cache) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "berth-vm: "+format+"\n", args...)
	}
}

// lock takes the cache's build lock, an exclusive flock on Dir/.lock, and
// returns its release. Builds are minutes of debootstrap and downloads:
// a second run that wants the same entry waits for the first and then
// finds it, instead of building it again beside it.
func (c *Cache) lock() (func(), error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock cache: %w", os.NewSyscallError("flock", err))
	}
	// Closing the descriptor releases the lock.
	return func() { f.Close() }, nil
}

// publish builds a cache entry at final through build, which fills the
// directory it is given.
//
// Postcondition: final exists and is complete, whether this call or a
// concurrent one built it.
func publish(final string, build func(dir string) error) error {
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

// staleAfter is how long an entry may go unused before a build of another
// entry removes it. Entries are touched on every use.
const staleAfter = 7 * 24 * time.Hour

// touch marks a cache entry as used now.
func touch(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// prune removes the entries of root matching pattern, and build leftovers
// (.tmp-*) of more than a day, that are unused for staleAfter, other than
// keep. A kernel or an image is hundreds of MiB: without this every kernel
// update and recipe change would leave one behind. Failures are ignored:
// pruning is housekeeping.
func prune(root, pattern, keep string) {
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
	stale(pattern, staleAfter)
	stale(".tmp-*", 24*time.Hour)
}
