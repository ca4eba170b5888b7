package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// owner is the on-disk owner of an entry.
type owner struct {
	uid, gid int
	keep     bool // leave the caller's ids (KeepOwner)
}

func (a *applier) owner(hdr *tar.Header) (owner, error) {
	if a.opts.KeepOwner {
		if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
			return owner{}, fmt.Errorf("%w: uid %d or gid %d out of range", ErrInvalid, hdr.Uid, hdr.Gid)
		}
		return owner{keep: true}, nil
	}
	uid, err := toHost(a.opts.UIDMap, int64(hdr.Uid))
	if err != nil {
		return owner{}, fmt.Errorf("uid: %w", err)
	}
	gid, err := toHost(a.opts.GIDMap, int64(hdr.Gid))
	if err != nil {
		return owner{}, fmt.Errorf("gid: %w", err)
	}
	return owner{uid: uid, gid: gid}, nil
}

// needChown reports whether a file just created in parent must be chowned
// to o: a new file belongs to the caller, and to the parent's group when
// the parent is setgid.
func (a *applier) needChown(parent *dirent, o owner) bool {
	return !o.keep && (o.uid != a.euid || o.gid != a.egid || parent.mode&unix.S_ISGID != 0)
}

// needChmod reports whether a file created in parent with mode&0777 must be
// chmodded to mode: for the special bits, where the umask took bits, and
// where the parent was not created here (a default ACL may shape the mode).
func (a *applier) needChmod(parent *dirent, mode uint32) bool {
	return mode&^0o777 != 0 || mode&a.umask != 0 || !parent.ours
}

func times(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(at), timespec(hdr.ModTime)}
}

// timespec converts a header time; a time the platform's time_t cannot
// hold (only on 32-bit systems) becomes the epoch.
func timespec(t time.Time) unix.Timespec {
	ts, err := unix.TimeToTimespec(t)
	if err != nil {
		return unix.Timespec{}
	}
	return ts
}

// futimens sets the times of an open (not O_PATH) descriptor:
// utimensat(fd, NULL, ...), which x/sys does not wrap.
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// create runs mk, which makes name in parent and fails with EEXIST when
// the name is taken; the existing entry is then removed (never written
// through: it may be a symlink, or share its inode with a lower layer) and
// mk runs once more.
func (a *applier) create(parent *dirent, name string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if err := a.t.removeAll(parent.fd, name); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		err = mk()
	}
	return err
}

// regular writes a regular file. It is created here, in the order of the
// tar, so a later entry that replaces, links or whiteouts it finds it; a
// small file's content and metadata are then finished by a writer
// goroutine (writers.go), a large one's here.
func (a *applier) regular(parent *dirent, name string, r io.Reader, hdr *tar.Header, o owner) error {
	mode := uint32(hdr.Mode) & 0o7777
	var fd int
	err := a.create(parent, name, func() (err error) {
		fd, err = openat(parent.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
		return err
	})
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	f := &fileJob{
		fd:    fd,
		index: a.stats.Entries - 1,
		hdr:   hdr,
		owner: o,
		chown: a.needChown(parent, o),
		chmod: a.needChmod(parent, mode),
		mode:  mode,
	}
	a.stats.Size += hdr.Size
	if a.w != nil && hdr.Size <= smallFile {
		f.buf = a.w.buffer()
		f.data = (*f.buf)[:hdr.Size]
		if err := readContent(r, f.data, 0, hdr.Size); err != nil {
			a.w.release(f)
			return err
		}
		a.w.submit(f)
		return nil
	}
	err = a.copy(fd, r, hdr.Size)
	if err == nil {
		err = a.finishFile(f)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: name, Err: cerr}
	}
	return err
}

// fileJob is a created regular file still to be finished.
type fileJob struct {
	fd    int
	index int64
	hdr   *tar.Header
	owner owner
	chown bool
	chmod bool
	mode  uint32
	data  []byte  // the content, for a small file
	buf   *[]byte // data's buffer, from the writers' pool
}

