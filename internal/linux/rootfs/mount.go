package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Mounter applies one container's mounts beneath its rootfs.
type Mounter struct {
	// Root is a descriptor of the rootfs directory (the bind mount of it
	// that will become /).
	Root *os.File
	// Bundle resolves relative bind mount sources.
	Bundle string
	// Cgroup describes the host's hierarchies for "cgroup" mounts.
	Cgroup CgroupView
	// UserNS is the container's user namespace, for idmapped mounts
	// without mappings of their own; nil when the container has none.
	UserNS *os.File
	// InUserNS makes device creation bind-mount host nodes, since mknod
	// is refused in a user namespace.
	InUserNS bool
	// IDMaps holds, by index in the spec's mounts, the user namespace made
	// for a mount's own uidMappings and gidMappings. The runtime makes
	// them from the host's pid namespace, where writing a child's maps
	// works.
	IDMaps map[int]*os.File
}

// MountError names the mount that failed.
type MountError struct {
	Mount specs.Mount
	Err   error
}

func (e *MountError) Error() string {
	return fmt.Sprintf("mount %s (%s) on %s: %v", e.Mount.Source, e.Mount.Type, e.Mount.Destination, e.Err)
}

func (e *MountError) Unwrap() error { return e.Err }

// Mount performs the spec's mount number i.
func (m *Mounter) Mount(i int, mnt specs.Mount) error {
	if err := m.mount(i, mnt); err != nil {
		return &MountError{Mount: mnt, Err: err}
	}
	return nil
}

func (m *Mounter) mount(i int, mnt specs.Mount) error {
	if !filepath.IsAbs(mnt.Destination) {
		return fmt.Errorf("destination must be an absolute path")
	}
	o := ParseOptions(mnt.Options)
	if mnt.Type == "bind" {
		o.Bind = true
	}
	switch {
	case o.Bind:
		return m.bind(i, mnt, o)
	case o.Flags&unix.MS_REMOUNT != 0:
		return m.remount(mnt, o)
	case mnt.Type == "cgroup" || mnt.Type == "cgroup2":
		return m.cgroup(mnt, o)
	}
	if len(mnt.UIDMappings)+len(mnt.GIDMappings) > 0 || o.IDMap {
		return fmt.Errorf("idmapped mounts are only supported for bind mounts")
	}

	// proc and sysfs may not be reached through any symlink: a /proc that
	// leads elsewhere would put the real procfs where masks don't apply.
	var target *os.File
	var err error
	switch mnt.Type {
	case "proc", "sysfs":
		target, err = mkdirAll(m.Root, rel(mnt.Destination), 0o555, noSymlinks)
	default:
		target, err = PrepareTarget(m.Root, mnt.Destination, true)
	}
	if err != nil {
		return err
	}
	defer target.Close()
	if err := mountAt(mnt.Source, target, mnt.Type, o.Flags, o.Data); err != nil {
		return err
	}
	return m.finish(mnt, o)
}

