package vm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

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