// finishFile writes a small file's content, then sets owner, xattrs, mode
// and times. chown clears the setuid and setgid bits and
// security.capability, so it comes first, then the xattrs, then the mode,
// then the times (writing changed them).
func (a *applier) finishFile(f *fileJob) error {
	name := f.hdr.Name
	if f.data != nil {
		holes, err := writeData(f.fd, f.data, 0)
		if err != nil {
			return err
		}
		if holes {
			if err := unix.Ftruncate(f.fd, f.hdr.Size); err != nil {
				return &os.PathError{Op: "truncate", Path: name, Err: err}
			}
		}
	}
	if f.chown {
		if err := unix.Fchown(f.fd, f.owner.uid, f.owner.gid); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	if err := a.xattrs(f.hdr, true, func(k string, v []byte) error { return unix.Fsetxattr(f.fd, k, v, 0) }); err != nil {
		return err
	}
	if f.chmod {
		if err := unix.Fchmod(f.fd, f.mode); err != nil {
			return &os.PathError{Op: "chmod", Path: name, Err: err}
		}
	}
	ts := times(f.hdr)
	if err := futimens(f.fd, &ts); err != nil {
		return &os.PathError{Op: "utimes", Path: name, Err: err}
	}
	return nil
}

// holeBlock is the granularity of holes: a 4 KiB block of zeros at a 4 KiB
// aligned offset is skipped instead of written, so sparse files (GNU and
// PAX sparse entries, which the tar reader expands to zeros, and files with
// long zero runs) stay sparse.
const holeBlock = 4096

var zeroBlock [holeBlock]byte

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// readContent reads len(b) bytes of an entry's content, which starts at
// off of size.
func readContent(r io.Reader, b []byte, off, size int64) error {
	m, err := io.ReadFull(r, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("content ends at byte %d of %d", off+int64(m), size)
	}
	if err != nil {
		return fmt.Errorf("read content: %w", err)
	}
	return nil
}

// copy writes size bytes of r into fd.
func (a *applier) copy(fd int, r io.Reader, size int64) error {
	var off int64
	holes := false
	for off < size {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		b := a.buf[:min(int64(len(a.buf)), size-off)]
		if err := readContent(r, b, off, size); err != nil {
			return err
		}
		h, err := writeData(fd, b, off)
		if err != nil {
			return err
		}
		holes = holes || h
		off += int64(len(b))
	}
	if holes {
		if err := unix.Ftruncate(fd, size); err != nil {
			return &os.PathError{Op: "truncate", Path: procFd(fd), Err: err}
		}
	}
	return nil
}

// writeData writes b at off (a multiple of holeBlock), leaving whole zero
// blocks as holes; it reports whether it left any, for the caller to set
// the size at the end.
func writeData(fd int, b []byte, off int64) (holes bool, err error) {
	m := len(b)
	for i := 0; i < m; {
		j := i
		for j < m && !(m-j >= holeBlock && isZero(b[j:j+holeBlock])) {
			j += min(holeBlock, m-j)
		}
		if j > i {
			if err := pwriteAll(fd, b[i:j], off+int64(i)); err != nil {
				return holes, err
			}
		}
		for j+holeBlock <= m && isZero(b[j:j+holeBlock]) {
			j += holeBlock
			holes = true
		}
		i = j
	}
	return holes, nil
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: procFd(fd), Err: err}
		}
		if n == 0 {
			return &os.PathError{Op: "write", Path: procFd(fd), Err: io.ErrShortWrite}
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// directory creates a directory, or merges into an existing one.
func (a *applier) directory(parent *dirent, base, name string, hdr *tar.Header, o owner) error {
	err := unix.Mkdirat(parent.fd, base, 0o700)
	ours := err == nil
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(parent.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// A non-directory, a symlink included: replaced, never
			// followed.
			if err = a.t.removeAll(parent.fd, base); err == nil {
				err = unix.Mkdirat(parent.fd, base, 0o700)
				ours = err == nil
			}
		}
	}
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: base, Err: err}
	}
	fd, err := openat(parent.fd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: base, Err: err}
	}
	d := &dirent{fd: fd, ours: ours}
	if err := d.stat(); err != nil {
		unix.Close(fd)
		return err
	}
	a.t.keep(name, d)
	if !ours || a.needChown(parent, o) {
		if err := a.chownPath(fd, o, name); err != nil {
			return err
		}
	}
	if err := a.xattrs(hdr, true, func(k string, v []byte) error { return unix.Setxattr(procFd(fd), k, v, 0) }); err != nil {
		return err
	}
	a.dirMeta(name, d, hdr)
	return nil
}

