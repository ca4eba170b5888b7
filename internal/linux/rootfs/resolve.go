package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	inRoot     = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	noSymlinks = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
)

// openat2 retries EINTR and EAGAIN (the kernel returns EAGAIN when a rename
// raced the lookup under RESOLVE_IN_ROOT).
func openat2(dirfd int, path string, flags uint64, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, &how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 128 {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: filepath.Clean("/" + path), Err: err}
		}
		return fd, nil
	}
}

// OpenInRoot opens path, resolved inside root, as an O_PATH descriptor.
// Symlinks in the image are followed but stay confined to root.
func OpenInRoot(root *os.File, path string) (*os.File, error) {
	fd, err := openat2(int(root.Fd()), rel(path), unix.O_PATH, inRoot)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openNoSymlinks opens path inside root refusing any symlink on the way.
func openNoSymlinks(root *os.File, path string, flags uint64) (*os.File, error) {
	fd, err := openat2(int(root.Fd()), rel(path), flags, noSymlinks)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// rel turns a container path into one relative to the root descriptor.
func rel(path string) string {
	p := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if p == "" {
		return "."
	}
	return p
}

// MkdirAllInRoot resolves path inside root, creating missing directories
// with mode, and returns an O_PATH descriptor of the final directory.
//
// Each missing component is created with mkdirat(2) beneath the descriptor
// of its resolved parent and then opened without following symlinks, so a
// component swapped for a symlink between the two calls makes the call fail
// instead of escaping.
func MkdirAllInRoot(root *os.File, path string, mode os.FileMode) (*os.File, error) {
	return mkdirAll(root, path, mode, inRoot)
}

func mkdirAll(root *os.File, path string, mode os.FileMode, resolve uint64) (*os.File, error) {
	p := rel(path)
	if fd, err := openat2(int(root.Fd()), p, unix.O_PATH|unix.O_DIRECTORY, resolve); err == nil {
		return os.NewFile(uintptr(fd), path), nil
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, err
	}
	if p == "." {
		return nil, fmt.Errorf("open rootfs: %w", unix.ENOENT)
	}
	parent, err := mkdirAll(root, filepath.Dir(p), mode, resolve)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	name := filepath.Base(p)
	if err := unix.Mkdirat(int(parent.Fd()), name, uint32(mode.Perm())); err != nil && err != unix.EEXIST {
		return nil, &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	// The component exists now (ours or a racing creator's); resolve it in
	// root again so a symlink planted there is still confined.
	fd, err := openat2(int(root.Fd()), p, unix.O_PATH|unix.O_DIRECTORY, resolve)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// maxSymlinks matches the kernel's limit on nested symlinks in one lookup.
const maxSymlinks = 40

// expand rewrites path, a path inside root, with every symlink on the way
// replaced by its target, confined to root as the kernel's
// RESOLVE_IN_ROOT would. Components that do not exist are kept as written.
// The result is only a name: callers create and open it with
// RESOLVE_NO_SYMLINKS, so a symlink planted after expand makes them fail
// rather than escape.
//
// It exists for mount targets whose last component is a dangling symlink in
// the image, such as Debian's /etc/resolv.conf: the target must be created
// where the symlink points, inside the rootfs.
func expand(root *os.File, path string) (string, error) {
	parts := strings.Split(rel(path), "/")
	var resolved []string
	links := 0
	for len(parts) > 0 {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		cur := strings.Join(append(resolved, c), "/")
		var st unix.Stat_t
		err := unix.Fstatat(int(root.Fd()), cur, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			resolved = append(resolved, c)
			rest := filepath.Clean("/" + strings.Join(append(resolved, parts...), "/"))
			return rest, nil
		}
		if err != nil {
			return "", &os.PathError{Op: "lstat", Path: "/" + cur, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			resolved = append(resolved, c)
			continue
		}
		links++
		if links > maxSymlinks {
			return "", &os.PathError{Op: "resolve", Path: path, Err: unix.ELOOP}
		}
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(root.Fd()), cur, buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: "/" + cur, Err: err}
		}
		target := string(buf[:n])
		if strings.HasPrefix(target, "/") {
			resolved = nil
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return "/" + strings.Join(resolved, "/"), nil
}

// PrepareTarget creates a mount target inside root, a directory or an
// empty file, following the image's symlinks only within root, and returns
// an O_PATH descriptor of it that refers to no symlink.
func PrepareTarget(root *os.File, path string, dir bool) (*os.File, error) {
	p, err := expand(root, path)
	if err != nil {
		return nil, err
	}
	if dir {
		return mkdirAll(root, p, 0o755, noSymlinks)
	}
	if f, err := openNoSymlinks(root, p, unix.O_PATH); err == nil {
		return f, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, err
	}
	parent, err := mkdirAll(root, filepath.Dir(p), 0o755, noSymlinks)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(p),
		unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && err != unix.EEXIST {
		return nil, &os.PathError{Op: "create", Path: p, Err: err}
	}
	if err == nil {
		unix.Close(fd)
	}
	return openNoSymlinks(root, p, unix.O_PATH)
}
