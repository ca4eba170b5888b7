package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// WhiteoutFormat says how Apply writes a layer's deletions.
type WhiteoutFormat int

const (
	// WhiteoutOverlay writes the layer into its own empty directory, an
	// overlayfs upper or lower: ".wh.NAME" becomes a 0/0 character device
	// NAME and ".wh..wh..opq" sets trusted.overlay.opaque=y on its
	// directory. Nothing is deleted.
	WhiteoutOverlay WhiteoutFormat = iota
	// WhiteoutApply writes the layer onto a tree that already holds the
	// lower layers: ".wh.NAME" removes NAME and everything beneath it, and
	// ".wh..wh..opq" removes every child of its directory that this same
	// layer did not write.
	WhiteoutApply
	// WhiteoutNone treats ".wh." names as ordinary files: for tars that are
	// not layers (docker cp, volume copies), as docker's Untar does.
	WhiteoutNone
)

func (f WhiteoutFormat) String() string {
	switch f {
	case WhiteoutOverlay:
		return "overlay"
	case WhiteoutApply:
		return "apply"
	case WhiteoutNone:
		return "none"
	}
	return "whiteout(" + strconv.Itoa(int(f)) + ")"
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): skipped
	whiteoutOpaque = ".wh..wh..opq"
)

// ApplyOptions are the options of Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutFormat
	// UIDMap and GIDMap map the ids in the tar (container ids) to the ids
	// stored on disk, for a rootless or userns-remapped store. Empty is the
	// identity. An id outside a non-empty mapping is an error.
	UIDMap, GIDMap []specs.LinuxIDMapping
	// KeepOwner leaves every file owned by the caller instead of the
	// header's ids: a user without CAP_CHOWN and outside a user namespace
	// cannot give files away.
	KeepOwner bool
	// SkipDenied skips what the kernel refuses an unprivileged caller with
	// EPERM (device nodes other than whiteouts, trusted.* and
	// security.capability xattrs) instead of failing, as docker's rootless
	// mode does. Each skip is counted in ApplyStats.Skipped.
	SkipDenied bool
}

// ApplyStats describe an applied layer.
type ApplyStats struct {
	Size    int64 // bytes of regular file content: docker's layer size
	Entries int64 // tar entries read
	Skipped int64 // xattrs and device nodes skipped (see SkipDenied)
}

// Apply writes the uncompressed layer tar r beneath dir. See the package
// documentation for what it guarantees about hostile tars. Directories'
// modes and times are set at the end, after their children were written.
// On an error the tree is left half-written: callers discard it.
//
// Apply reads r to its end, past the tar's end-of-archive marker, so that a
// verifying reader beneath it sees every byte.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (ApplyStats, error) {
	a, err := newApplier(ctx, dir, opts)
	if err != nil {
		return ApplyStats{}, err
	}
	defer a.t.close()
	ra := newReadAhead(r)
	defer ra.close()
	a.w = newWriters(a)
	err = a.entries(tar.NewReader(ra))
	if a.w != nil {
		if werr := a.w.wait(); err == nil {
			err = werr
		}
	}
	if err == nil {
		err = a.finishDirs()
	}
	for err == nil {
		if err = ctx.Err(); err != nil {
			break
		}
		if _, err = ra.Read(a.buf); err == io.EOF {
			err = nil
			break
		} else if err != nil {
			err = fmt.Errorf("read past the end of the tar: %w", err)
		}
	}
	return a.stats, err
}

// entries applies every entry of tr.
func (a *applier) entries(tr *tar.Reader) error {
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if a.w != nil {
			if err := a.w.failed(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar header after %d entries: %w", a.stats.Entries, err)
		}
		a.stats.Entries++
		if err := a.entry(tr, hdr); err != nil {
			return &EntryError{Index: a.stats.Entries - 1, Name: hdr.Name, Err: err}
		}
	}
}

type applier struct {
	ctx   context.Context
	opts  ApplyOptions
	t     *tree
	w     *writers // nil: files are finished inline
	buf   []byte
	stats ApplyStats

	euid, egid       int
	umask            uint32
	rootUID, rootGID int // owner of directories the tar implies but does not list

	dirs     []dirMeta
	dirIndex map[inode]int
	// written holds what this layer wrote, for opaque whiteouts in
	// WhiteoutApply (nil in WhiteoutOverlay).
	written map[child]struct{}
}

type inode struct{ dev, ino uint64 }

// child is a name in a directory, by the directory's identity, so that a
// directory reached through different symlinks is still one directory.
type child struct {
	dir  inode
	name string
}

// dirMeta is what is set on a directory once everything beneath it exists:
// its mode (it is created 0700 so the caller can always write into it) and
// its times (every child written changes its mtime).
type dirMeta struct {
	index int64 // of the entry, for errors
	name  string
	id    inode
	mode  uint32
	ts    [2]unix.Timespec
}

// copyBuffer is the size of the reads from the tar: large, so one system
// call moves most files, and a multiple of holeBlock.
const copyBuffer = 1 << 20

