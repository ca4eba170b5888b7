package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// probeOverlay answers "can this kernel stack overlayfs layers from dir's
// file system, the way berth writes them?" by doing it: two lower layers
// with a whiteout and an opaque directory in the top one, an upper and a
// work directory beside them, a real mount, and a look at the result.
// Asking /proc/filesystems is not enough: the upper's file system may lack
// d_type, trusted xattrs or RENAME_WHITEOUT, or be overlayfs itself.
func probeOverlay(dir string) (err error) {
	cleanProbe(dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	defer cleanProbe(dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, d := range []string{"top", "top/opaque", "bottom", "bottom/opaque", "upper", "work", "merged"} {
		if err := os.Mkdir(p(d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"bottom/gone", "bottom/opaque/hidden", "bottom/kept"} {
		if err := os.WriteFile(p(f), []byte("x"), 0o644); err != nil {
			return err
		}
	}
	if err := unix.Mknod(p("top/gone"), unix.S_IFCHR|0o600, 0); err != nil {
		return fmt.Errorf("make a whiteout: %w", os.NewSyscallError("mknod", err))
	}
	if err := unix.Setxattr(p("top/opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("mark an opaque directory: %w", os.NewSyscallError("setxattr", err))
	}
	if err := checkDType(dir); err != nil {
		return err
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + p("top") + ":" + p("bottom"), "upperdir=" + p("upper"), "workdir=" + p("work"), "index=off",
	}}
	if err := MountAll([]Mount{m}, p("merged")); err != nil {
		return err
	}
	defer func() {
		if uerr := Unmount(p("merged")); uerr != nil && err == nil {
			err = uerr
		}
	}()
	if _, err := os.Lstat(p("merged/gone")); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("a whiteout in a lower layer does not hide the file below (lstat: %v)", err)
	}
	if _, err := os.Lstat(p("merged/opaque/hidden")); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("an opaque directory does not hide the one below (lstat: %v)", err)
	}
	if err := os.Remove(p("merged/kept")); err != nil {
		return fmt.Errorf("remove a lower file through the overlay: %w", err)
	}
	if _, err := os.Lstat(p("bottom/kept")); err != nil {
		return fmt.Errorf("removing through the overlay changed the lower layer: %w", err)
	}
	return nil
}

// cleanProbe removes what a probe left, a mount included if the process
// that probed died while it was mounted.
func cleanProbe(dir string) {
	Unmount(filepath.Join(dir, "merged"))
	os.RemoveAll(dir)
}

// checkDType fails if dir's file system leaves d_type out of directory
// entries (xfs made with ftype=0): overlayfs needs it to find whiteouts.
// os.ReadDir cannot tell, as it falls back to lstat, so this reads the raw
// getdents64 records: ino u64, off s64, reclen u16, type u8, name.
func checkDType(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return &os.PathError{Op: "getdents64", Path: dir, Err: err}
		}
		if n == 0 {
			return nil
		}
		for off := 0; off+19 <= n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen == 0 {
				break
			}
			if buf[off+18] == unix.DT_UNKNOWN {
				return fmt.Errorf("the file system of %s does not report d_type, which overlayfs needs", dir)
			}
			off += reclen
		}
	}
}