// rootDir applies a directory entry naming the root: its owner, xattrs,
// mode and times.
func (a *applier) rootDir(hdr *tar.Header, o owner) error {
	if err := a.chownPath(a.t.root.fd, o, "."); err != nil {
		return err
	}
	if err := a.xattrs(hdr, true, func(k string, v []byte) error { return unix.Setxattr(procFd(a.t.root.fd), k, v, 0) }); err != nil {
		return err
	}
	a.dirMeta(".", &a.t.root, hdr)
	return nil
}

func (a *applier) dirMeta(name string, d *dirent, hdr *tar.Header) {
	m := dirMeta{index: a.stats.Entries - 1, name: name, id: inode{d.dev, d.ino}, mode: uint32(hdr.Mode) & 0o7777, ts: times(hdr)}
	if i, ok := a.dirIndex[m.id]; ok {
		a.dirs[i] = m
		return
	}
	a.dirIndex[m.id] = len(a.dirs)
	a.dirs = append(a.dirs, m)
}

// chownPath chowns what an O_PATH descriptor refers to, never following a
// symlink.
func (a *applier) chownPath(fd int, o owner, name string) error {
	if o.keep {
		return nil
	}
	if err := unix.Fchownat(fd, "", o.uid, o.gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: name, Err: err}
	}
	return nil
}

// symlink creates a symlink. Its target is stored as it is and never
// followed by Apply: later entries that run through it are resolved with
// the root as "/".
func (a *applier) symlink(parent *dirent, name string, hdr *tar.Header, o owner) error {
	if hdr.Linkname == "" || len(hdr.Linkname) >= pathMax {
		return fmt.Errorf("%w: symlink target is %d bytes", ErrInvalid, len(hdr.Linkname))
	}
	err := a.create(parent, name, func() error { return unix.Symlinkat(hdr.Linkname, parent.fd, name) })
	if err != nil {
		return &os.PathError{Op: "symlink", Path: name, Err: err}
	}
	if a.needChown(parent, o) {
		if err := unix.Fchownat(parent.fd, name, o.uid, o.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: name, Err: err}
		}
	}
	// lsetxattr on /proc/self/fd/PARENT/NAME: the parent is exactly the
	// descriptor's directory, and the l-variant does not follow NAME.
	p := procFd(parent.fd) + "/" + name
	if err := a.xattrs(hdr, false, func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) }); err != nil {
		return err
	}
	ts := times(hdr)
	if err := unix.UtimesNanoAt(parent.fd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: name, Err: err}
	}
	return nil
}

// hardlink links name to an earlier entry (or, in WhiteoutApply, a file of
// the lower layers). The target is resolved in the root like any name and
// linked without AT_SYMLINK_FOLLOW: a symlink target is linked as the
// symlink itself, never as what it points at.
func (a *applier) hardlink(parent *dirent, name string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "." {
		return fmt.Errorf("%w: hardlink to the root directory", ErrInvalid)
	}
	tdir, tbase := splitName(target)
	tparent, err := a.t.dir(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %s: %w", target, err)
	}
	err = unix.Linkat(tparent.fd, tbase, parent.fd, name, 0)
	if err == unix.EEXIST {
		if sameInode(tparent.fd, tbase, parent.fd, name) {
			return nil
		}
		if err := a.t.removeAll(parent.fd, name); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		err = unix.Linkat(tparent.fd, tbase, parent.fd, name, 0)
	}
	if err != nil {
		return fmt.Errorf("hardlink to %s: %w", target, err)
	}
	return nil
}