func newApplier(ctx context.Context, dir string, opts ApplyOptions) (*applier, error) {
	switch opts.Whiteouts {
	case WhiteoutOverlay, WhiteoutApply, WhiteoutNone:
	default:
		return nil, fmt.Errorf("apply layer to %s: unknown whiteout format %d", dir, opts.Whiteouts)
	}
	t, err := openTree(dir)
	if err != nil {
		return nil, fmt.Errorf("apply layer: %w", err)
	}
	a := &applier{
		ctx:      ctx,
		opts:     opts,
		t:        t,
		buf:      make([]byte, copyBuffer),
		euid:     os.Geteuid(),
		egid:     os.Getegid(),
		umask:    readUmask(),
		dirIndex: make(map[inode]int),
	}
	if opts.Whiteouts == WhiteoutApply {
		a.written = make(map[child]struct{})
	}
	if a.rootUID, err = toHost(opts.UIDMap, 0); err != nil {
		t.close()
		return nil, fmt.Errorf("apply layer: uid map: %w", err)
	}
	if a.rootGID, err = toHost(opts.GIDMap, 0); err != nil {
		t.close()
		return nil, fmt.Errorf("apply layer: gid map: %w", err)
	}
	t.mkdir = a.implicitDir
	return a, nil
}

// readUmask reads the process umask without changing it (umask(2) can only
// be read by setting it, which would race with other goroutines creating
// files). Unknown means "assume it clears everything", so modes are always
// set explicitly.
func readUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o777
}

// entry applies one tar entry.
func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	a.t.begin()
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := splitName(name)
	if a.opts.Whiteouts != WhiteoutNone && strings.Contains(name, whiteoutPrefix) {
		if strings.HasPrefix(base, whiteoutPrefix) {
			return a.whiteout(dir, base)
		}
		if inMetaDir(dir) {
			return nil
		}
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: a %s entry cannot replace the root directory", ErrInvalid, typeName(hdr.Typeflag))
		}
	}
	o, err := a.owner(hdr)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse,
		tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("%w: unsupported entry type %s", ErrInvalid, typeName(hdr.Typeflag))
	}
	if name == "." {
		return a.rootDir(hdr, o)
	}
	parent, err := a.t.dir(dir, true)
	if err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = a.directory(parent, base, name, hdr, o)
	case tar.TypeSymlink:
		err = a.symlink(parent, base, hdr, o)
	case tar.TypeLink:
		err = a.hardlink(parent, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.special(parent, base, hdr, o)
	default:
		err = a.regular(parent, base, tr, hdr, o)
	}
	if err != nil {
		return err
	}
	a.mark(parent, base)
	return nil
}

// inMetaDir reports whether a cleaned directory name runs through an aufs
// metadata directory (".wh..wh.plnk/..."), whose content is skipped.
func inMetaDir(dir string) bool {
	for _, c := range strings.Split(dir, "/") {
		if strings.HasPrefix(c, whiteoutMeta) {
			return true
		}
	}
	return false
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return strconv.QuoteRune(rune(t))
}

// mark records that this layer wrote name in parent (WhiteoutApply only).
func (a *applier) mark(parent *dirent, name string) {
	if a.written != nil {
		a.written[child{inode{parent.dev, parent.ino}, name}] = struct{}{}
	}
}

// implicitDir gives a directory the tar implies (a parent it does not
// list) the shape docker gives it: 0755, owned by the container's root.
func (a *applier) implicitDir(parent *dirent, name string, d *dirent) error {
	setgid := parent.mode&unix.S_ISGID != 0
	if !a.opts.KeepOwner && (a.rootUID != a.euid || a.rootGID != a.egid || setgid) {
		if err := unix.Fchownat(d.fd, "", a.rootUID, a.rootGID, unix.AT_EMPTY_PATH); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	if a.umask&0o755 != 0 {
		if err := unix.Fchmodat(unix.AT_FDCWD, procFd(d.fd), 0o755, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: name, Err: err}
		}
	}
	a.mark(parent, name)
	return nil
}

// finishDirs sets the modes and times of the directories the tar listed,
// deepest first. A directory that a later entry removed or replaced is
// skipped: its name may now lead elsewhere, which the inode check catches.
func (a *applier) finishDirs() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		m := &a.dirs[i]
		fd, err := openInRoot(a.t.root.fd, m.name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			if errnoIs(err, unix.ENOENT, unix.ENOTDIR, unix.ELOOP) {
				continue
			}
			return &EntryError{Index: m.index, Name: m.name, Err: err}
		}
		err = a.finishDir(fd, m)
		unix.Close(fd)
		if err != nil {
			return &EntryError{Index: m.index, Name: m.name, Err: err}
		}
	}
	return nil
}

func (a *applier) finishDir(fd int, m *dirMeta) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: m.name, Err: err}
	}
	if st.Dev != m.id.dev || st.Ino != m.id.ino {
		return nil
	}
	p := procFd(fd)
	if st.Mode&0o7777 != m.mode {
		if err := unix.Fchmodat(unix.AT_FDCWD, p, m.mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: m.name, Err: err}
		}
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, m.ts[:], 0); err != nil {
		return &os.PathError{Op: "utimes", Path: m.name, Err: err}
	}
	return nil
}
