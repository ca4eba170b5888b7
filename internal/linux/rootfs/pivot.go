package rootfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// PrepareRoot makes the whole mount tree non-shared (propagation is
// MS_SLAVE|MS_REC unless the spec says otherwise, so nothing the container
// mounts reaches the host) and bind-mounts rootfs onto itself so that it is
// a mount point, as pivot_root(2) requires. It returns a descriptor of the
// new mount.
func PrepareRoot(rootfs string, propagation uintptr) (*os.File, error) {
	if propagation == 0 {
		propagation = unix.MS_SLAVE | unix.MS_REC
	}
	if err := unix.Mount("", "/", "", propagation, ""); err != nil {
		return nil, fmt.Errorf("set propagation of /: %w", os.NewSyscallError("mount", err))
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("bind rootfs %s onto itself: %w", rootfs, os.NewSyscallError("mount", err))
	}
	f, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	return f, nil
}

// PivotRoot makes root the process's / and detaches the old root.
//
// pivot_root(".", ".") stacks the old root on top of the new one at the
// same place; after making it a slave (so the detach does not propagate to
// the host) it is unmounted lazily, leaving the new root visible. This
// needs no directory inside the rootfs to hold the old root.
func PivotRoot(root *os.File) error {
	oldroot, err := os.OpenFile("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer oldroot.Close()
	newroot, err := os.OpenFile(fdPath(root), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root: %w", err)
	}
	defer newroot.Close()
	if err := unix.Fchdir(int(newroot.Fd())); err != nil {
		return fmt.Errorf("chdir to new root: %w", os.NewSyscallError("fchdir", err))
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", os.NewSyscallError("pivot_root", err))
	}
	if err := unix.Fchdir(int(oldroot.Fd())); err != nil {
		return fmt.Errorf("chdir to old root: %w", os.NewSyscallError("fchdir", err))
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root a slave: %w", os.NewSyscallError("mount", err))
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", os.NewSyscallError("umount2", err))
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to /: %w", os.NewSyscallError("chdir", err))
	}
	return nil
}

// MoveRoot is the --no-pivot variant for roots where pivot_root is
// impossible (an initramfs): the rootfs is moved over / and chrooted into.
// It leaves the old root reachable to a process that can escape a chroot,
// so it is used only when asked for.
func MoveRoot(root *os.File) error {
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return fmt.Errorf("chdir to new root: %w", os.NewSyscallError("fchdir", err))
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs to /: %w", os.NewSyscallError("mount", err))
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", os.NewSyscallError("chroot", err))
	}
	return os.NewSyscallError("chdir", unix.Chdir("/"))
}

// FinishRoot applies, after the switch, the root's read-only flag and the
// spec's rootfsPropagation.
func FinishRoot(readonly bool, propagation uintptr) error {
	if readonly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &attr); err != nil {
			return fmt.Errorf("make / read-only: %w", os.NewSyscallError("mount_setattr", err))
		}
	}
	if propagation != 0 {
		if err := unix.Mount("", "/", "", propagation, ""); err != nil {
			return fmt.Errorf("set propagation of /: %w", os.NewSyscallError("mount", err))
		}
	}
	return nil
}

// Propagation parses rootfsPropagation.
func Propagation(s string) (uintptr, error) {
	if s == "" {
		return 0, nil
	}
	p, ok := propagationOpts[s]
	if !ok {
		return 0, fmt.Errorf("unknown rootfsPropagation %q", s)
	}
	return p, nil
}
