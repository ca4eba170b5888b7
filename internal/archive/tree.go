package archive

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dirent is a directory Apply holds a descriptor of: the root, or a
// directory resolved beneath it.
type dirent struct {
	fd   int    // O_PATH (or O_RDONLY) directory descriptor
	dev  uint64 // identity, for the opaque-whiteout bookkeeping and the
	ino  uint64 // end-of-apply metadata of directories
	mode uint32 // st_mode when resolved: setgid decides the group of new files
	ours bool   // created by this Apply, so no default ACL shapes new modes
}

// tree resolves directories beneath a root descriptor and caches the
// descriptors it resolved, keyed by the cleaned tar name.
//
// Invariant: a cached descriptor refers to the directory that the key names
// now. Entries can only change that by removing or replacing a directory or
// a symlink (which a key may have been resolved through); every such removal
// marks the cache stale, and a stale cache is dropped before the next entry.
// Within one entry the descriptors stay open, so an entry that removes
// something never closes a descriptor it still uses.
type tree struct {
	root  dirent
	cache map[string]*dirent
	// spill holds the descriptors of one entry's walk that did not fit
	// in the cache; they are closed before the next entry.
	spill []*dirent
	stale bool
	// mkdir is called for each directory created implicitly (a parent the
	// tar did not list), with the new directory's parent and name.
	mkdir func(parent *dirent, name string, d *dirent) error
}

// maxCachedDirs bounds the descriptors the cache holds (the open-files hard
// limit here is 20000 and a pull unpacks several layers at once).
const maxCachedDirs = 256

func openTree(dir string) (*tree, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	t := &tree{cache: make(map[string]*dirent)}
	t.root.fd = fd
	if err := t.root.stat(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return t, nil
}

func (d *dirent) stat() error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: procFd(d.fd), Err: err}
	}
	d.dev, d.ino, d.mode = st.Dev, st.Ino, st.Mode
	return nil
}

func (t *tree) close() {
	t.begin()
	t.flush()
	unix.Close(t.root.fd)
}

// flush closes every cached descriptor.
func (t *tree) flush() {
	for k, d := range t.cache {
		unix.Close(d.fd)
		delete(t.cache, k)
	}
	t.stale = false
}

// begin is called before each entry: it drops a stale or overfull cache
// and the previous entry's spill.
func (t *tree) begin() {
	for _, d := range t.spill {
		unix.Close(d.fd)
	}
	t.spill = t.spill[:0]
	if t.stale || len(t.cache) >= maxCachedDirs {
		t.flush()
	}
}

// keep holds d until the next entry: in the cache under name while it has
// room (a deep name must not cost thousands of descriptors), else in the
// spill.
func (t *tree) keep(name string, d *dirent) {
	if len(t.cache) < maxCachedDirs {
		if old, ok := t.cache[name]; ok {
			t.spill = append(t.spill, old)
		}
		t.cache[name] = d
		return
	}
	t.spill = append(t.spill, d)
}

// dir returns the directory that the cleaned name p resolves to beneath the
// root. Symlinks on the way are followed, confined to the root. Missing
// directories are created when create is set, and reported as ENOENT
// otherwise.
func (t *tree) dir(p string, create bool) (*dirent, error) {
	if p == "." {
		return &t.root, nil
	}
	if d, ok := t.cache[p]; ok {
		return d, nil
	}
	// Start from the deepest cached ancestor.
	cur, i := &t.root, 0
	for q := p; ; {
		j := strings.LastIndexByte(q, '/')
		if j < 0 {
			break
		}
		q = q[:j]
		if d, ok := t.cache[q]; ok {
			cur, i = d, j+1
			break
		}
	}
	for i < len(p) {
		end := len(p)
		if j := strings.IndexByte(p[i:], '/'); j >= 0 {
			end = i + j
		}
		d, err := t.step(cur, p[i:end], p[:end], create)
		if err != nil {
			return nil, err
		}
		if prev := cur; len(t.cache) >= maxCachedDirs && len(t.spill) > 0 && t.spill[len(t.spill)-1] == prev {
			// A spilled step is needed no longer than the next one.
			unix.Close(prev.fd)
			t.spill = t.spill[:len(t.spill)-1]
		}
		t.keep(p[:end], d)
		cur, i = d, end+1
	}
	return cur, nil
}

