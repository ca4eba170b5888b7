package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func u32(v uint32) *uint32 { return &v }

func fm(m os.FileMode) *os.FileMode { return &m }

// DefaultDevices are created in every container with its own /dev, as the
// runtime spec requires.
var DefaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
}

// CreateDevices makes the spec's devices and the default ones beneath the
// rootfs. A device the spec lists replaces a default one with the same path.
func (m *Mounter) CreateDevices(devs []specs.LinuxDevice) error {
	seen := map[string]bool{}
	all := make([]specs.LinuxDevice, 0, len(devs)+len(DefaultDevices))
	for _, d := range devs {
		seen[filepath.Clean(d.Path)] = true
		all = append(all, d)
	}
	for _, d := range DefaultDevices {
		if !seen[d.Path] {
			all = append(all, d)
		}
	}
	for _, d := range all {
		if err := m.createDevice(d); err != nil {
			return fmt.Errorf("create device %s: %w", d.Path, err)
		}
	}
	return nil
}

func devType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q", t)
}

func (m *Mounter) createDevice(d specs.LinuxDevice) error {
	if !filepath.IsAbs(d.Path) {
		return fmt.Errorf("device path must be absolute")
	}
	typ, err := devType(d.Type)
	if err != nil {
		return err
	}
	p, err := expand(m.Root, d.Path)
	if err != nil {
		return err
	}
	parent, err := mkdirAll(m.Root, filepath.Dir(p), 0o755, noSymlinks)
	if err != nil {
		return err
	}
	defer parent.Close()
	name := filepath.Base(p)
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	dev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))

	if m.InUserNS && typ != unix.S_IFIFO {
		return m.bindDevice(parent, name, d, typ, dev)
	}
	// A node left by the image is replaced: its type or numbers may differ.
	if err := unix.Unlinkat(int(parent.Fd()), name, 0); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "unlink", Path: p, Err: err}
	}
	if err := unix.Mknodat(int(parent.Fd()), name, typ|mode, int(dev)); err != nil {
		return &os.PathError{Op: "mknod", Path: p, Err: err}
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(int(parent.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: p, Err: err}
	}
	// mknod applies the umask; set the mode exactly.
	if err := unix.Fchmodat(int(parent.Fd()), name, mode, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

// bindDevice covers an empty file with the host's node of the same type and
// numbers, for user namespaces where mknod is refused.
func (m *Mounter) bindDevice(parent *os.File, name string, d specs.LinuxDevice, typ uint32, dev uint64) error {
	host, err := os.OpenFile(d.Path, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("host node for bind mount: %w", err)
	}
	defer host.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(host.Fd()), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: d.Path, Err: err}
	}
	if st.Mode&unix.S_IFMT != typ || st.Rdev != dev {
		return fmt.Errorf("host node %s is not the device asked for", d.Path)
	}
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	unix.Close(fd)
	target, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d/%s", parent.Fd(), name), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer target.Close()
	treefd, err := unix.OpenTree(int(host.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return os.NewSyscallError("open_tree", err)
	}
	defer unix.Close(treefd)
	return os.NewSyscallError("move_mount", unix.MoveMount(treefd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
}

// DevSymlinks creates the links every /dev has: /dev/fd, /dev/std*, and
// /dev/ptmx pointing into the container's own devpts instance.
func (m *Mounter) DevSymlinks(ptmx bool) error {
	dev, err := mkdirAll(m.Root, "dev", 0o755, noSymlinks)
	if err != nil {
		return err
	}
	defer dev.Close()
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	if ptmx {
		links = append(links, [2]string{"pts/ptmx", "ptmx"})
	}
	for _, l := range links {
		if l[1] == "ptmx" {
			// The image or the spec may have left a node; the link must win.
			if err := unix.Unlinkat(int(dev.Fd()), "ptmx", 0); err != nil && err != unix.ENOENT {
				return &os.PathError{Op: "unlink", Path: "/dev/ptmx", Err: err}
			}
		}
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "symlink", Path: "/dev/" + l[1], Err: err}
		}
	}
	return nil
}
