package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// copyTree makes dst, an existing empty directory, a copy of the tree src:
// contents (a reflink where the file system can share extents, else
// copy_file_range, which Go's io.Copy between files uses), hard links,
// symlinks (copied, never followed), devices, fifos and sockets, owners,
// modes, extended attributes (security.capability and trusted.overlay.*
// too) and times.
//
// Preconditions: src is a committed snapshot, which nothing writes to; each
// component is lstat'ed, so a symlink in it is copied as a symlink and
// never leads the copy elsewhere.
func copyTree(ctx context.Context, dst, src string) error {
	c := &treeCopier{ctx: ctx, links: map[inode]string{}}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("copy %s: not a directory", src)
	}
	if err := c.dir(dst, src); err != nil {
		return err
	}
	return c.attrs(dst, src, &st)
}

type inode struct{ dev, ino uint64 }

type treeCopier struct {
	ctx   context.Context
	links map[inode]string // first copy of each multiply-linked inode
	buf   []byte
}

func (c *treeCopier) dir(dst, src string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.entry(filepath.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (c *treeCopier) entry(dst, src string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		id := inode{st.Dev, st.Ino}
		if first, ok := c.links[id]; ok {
			if err := unix.Link(first, dst); err != nil {
				return &os.LinkError{Op: "link", Old: first, New: dst, Err: err}
			}
			return nil // the inode's attributes are already set
		}
		c.links[id] = dst
	}
	var err error
	switch typ {
	case unix.S_IFDIR:
		if err = unix.Mkdir(dst, 0o700); err == nil {
			err = c.dir(dst, src)
		}
	case unix.S_IFREG:
		err = copyFile(dst, src)
	case unix.S_IFLNK:
		var target string
		if target, err = os.Readlink(src); err == nil {
			err = unix.Symlink(target, dst)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		err = unix.Mknod(dst, st.Mode, int(st.Rdev))
	default:
		err = fmt.Errorf("unknown file type %o", typ)
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return c.attrs(dst, src, &st)
}

// attrs gives dst the owner, mode, xattrs and times of src, in that order:
// chown clears set-id bits and security.capability, and every change but
// the last one moves the times.
func (c *treeCopier) attrs(dst, src string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	if err := c.xattrs(dst, src); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

func (c *treeCopier) xattrs(dst, src string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		val, err := c.getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			return fmt.Errorf("copy xattr %s of %s: %w", name, src, os.NewSyscallError("lsetxattr", err))
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(path, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil || n == 0 {
			return nil, pathErr("llistxattr", path, err)
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return nil, pathErr("llistxattr", path, err)
		}
		var names []string
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
	}
}

func (c *treeCopier) getXattr(path, name string) ([]byte, error) {
	for {
		n, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, fmt.Errorf("xattr %s of %s: %w", name, path, os.NewSyscallError("lgetxattr", err))
		}
		if cap(c.buf) < n {
			c.buf = make([]byte, n)
		}
		n, err = unix.Lgetxattr(path, name, c.buf[:n])
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("xattr %s of %s: %w", name, path, os.NewSyscallError("lgetxattr", err))
		}
		return c.buf[:n], nil
	}
}

func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: path, Err: err}
}

// copyFile copies a regular file's bytes, sharing extents (FICLONE) where
// the file system can.
func copyFile(dst, src string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}
