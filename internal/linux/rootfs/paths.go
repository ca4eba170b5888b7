package rootfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DevNull is the host's /dev/null, opened and checked before anything of
// the container's can stand in its place.
type DevNull struct{ f *os.File }

// OpenDevNull opens the host's /dev/null and checks that it is the
// character device 1:3.
func OpenDevNull() (*DevNull, error) {
	f, err := os.OpenFile("/dev/null", unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: "/dev/null", Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		f.Close()
		return nil, fmt.Errorf("/dev/null is not the null device")
	}
	return &DevNull{f: f}, nil
}

// Close releases the descriptor.
func (d *DevNull) Close() error { return d.f.Close() }

// MaskPaths hides each path: directories under an empty read-only tmpfs,
// anything else under /dev/null. Paths that do not exist are skipped; a
// path reached through a symlink is an error, never followed.
func (m *Mounter) MaskPaths(paths []string, null *DevNull) error {
	for _, p := range paths {
		if err := m.mask(p, null); err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

func (m *Mounter) mask(p string, null *DevNull) error {
	target, err := openNoSymlinks(m.Root, p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer target.Close()
	dir, err := isDir(target)
	if err != nil {
		return err
	}
	if dir {
		return mountAt("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=0555")
	}
	treefd, err := unix.OpenTree(int(null.f.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return os.NewSyscallError("open_tree", err)
	}
	defer unix.Close(treefd)
	return os.NewSyscallError("move_mount", unix.MoveMount(treefd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
}

// ReadonlyPaths bind-mounts each path onto itself read-only. Paths that do
// not exist are skipped; symlinks are refused.
func (m *Mounter) ReadonlyPaths(paths []string) error {
	for _, p := range paths {
		if err := m.readonly(p); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}

func (m *Mounter) readonly(p string) error {
	target, err := openNoSymlinks(m.Root, p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer target.Close()
	// A detached recursive clone of the path itself, made read-only with
	// mount_setattr (which keeps every other flag, including those a user
	// namespace locks) and attached back on top of the original.
	treefd, err := unix.OpenTree(int(target.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return os.NewSyscallError("open_tree", err)
	}
	defer unix.Close(treefd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(treefd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return os.NewSyscallError("mount_setattr", err)
	}
	return os.NewSyscallError("move_mount", unix.MoveMount(treefd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
}

// BindConsole mounts the pty slave over /dev/console, creating the file
// first; the spec asks for it whenever the process has a terminal.
func (m *Mounter) BindConsole(slave *os.File) error {
	target, err := PrepareTarget(m.Root, "/dev/console", false)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	defer target.Close()
	treefd, err := unix.OpenTree(int(slave.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("bind /dev/console: %w", os.NewSyscallError("open_tree", err))
	}
	defer unix.Close(treefd)
	if err := unix.MoveMount(treefd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind /dev/console: %w", os.NewSyscallError("move_mount", err))
	}
	return nil
}

// OpenProc opens the container's /proc, refusing symlinks and anything
// but procfs, for sysctl writes.
func OpenProc(root *os.File) (*os.File, error) {
	f, err := openNoSymlinks(root, "proc", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	if err := checkFS(f, unix.PROC_SUPER_MAGIC, "procfs"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenPtmx opens the multiplexer of the container's own devpts instance,
// refusing symlinks and anything but devpts.
func OpenPtmx(root *os.File) (*os.File, error) {
	f, err := openNoSymlinks(root, "dev/pts/ptmx", unix.O_PATH)
	if err != nil {
		return nil, fmt.Errorf("the container has no devpts at /dev/pts: %w", err)
	}
	if err := checkFS(f, unix.DEVPTS_SUPER_MAGIC, "devpts"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