// finish re-opens the new mount and applies what mount(2) could not take
// in one call: recursive attributes, propagation, and the filesystem check.
func (m *Mounter) finish(mnt specs.Mount, o Options) error {
	if o.RecAttrSet == 0 && o.RecAttrClr == 0 && len(o.Propagation) == 0 && mnt.Type != "proc" && mnt.Type != "sysfs" {
		return nil
	}
	top, err := openNoSymlinks(m.Root, mnt.Destination, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		top, err = OpenInRoot(m.Root, mnt.Destination)
		if err != nil {
			return err
		}
	}
	defer top.Close()
	switch mnt.Type {
	case "proc":
		if err := checkFS(top, unix.PROC_SUPER_MAGIC, "procfs"); err != nil {
			return err
		}
	case "sysfs":
		if err := checkFS(top, unix.SYSFS_MAGIC, "sysfs"); err != nil {
			return err
		}
	}
	if o.RecAttrSet != 0 || o.RecAttrClr != 0 {
		attr := unix.MountAttr{Attr_set: o.RecAttrSet, Attr_clr: o.RecAttrClr}
		if err := unix.MountSetattr(int(top.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return os.NewSyscallError("mount_setattr", err)
		}
	}
	for _, p := range o.Propagation {
		if err := mountAt("", top, "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// bind clones the source tree with open_tree(2), sets its attributes while
// it is still detached, and attaches it to the resolved target with
// move_mount(2): nothing is looked up by path inside the rootfs after
// the target was resolved.
func (m *Mounter) bind(i int, mnt specs.Mount, o Options) error {
	src := mnt.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(m.Bundle, src)
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if o.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	treefd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	tree := os.NewFile(uintptr(treefd), src)
	defer tree.Close()

	dir, err := isDir(tree)
	if err != nil {
		return err
	}
	target, err := PrepareTarget(m.Root, mnt.Destination, dir)
	if err != nil {
		return err
	}
	defer target.Close()

	set, clr := attrs(o.Flags)
	for f, a := range map[uintptr]uint64{unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
		unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC} {
		if o.ClearFlags&f != 0 {
			clr |= a
		}
	}
	if set != 0 || clr != 0 {
		attr := unix.MountAttr{Attr_set: set, Attr_clr: clr}
		if err := unix.MountSetattr(treefd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			return os.NewSyscallError("mount_setattr", err)
		}
	}
	if o.RecAttrSet != 0 || o.RecAttrClr != 0 {
		attr := unix.MountAttr{Attr_set: o.RecAttrSet, Attr_clr: o.RecAttrClr}
		if err := unix.MountSetattr(treefd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return os.NewSyscallError("mount_setattr", err)
		}
	}
	if o.IDMap || len(mnt.UIDMappings)+len(mnt.GIDMappings) > 0 {
		if err := m.idmap(i, tree, mnt, o); err != nil {
			return err
		}
	}
	if err := unix.MoveMount(treefd, "", int(target.Fd()), "",
		unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return os.NewSyscallError("move_mount", err)
	}
	if len(o.Propagation) == 0 {
		return nil
	}
	top, err := OpenInRoot(m.Root, mnt.Destination)
	if err != nil {
		return err
	}
	defer top.Close()
	for _, p := range o.Propagation {
		if err := mountAt("", top, "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// remount changes the flags of a mount that already exists in the rootfs.
func (m *Mounter) remount(mnt specs.Mount, o Options) error {
	target, err := OpenInRoot(m.Root, mnt.Destination)
	if err != nil {
		return err
	}
	defer target.Close()
	return mountAt("", target, mnt.Type, o.Flags, o.Data)
}

// mountAt calls mount(2) with the target named through its descriptor.
func mountAt(source string, target *os.File, fstype string, flags uintptr, data string) error {
	for {
		err := unix.Mount(source, fdPath(target), fstype, flags, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("mount", err)
		}
		return nil
	}
}

// idmap gives the detached tree an id mapping: the container's own user
// namespace, or one made for the mount's own mappings.
func (m *Mounter) idmap(i int, tree *os.File, mnt specs.Mount, o Options) error {
	nsFile := m.UserNS
	if len(mnt.UIDMappings)+len(mnt.GIDMappings) > 0 {
		nsFile = m.IDMaps[i]
		if nsFile == nil {
			return errors.New("no user namespace was made for the mount's id mappings")
		}
	}
	if nsFile == nil {
		return errors.New("idmap without mappings needs a user namespace")
	}
	flags := uint(unix.AT_EMPTY_PATH)
	if o.RecursiveIDMap || o.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsFile.Fd())}
	if err := unix.MountSetattr(int(tree.Fd()), "", flags, &attr); err != nil {
		return fmt.Errorf("idmap: %w", os.NewSyscallError("mount_setattr", err))
	}
	return nil
}
