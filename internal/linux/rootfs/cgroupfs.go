package rootfs

import (
	"fmt"
	"os"
	"path"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CgroupView is what a container's "cgroup" mount shows.
type CgroupView struct {
	// Namespaced is true when the container has its own cgroup namespace:
	// cgroup filesystems mounted from inside show the container's cgroup
	// as their root. Without one, the container's own directories are
	// bind-mounted instead, so the host's tree stays hidden.
	Namespaced bool
	// Hierarchies of the host, in mount order.
	Hierarchies []CgroupHierarchy
}

// CgroupHierarchy is one host hierarchy as the container sees it.
type CgroupHierarchy struct {
	// Name is the directory under the cgroup mount: "cpu,cpuacct",
	// "systemd", "unified"; empty for the only hierarchy of a v2 host.
	Name string
	// Options for mount(2) on v1 ("cpu,cpuacct", "none,name=systemd").
	Options string
	Unified bool
	// HostPath is the container's cgroup directory in this hierarchy.
	HostPath string
}

// cgroup mounts the host's cgroup hierarchies as the container should see
// them: a single cgroup2 on a v2 host, a tmpfs with one directory per
// hierarchy otherwise (hybrid hosts included).
func (m *Mounter) cgroup(mnt specs.Mount, o Options) error {
	hs := m.Cgroup.Hierarchies
	if len(hs) == 0 {
		return fmt.Errorf("no cgroup hierarchies on the host")
	}
	if len(hs) == 1 && hs[0].Unified && hs[0].Name == "" {
		return m.cgroupHierarchy(mnt.Destination, hs[0], o.Flags)
	}
	target, err := PrepareTarget(m.Root, mnt.Destination, true)
	if err != nil {
		return err
	}
	defer target.Close()
	// The tmpfs is writable while the hierarchy directories are made, then
	// takes the mount's own flags (normally ro).
	tmpfsFlags := o.Flags &^ unix.MS_RDONLY
	if err := mountAt("tmpfs", target, "tmpfs", tmpfsFlags, "mode=755"); err != nil {
		return err
	}
	for _, h := range hs {
		if err := m.cgroupHierarchy(path.Join(mnt.Destination, h.Name), h, o.Flags); err != nil {
			return err
		}
	}
	if o.Flags&unix.MS_RDONLY != 0 {
		top, err := openNoSymlinks(m.Root, mnt.Destination, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer top.Close()
		if err := mountAt("", top, "", unix.MS_REMOUNT|unix.MS_BIND|tmpfsFlags|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount cgroup tmpfs read-only: %w", err)
		}
	}
	return nil
}

func (m *Mounter) cgroupHierarchy(dest string, h CgroupHierarchy, flags uintptr) error {
	target, err := mkdirAll(m.Root, rel(dest), 0o755, noSymlinks)
	if err != nil {
		return err
	}
	defer target.Close()
	if m.Cgroup.Namespaced {
		if h.Unified {
			return mountAt("cgroup2", target, "cgroup2", flags, "")
		}
		return mountAt("cgroup", target, "cgroup", flags, h.Options)
	}
	if h.HostPath == "" {
		return fmt.Errorf("no cgroup directory for hierarchy %q", h.Name)
	}
	treefd, err := unix.OpenTree(unix.AT_FDCWD, h.HostPath, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: h.HostPath, Err: err}
	}
	defer unix.Close(treefd)
	set, _ := attrs(flags)
	if set != 0 {
		attr := unix.MountAttr{Attr_set: set}
		if err := unix.MountSetattr(treefd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			return os.NewSyscallError("mount_setattr", err)
		}
	}
	if err := unix.MoveMount(treefd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return os.NewSyscallError("move_mount", err)
	}
	return nil
}