func sameInode(dir1 int, name1 string, dir2 int, name2 string) bool {
	var s1, s2 unix.Stat_t
	return unix.Fstatat(dir1, name1, &s1, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		unix.Fstatat(dir2, name2, &s2, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		s1.Dev == s2.Dev && s1.Ino == s2.Ino
}

// special creates a device node or a fifo, beneath the root like anything
// else: a device node is only ever as dangerous as the root it is in.
func (a *applier) special(parent *dirent, name string, hdr *tar.Header, o owner) error {
	var typ uint32
	var dev uint64
	switch hdr.Typeflag {
	case tar.TypeChar:
		typ = unix.S_IFCHR
	case tar.TypeBlock:
		typ = unix.S_IFBLK
	default:
		typ = unix.S_IFIFO
	}
	if typ != unix.S_IFIFO {
		if hdr.Devmajor < 0 || hdr.Devmajor > math.MaxUint32 || hdr.Devminor < 0 || hdr.Devminor > math.MaxUint32 {
			return fmt.Errorf("%w: device number %d:%d", ErrInvalid, hdr.Devmajor, hdr.Devminor)
		}
		dev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	}
	err := a.create(parent, name, func() error { return unix.Mknodat(parent.fd, name, typ|0o600, int(dev)) })
	if err == unix.EPERM && a.opts.SkipDenied && typ != unix.S_IFIFO {
		atomic.AddInt64(&a.stats.Skipped, 1)
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "mknod", Path: name, Err: err}
	}
	fd, err := openat(parent.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	if a.needChown(parent, o) {
		if err := a.chownPath(fd, o, name); err != nil {
			return err
		}
	}
	p := procFd(fd)
	if err := a.xattrs(hdr, false, func(k string, v []byte) error { return unix.Setxattr(p, k, v, 0) }); err != nil {
		return err
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, p, uint32(hdr.Mode)&0o7777, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	ts := times(hdr)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts[:], 0); err != nil {
		return &os.PathError{Op: "utimes", Path: name, Err: err}
	}
	return nil
}

const paxXattr = "SCHILY.xattr."

// keepXattr says which xattrs of a tar entry Apply sets: the user, trusted
// and security namespaces, less the overlay driver's own attributes (a
// layer carrying trusted.overlay.redirect or .opaque would reshape the
// overlay mount it ends up in) and the SELinux label (the host's policy
// labels files, never the image). user.* is only allowed by the kernel on
// regular files and directories.
func keepXattr(name string, userOK bool) bool {
	switch {
	case strings.HasPrefix(name, "trusted.overlay."), strings.HasPrefix(name, "user.overlay."),
		name == "security.selinux":
		return false
	case strings.HasPrefix(name, "user."):
		return userOK
	case strings.HasPrefix(name, "trusted."), strings.HasPrefix(name, "security."):
		return true
	}
	return false
}

// xattrs sets the entry's xattrs with set. EOPNOTSUPP is tolerated for
// trusted.* (file systems without trusted xattrs, where nothing could read
// them either), EPERM where SkipDenied says so; anything else is an error.
func (a *applier) xattrs(hdr *tar.Header, userOK bool, set func(k string, v []byte) error) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || !keepXattr(name, userOK) {
			continue
		}
		err := set(name, []byte(v))
		switch {
		case err == nil:
		case errors.Is(err, unix.EOPNOTSUPP) && strings.HasPrefix(name, "trusted."),
			errors.Is(err, unix.EPERM) && a.opts.SkipDenied:
			atomic.AddInt64(&a.stats.Skipped, 1)
		default:
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}