// step resolves one component name in parent; prefix is the cleaned name
// of the component from the root.
func (t *tree) step(parent *dirent, name, prefix string, create bool) (*dirent, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := openat(parent.fd, name, flags, 0)
	ours := false
	switch {
	case err == nil:
	case err == unix.ENOENT && create:
		if err := unix.Mkdirat(parent.fd, name, 0o755); err != nil && err != unix.EEXIST {
			return nil, &os.PathError{Op: "mkdir", Path: prefix, Err: err}
		}
		if fd, err = openat(parent.fd, name, flags, 0); err != nil {
			return nil, &os.PathError{Op: "open", Path: prefix, Err: err}
		}
		ours = true
	case err == unix.ENOTDIR || err == unix.ELOOP:
		// A symlink (O_PATH|O_NOFOLLOW opens the link itself, which is
		// not a directory) or a non-directory. A symlink is followed
		// with the whole prefix resolved again in the root, so the kernel
		// confines every step of it, absolute targets and ".." included.
		var st unix.Stat_t
		if serr := unix.Fstatat(parent.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
			return nil, &os.PathError{Op: "lstat", Path: prefix, Err: serr}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return nil, &os.PathError{Op: "open", Path: prefix, Err: unix.ENOTDIR}
		}
		if fd, err = openInRoot(t.root.fd, prefix, unix.O_PATH|unix.O_DIRECTORY); err != nil {
			return nil, err
		}
	default:
		return nil, &os.PathError{Op: "open", Path: prefix, Err: err}
	}
	d := &dirent{fd: fd, ours: ours}
	if err := d.stat(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if ours && t.mkdir != nil {
		if err := t.mkdir(parent, name, d); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return d, nil
}

// openat retries EINTR.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openInRoot opens p beneath root with openat2(RESOLVE_IN_ROOT), so
// symlinks and ".." are resolved as if root were "/". It retries EINTR and
// EAGAIN (the kernel returns EAGAIN when a rename raced the lookup).
func openInRoot(root int, p string, flags uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(root, p, &how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 128 {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
		return fd, nil
	}
}

// procFd names a descriptor for the system calls that take only paths
// (chmod and utimensat of an O_PATH descriptor, xattrs of special files):
// the kernel resolves /proc/self/fd/N to exactly the inode N refers to.
func procFd(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// removeAll removes name in parent and, for a directory, everything in it,
// never following a symlink. A missing name is not an error. Removing a
// directory or a symlink marks the cache stale (a key may run through it).
func (t *tree) removeAll(parent int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		t.stale = true
		return removeTree(parent, name)
	case unix.S_IFLNK:
		t.stale = true
	}
	if err := unix.Unlinkat(parent, name, 0); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	return nil
}

// removeTree removes the directory name in parent with its content,
// descending through directory descriptors opened with O_NOFOLLOW.
func removeTree(parent int, name string) error {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := openat(parent, name, flags, 0)
	if err == unix.EACCES && makeWritable(parent, name) {
		fd, err = openat(parent, name, flags, 0)
	}
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// Read every name before removing any: removing while getdents walks
	// the directory may make it skip entries on some file systems.
	names, err := f.Readdirnames(-1)
	if err != nil {
		return &os.PathError{Op: "readdir", Path: name, Err: err}
	}
	for _, n := range names {
		err := unix.Unlinkat(fd, n, 0)
		if err == unix.EACCES && makeWritable(parent, name) {
			err = unix.Unlinkat(fd, n, 0)
		}
		switch err {
		case nil, unix.ENOENT:
		case unix.EISDIR:
			if err := removeTree(fd, n); err != nil {
				return err
			}
		default:
			return &os.PathError{Op: "unlink", Path: name + "/" + n, Err: err}
		}
	}
	if err := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

// makeWritable gives the owner full access to the directory name in parent,
// so a caller without CAP_DAC_OVERRIDE can empty a read-only directory of a
// tree it owns. fchmodat2 with AT_SYMLINK_NOFOLLOW never follows a symlink
// put in its place.
func makeWritable(parent int, name string) bool {
	return unix.Fchmodat(parent, name, 0o700, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// errnoIs reports whether err wraps one of the errnos.
func errnoIs(err error, errnos ...unix.Errno) bool {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
