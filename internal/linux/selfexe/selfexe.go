package selfexe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// seals forbid every change to the memfd's content and to the seals
// themselves. F_SEAL_FUTURE_WRITE is unnecessary once F_SEAL_WRITE is set.
const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// Clone returns a descriptor of the running binary that cannot be written
// to: through a detached read-only overlayfs where possible, else a sealed
// memfd copy. The descriptor is close-on-exec; execute it through Path.
//
// Postconditions: Verify accepts the returned file.
func Clone() (*os.File, error) {
	return CloneFile(selfExe)
}

// selfExe names the running binary.
const selfExe = "/proc/self/exe"

// CloneFile is Clone for the binary at path rather than the running one:
// a process that runs the runtime's code as a library (berth-shim) starts
// the container's init from the runtime's binary, sealed the same way.
// path is trusted as much as the binary an exec of it would run.
func CloneFile(path string) (*os.File, error) {
	f, err := overlay(path, detachedEmpty)
	if errors.Is(err, unix.EINVAL) {
		// Kernels that refuse a detached lower layer (6.1) take an empty
		// directory of the host's mount namespace.
		f, err = overlay(path, emptyDir)
	}
	if err == nil {
		return f, nil
	}
	return memfd(path)
}

// EmptyDir is the directory overlay uses as its second lower layer on
// kernels that refuse a detached one. Clone makes it (root's, mode 0700)
// and uses it only while it is empty.
var EmptyDir = "/run/berth-runtime-empty"

// overlay opens the binary at path (selfExe: the running one) through a
// read-only overlayfs that is never attached to any mount namespace.
// Overlayfs without an upper layer needs two lower layers: the binary's
// directory, on top, and an empty directory from empty, which returns it
// as a descriptor.
func overlay(path string, empty func() (int, error)) (*os.File, error) {
	var exe string
	var err error
	if path == selfExe {
		exe, err = os.Readlink(selfExe)
	} else {
		exe, err = filepath.EvalSymlinks(path)
	}
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(exe)
	efd, err := empty()
	if err != nil {
		return nil, err
	}
	defer unix.Close(efd)
	lower := filepath.Clean(dir) + ":" + fmt.Sprintf("/proc/self/fd/%d", efd)
	mnt, err := detached("overlay", map[string]string{"lowerdir": lower})
	if err != nil {
		return nil, err
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), "berth-runtime")
	// The overlay shows what the path names now; make sure it is the very
	// file this process runs, not one swapped in since.
	if err := sameFile(path, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// detachedEmpty is an empty tmpfs attached nowhere. Overlayfs takes it as a
// lower layer only on kernels whose clone_private_mount accepts a mount of
// no mount namespace (6.18 does); older ones (6.1) refuse it with EINVAL
// ("overlayfs: failed to clone lowerpath").
func detachedEmpty() (int, error) {
	return detached("tmpfs", nil)
}

// emptyDir opens EmptyDir, making it if needed. It is refused unless it is
// a real directory (not a symlink), owned by this process's user, writable
// by no one else, and empty: only then does the overlay show nothing but
// the binary's directory.
func emptyDir() (int, error) {
	if err := unix.Mkdir(EmptyDir, 0o700); err != nil && err != unix.EEXIST {
		return -1, &os.PathError{Op: "mkdir", Path: EmptyDir, Err: err}
	}
	fd, err := unix.Open(EmptyDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: EmptyDir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "stat", Path: EmptyDir, Err: err}
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: owned by uid %d with mode %#o, want uid %d and no write for others",
			EmptyDir, st.Uid, st.Mode&0o7777, os.Geteuid())
	}
	// An empty directory lists only . and .., which ParseDirent skips.
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			unix.Close(fd)
			return -1, &os.PathError{Op: "getdents", Path: EmptyDir, Err: err}
		}
		if n == 0 {
			return fd, nil
		}
		if _, count, _ := unix.ParseDirent(buf[:n], -1, nil); count > 0 {
			unix.Close(fd)
			return -1, fmt.Errorf("%s is not empty", EmptyDir)
		}
	}
}

// detached makes a read-only mount of fstype that is attached nowhere.
func detached(fstype string, opts map[string]string) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("fsopen", err)
	}
	defer unix.Close(fsfd)
	for k, v := range opts {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return -1, fmt.Errorf("%s %s: %w", fstype, k, os.NewSyscallError("fsconfig", err))
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("%s: %w", fstype, os.NewSyscallError("fsconfig", err))
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", fstype, os.NewSyscallError("fsmount", err))
	}
	return mnt, nil
}

// sameFile checks that f has the content of the binary at path: overlayfs
// reports the lower file's device and inode for a file that is only in one
// lower layer.
func sameFile(path string, f *os.File) error {
	var a, b unix.Stat_t
	if err := unix.Stat(path, &a); err != nil {
		return err
	}
	if err := unix.Fstat(int(f.Fd()), &b); err != nil {
		return err
	}
	if a.Ino != b.Ino || a.Size != b.Size {
		return fmt.Errorf("the binary changed while it was being opened")
	}
	return nil
}

// memfd copies the binary at path into a sealed memfd.
func memfd(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open self executable: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat self executable: %w", err)
	}

	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Kernels before 6.3 do not know MFD_EXEC; memfds are executable there.
		fd, err = unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", os.NewSyscallError("memfd_create", err))
	}
	dst := os.NewFile(uintptr(fd), "berth-runtime")

	// sendfile keeps the copy in the kernel: the binary is in the page cache
	// and copying it costs a fraction of a millisecond.
	size := st.Size()
	var off int64
	for off < size {
		n, err := unix.Sendfile(fd, int(src.Fd()), &off, int(size-off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			dst.Close()
			return nil, fmt.Errorf("copy self executable: %w", os.NewSyscallError("sendfile", err))
		}
		if n == 0 {
			break
		}
	}
	if off != size {
		// A short copy must not be sealed and executed.
		if _, err := io.Copy(io.Discard, src); err != nil || off != size {
			dst.Close()
			return nil, fmt.Errorf("copy self executable: copied %d of %d bytes", off, size)
		}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal self executable: %w", os.NewSyscallError("fcntl", err))
	}
	return dst, nil
}

// Verify reports whether f is one of Clone's stand-ins: a file on a
// read-only overlayfs, or a memfd with every write sealed.
func Verify(f *os.File) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return os.NewSyscallError("fstatfs", err)
	}
	if st.Type == unix.OVERLAYFS_SUPER_MAGIC {
		if st.Flags&unix.ST_RDONLY == 0 {
			return fmt.Errorf("self executable overlay is writable")
		}
		return nil
	}
	got, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return fmt.Errorf("get seals: %w", os.NewSyscallError("fcntl", err))
	}
	if got&seals != seals {
		return fmt.Errorf("self executable copy is not sealed (seals %#x)", got)
	}
	return nil
}

// Path is the name execve uses to run f: the kernel resolves it before it
// closes the close-on-exec descriptor.
func Path(f *os.File) string {
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd())
}
