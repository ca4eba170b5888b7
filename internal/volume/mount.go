package volume

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/snapshot"
	"golang.org/x/sys/unix"
)

// checkOptions applies the local driver's rules to driver options: type,
// device and o describe a mount; a type needs a device.
func checkOptions(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o":
		default:
			return classify(errdefs.ErrInvalid, fmt.Errorf("invalid option: %q", k))
		}
	}
	if len(opts) == 0 {
		return nil
	}
	if opts["type"] == "" {
		return classify(errdefs.ErrInvalid, fmt.Errorf("missing required option: \"type\""))
	}
	if opts["device"] == "" {
		return classify(errdefs.ErrInvalid, fmt.Errorf("missing required option: \"device\""))
	}
	for _, v := range opts {
		if strings.ContainsRune(v, 0) {
			return classify(errdefs.ErrInvalid, fmt.Errorf("invalid option value %q", v))
		}
	}
	return nil
}

// Mount makes volume name ready for a container and returns its host
// directory. A volume with driver options gets its mount on _data the
// first time; later calls count users. Every Mount is paired with an
// Unmount.
func (s *Store) Mount(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return "", notFound(name)
	}
	if len(e.rec.Options) == 0 {
		return s.data(name), nil
	}
	if e.mounted == 0 && !isMountPoint(s.data(name)) {
		// (A mount that is there already was made by a berthd before a
		// restart, for containers that still run: it is taken over.)
		o := e.rec.Options
		var opts []string
		if o["o"] != "" {
			opts = strings.Split(o["o"], ",")
		}
		m := snapshot.Mount{Type: o["type"], Source: o["device"], Options: opts}
		if m.Type == "none" {
			// type=none with o=bind is docker's spelling of a bind.
			m.Type = "bind"
		}
		if err := snapshot.MountAll([]snapshot.Mount{m}, s.data(name)); err != nil {
			return "", fmt.Errorf("mount volume %s: %w", name, err)
		}
	}
	e.mounted++
	return s.data(name), nil
}

// Unmount undoes one Mount; the last one unmounts a driver-option mount.
func (s *Store) Unmount(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok || len(e.rec.Options) == 0 || e.mounted == 0 {
		return nil
	}
	e.mounted--
	if e.mounted > 0 {
		return nil
	}
	if err := snapshot.Unmount(s.data(name)); err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	return nil
}

// isMountPoint tells whether path is a mount point (statx's
// STATX_ATTR_MOUNT_ROOT, Linux 5.8).
func isMountPoint(path string) bool {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &stx); err != nil {
		return false
	}
	return stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}

// dirSize is the st_size of the files below dir, hard links once,
// nothing followed.
func dirSize(ctx context.Context, dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		size += fi.Size()
		return nil
	})
	return size, err
}
