package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TarOptions are the options of Tar.
type TarOptions struct {
	// OverlayWhiteouts translates an overlayfs upper directory back into a
	// layer: a 0/0 character device NAME becomes an empty ".wh.NAME" entry
	// and trusted.overlay.opaque=y a ".wh..wh..opq" entry after its
	// directory's.
	OverlayWhiteouts bool
	// ModTime, when set, replaces every entry's modification time, for
	// reproducible layers.
	ModTime time.Time
	// UIDMap and GIDMap map the ids on disk back to the container ids the
	// tar carries (the inverse of ApplyOptions'); empty is the identity.
	UIDMap, GIDMap []specs.LinuxIDMapping
}

// Tar writes the content of dir (not dir itself) to w as a layer tar: PAX
// format, entries in depth-first order with each directory's children
// sorted by name, numeric ids only, xattrs as SCHILY.xattr records (less
// the overlay driver's and the SELinux label), files with several links as
// one file and hardlinks to it, devices, fifos; sockets are skipped.
// Symlinks are never followed: every file is opened beneath its
// directory's descriptor with O_NOFOLLOW.
func Tar(ctx context.Context, dir string, w io.Writer, opts TarOptions) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	t := &tarrer{
		ctx:   ctx,
		opts:  opts,
		tw:    tar.NewWriter(w),
		links: make(map[inode]string),
		buf:   make([]byte, copyBuffer),
	}
	if err := t.dir(fd, ""); err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return t.tw.Close()
}

type tarrer struct {
	ctx   context.Context
	opts  TarOptions
	tw    *tar.Writer
	links map[inode]string // first name of each multiply linked inode
	buf   []byte
}

// dir writes the children of the directory fd, whose name in the tar is
// prefix ("" for the root, else ending in "/").
func (t *tarrer) dir(fd int, prefix string) error {
	dup, err := unix.Dup(fd)
	if err != nil {
		return &os.PathError{Op: "dup", Path: prefix, Err: err}
	}
	f := os.NewFile(uintptr(dup), prefix)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return &os.PathError{Op: "readdir", Path: prefix, Err: err}
	}
	sort.Strings(names)
	for _, n := range names {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		if err := t.entry(fd, n, prefix+n); err != nil {
			return err
		}
	}
	return nil
}

func (t *tarrer) entry(dirfd int, base, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	hdr, err := t.header(&st, name)
	if err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return t.directory(dirfd, base, hdr, &st)
	case unix.S_IFREG:
		return t.regular(dirfd, base, hdr, &st)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dirfd, base, buf)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: name, Err: err}
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
	case unix.S_IFCHR:
		if t.opts.OverlayWhiteouts && st.Rdev == 0 {
			// Whiteouts may share one inode (overlayfs links them), so
			// they are never hardlinks.
			hdr.Typeflag, hdr.Mode = tar.TypeReg, 0
			hdr.Name = whiteoutName(name)
			return t.tw.WriteHeader(hdr)
		}
		hdr.Typeflag = tar.TypeChar
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets have no tar form
	}
	if t.link(hdr, &st) {
		return t.tw.WriteHeader(hdr)
	}
	// lgetxattr through /proc/self/fd/DIR/NAME: the directory is the
	// descriptor's, and the l-variants do not follow NAME.
	p := procFd(dirfd) + "/" + base
	if err := t.xattrs(hdr, func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
		func(k string, buf []byte) (int, error) { return unix.Lgetxattr(p, k, buf) }); err != nil {
		return err
	}
	return t.tw.WriteHeader(hdr)
}

func whiteoutName(name string) string {
	dir, base := splitName(name)
	if dir == "." {
		return whiteoutPrefix + base
	}
	return dir + "/" + whiteoutPrefix + base
}

func (t *tarrer) header(st *unix.Stat_t, name string) (*tar.Header, error) {
	uid, err := toContainer(t.opts.UIDMap, st.Uid)
	if err != nil {
		return nil, fmt.Errorf("%s: uid: %w", name, err)
	}
	gid, err := toContainer(t.opts.GIDMap, st.Gid)
	if err != nil {
		return nil, fmt.Errorf("%s: gid: %w", name, err)
	}
	mtime := t.opts.ModTime
	if mtime.IsZero() {
		mtime = time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec))
	}
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     uid,
		Gid:     gid,
		ModTime: mtime,
		Format:  tar.FormatPAX,
	}, nil
}

