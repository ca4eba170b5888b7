package archive

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// overlayOpaque marks an overlayfs upper directory whose lower directories
// are hidden (Documentation/filesystems/overlayfs.rst, "whiteouts and
// opaque directories").
const overlayOpaque = "trusted.overlay.opaque"

// whiteout applies an entry named dir/base where base starts with ".wh.".
func (a *applier) whiteout(dir, base string) error {
	if inMetaDir(dir) {
		return nil
	}
	if base == whiteoutOpaque {
		return a.opaque(dir)
	}
	if len(base) >= len(whiteoutMeta) && base[:len(whiteoutMeta)] == whiteoutMeta {
		return nil // aufs metadata (.wh..wh.plnk, .wh..wh.aufs)
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrInvalid, name)
	}
	if a.opts.Whiteouts == WhiteoutOverlay {
		parent, err := a.t.dir(dir, true)
		if err != nil {
			return fmt.Errorf("parent directory: %w", err)
		}
		// overlayfs takes a 0/0 character device for a deleted name; the
		// kernel lets anyone create one (vfs_mknod's whiteout exception).
		err = a.create(parent, name, func() error { return unix.Mknodat(parent.fd, name, unix.S_IFCHR, 0) })
		if err != nil {
			return &os.PathError{Op: "mknod whiteout", Path: name, Err: err}
		}
		return nil
	}
	parent, err := a.t.dir(dir, false)
	if err != nil {
		if errnoIs(err, unix.ENOENT, unix.ENOTDIR) {
			return nil // nothing there to delete
		}
		return fmt.Errorf("parent directory: %w", err)
	}
	if err := a.t.removeAll(parent.fd, name); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	return nil
}

// opaque applies ".wh..wh..opq" in dir: the directory hides what the lower
// layers have in it.
func (a *applier) opaque(dir string) error {
	d, err := a.t.dir(dir, true)
	if err != nil {
		return fmt.Errorf("opaque directory: %w", err)
	}
	if a.opts.Whiteouts == WhiteoutOverlay {
		if err := unix.Setxattr(procFd(d.fd), overlayOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("set %s on %s (overlay whiteouts need CAP_SYS_ADMIN and a file system with trusted xattrs): %w", overlayOpaque, dir, err)
		}
		return nil
	}
	fd, err := openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return &os.PathError{Op: "readdir", Path: dir, Err: err}
	}
	id := inode{d.dev, d.ino}
	for _, n := range names {
		if _, ok := a.written[child{id, n}]; ok {
			continue
		}
		if err := a.t.removeAll(d.fd, n); err != nil {
			return fmt.Errorf("opaque directory %s: %w", dir, err)
		}
	}
	return nil
}