// link turns hdr into a hardlink when st's inode was written before under
// another name, and remembers the inode otherwise.
func (t *tarrer) link(hdr *tar.Header, st *unix.Stat_t) bool {
	if st.Nlink < 2 {
		return false
	}
	id := inode{st.Dev, st.Ino}
	if first, ok := t.links[id]; ok {
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		hdr.Devmajor, hdr.Devminor = 0, 0
		return true
	}
	t.links[id] = hdr.Name
	return false
}

func (t *tarrer) directory(dirfd int, base string, hdr *tar.Header, st *unix.Stat_t) error {
	fd, err := openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: hdr.Name, Err: err}
	}
	defer unix.Close(fd)
	if err := sameFile(fd, st, hdr.Name); err != nil {
		return err
	}
	hdr.Typeflag = tar.TypeDir
	name := hdr.Name
	hdr.Name += "/"
	opaque := false
	if t.opts.OverlayWhiteouts {
		buf := make([]byte, 8)
		n, err := unix.Fgetxattr(fd, overlayOpaque, buf)
		opaque = err == nil && string(buf[:n]) == "y"
	}
	if err := t.xattrs(hdr, func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		func(k string, buf []byte) (int, error) { return unix.Fgetxattr(fd, k, buf) }); err != nil {
		return err
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if opaque {
		if err := t.tw.WriteHeader(&tar.Header{
			Name:     name + "/" + whiteoutOpaque,
			Typeflag: tar.TypeReg,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			ModTime:  hdr.ModTime,
			Format:   tar.FormatPAX,
		}); err != nil {
			return err
		}
	}
	return t.dir(fd, hdr.Name)
}

func (t *tarrer) regular(dirfd int, base string, hdr *tar.Header, st *unix.Stat_t) error {
	hdr.Typeflag = tar.TypeReg
	if t.link(hdr, st) {
		return t.tw.WriteHeader(hdr)
	}
	if st.Size == 0 {
		// Nothing to read: not opening it saves a system call per empty
		// file and archives unreadable empty files too.
		p := procFd(dirfd) + "/" + base
		if err := t.xattrs(hdr, func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
			func(k string, buf []byte) (int, error) { return unix.Lgetxattr(p, k, buf) }); err != nil {
			return err
		}
		return t.tw.WriteHeader(hdr)
	}
	fd, err := openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: hdr.Name, Err: err}
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	if err := sameFile(fd, st, hdr.Name); err != nil {
		return err
	}
	hdr.Size = st.Size
	if err := t.xattrs(hdr, func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		func(k string, buf []byte) (int, error) { return unix.Fgetxattr(fd, k, buf) }); err != nil {
		return err
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(t.tw, io.LimitReader(f, st.Size), t.buf)
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if n != st.Size {
		return fmt.Errorf("%s: file shrank from %d to %d bytes while archived", hdr.Name, st.Size, n)
	}
	return nil
}

// sameFile checks that fd is the inode that was stat'ed by name, so a name
// swapped between the two calls is an error rather than a different file
// in the tar.
func sameFile(fd int, st *unix.Stat_t, name string) error {
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		return fmt.Errorf("%s changed while archived", name)
	}
	return nil
}

// xattrs adds the entry's xattrs to hdr, with the same filter Apply uses.
func (t *tarrer) xattrs(hdr *tar.Header, list func([]byte) (int, error), get func(string, []byte) (int, error)) error {
	names, err := readXattr(list)
	if err != nil {
		if errnoIs(err, unix.EOPNOTSUPP) {
			return nil
		}
		return &os.PathError{Op: "listxattr", Path: hdr.Name, Err: err}
	}
	userOK := hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeDir
	for _, k := range strings.Split(strings.TrimRight(string(names), "\x00"), "\x00") {
		if k == "" || !keepXattr(k, userOK) {
			continue
		}
		v, err := readXattr(func(buf []byte) (int, error) { return get(k, buf) })
		if err != nil {
			if errnoIs(err, unix.ENODATA) {
				continue
			}
			return &os.PathError{Op: "getxattr " + k, Path: hdr.Name, Err: err}
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattr+k] = string(v)
	}
	return nil
}

// readXattr calls f with a growing buffer until the value fits (it may
// grow between the calls).
func readXattr(f func([]byte) (int, error)) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := f(buf)
		if err == unix.ERANGE && size < 1<<20 {
			size *= 4
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
