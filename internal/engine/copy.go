package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/archive"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// resolveFlags confine every lookup to the container's root: ".." stops
// at it, absolute symlinks start from it, /proc magic links are refused.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

func openat2(dirfd int, p string, flags uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveFlags}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, &how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 128 {
			continue
		}
		return fd, err
	}
}

// resolved is a container path opened in a view: the O_PATH descriptor
// of the path itself (a symlink stays a symlink unless the path asked to
// follow it) and its stat.
type resolved struct {
	file *os.File
	st   unix.Stat_t
	// name is the entry's name in docker's archive: the path's last
	// element, "." for "dir/." (the directory's content).
	name string
	// dir is the container path of the directory holding it.
	dir string
}

// resolve opens p in the view. The last element is followed only when p
// ends in "/" or "/." (docker's rule); every other symlink is followed
// inside the root.
func resolve(v *fsView, p string) (*resolved, error) {
	if strings.ContainsRune(p, 0) {
		return nil, invalidf("invalid path %q", p)
	}
	clean := path.Clean("/" + p)
	follow := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	name := path.Base(clean)
	if strings.HasSuffix(p, "/.") {
		name = "."
	}
	var fd int
	var err error
	rel := strings.TrimPrefix(clean, "/")
	switch {
	case rel == "":
		fd, err = openat2(int(v.Root.Fd()), ".", unix.O_PATH)
	case follow:
		// openat2 follows the last symlink too, still inside the root.
		fd, err = openat2(int(v.Root.Fd()), rel, unix.O_PATH)
	default:
		var parent int
		parent, err = openat2(int(v.Root.Fd()), "."+path.Dir(clean), unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			fd, err = unix.Openat(parent, path.Base(clean), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			unix.Close(parent)
		}
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, notFoundf("Could not find the file %s in container", p)
		}
		return nil, &os.PathError{Op: "open", Path: clean, Err: err}
	}
	r := &resolved{file: os.NewFile(uintptr(fd), clean), name: name, dir: path.Dir(clean)}
	if err := unix.Fstat(fd, &r.st); err != nil {
		r.file.Close()
		return nil, &os.PathError{Op: "fstat", Path: clean, Err: err}
	}
	return r, nil
}

// fileMode turns a stat mode into Go's FileMode, as docker's PathStat
// carries it.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// pathStat is docker's PathStat of a resolved path.
func (r *resolved) pathStat() container.PathStat {
	ps := container.PathStat{
		Name:  r.name,
		Size:  r.st.Size,
		Mode:  fileMode(r.st.Mode),
		Mtime: time.Unix(r.st.Mtim.Unix()).UTC(),
	}
	if r.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, unix.PathMax)
		if n, err := unix.Readlinkat(int(r.file.Fd()), "", buf); err == nil {
			target := string(buf[:n])
			if !path.IsAbs(target) {
				target = path.Join(r.dir, target)
			}
			ps.LinkTarget = path.Clean(target)
		}
	}
	return ps
}

// StatPath describes a path in a container, as docker's HEAD
// /containers/{id}/archive (X-Docker-Container-Path-Stat).
func (e *Engine) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	v, err := e.view(ctx, c)
	if err != nil {
		return container.PathStat{}, err
	}
	defer v.Close()
	r, err := resolve(v, p)
	if err != nil {
		return container.PathStat{}, err
	}
	defer r.file.Close()
	return r.pathStat(), nil
}

// CopyFrom archives a path of a container, as docker's GET
// /containers/{id}/archive: an uncompressed tar whose entries are named
// from the path's last element ("name", "name/...", or "./..." for
// "dir/."), with the container's volumes and binds seen where they are
// mounted. Nothing is followed out of the container's root.
func (e *Engine) CopyFrom(ctx context.Context, ref, p string) (io.ReadCloser, container.PathStat, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	v, err := e.view(ctx, c)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	r, err := resolve(v, p)
	if err != nil {
		v.Close()
		return nil, container.PathStat{}, err
	}
	stat := r.pathStat()
	pr, pw := io.Pipe()
	go func() {
		defer v.Close()
		defer r.file.Close()
		pw.CloseWithError(writeArchive(ctx, r, pw))
	}()
	e.emit(events.ActionArchivePath, c, map[string]string{"path": p})
	return pr, stat, nil
}

// writeArchive writes the tar of a resolved path.
func writeArchive(ctx context.Context, r *resolved, w io.Writer) error {
	tw := tar.NewWriter(w)
	hdr := &tar.Header{
		Name:    r.name,
		Mode:    int64(r.st.Mode & 0o7777),
		Uid:     int(r.st.Uid),
		Gid:     int(r.st.Gid),
		ModTime: time.Unix(r.st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch r.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := rebaseTar(ctx, fdPath(r.file), r.name, tw); err != nil {
			return err
		}
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = r.st.Size
		// Reopening the O_PATH descriptor through /proc/self/fd opens
		// exactly the inode resolved, never a path again.
		f, err := os.OpenFile(fdPath(r.file), os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, f, r.st.Size); err != nil {
			return fmt.Errorf("copy %s: %w", r.name, err)
		}
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(r.file.Fd()), "", buf)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if r.st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(r.st.Rdev)), int64(unix.Minor(r.st.Rdev))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	default:
		return invalidf("cannot archive %s: not a file, directory or link", r.name)
	}
	return tw.Close()
}

// rebaseTar writes the content of dir (archive.Tar's layer tar) into tw
// with every name (and hardlink target) under base.
func rebaseTar(ctx context.Context, dir, base string, tw *tar.Writer) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Tar(ctx, dir, pw, archive.TarOptions{})) }()
	defer pr.Close()
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		hdr.Name = base + "/" + hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = base + "/" + hdr.Linkname
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// CopyToOptions are docker's PUT /containers/{id}/archive parameters.
type CopyToOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives every entry the owner of the container's user
	// (docker cp -a).
	CopyUIDGID bool
}

// CopyTo extracts a tar into a directory of a container, as docker's PUT
// /containers/{id}/archive. The directory is resolved inside the
// container's root (its volumes and binds included); every entry is
// written beneath it by internal/archive, which follows no symlink out
// of it.
func (e *Engine) CopyTo(ctx context.Context, ref, p string, r io.Reader, opts CopyToOptions) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	var uid, gid = -1, -1
	if opts.CopyUIDGID {
		if uid, gid, err = e.containerUser(ctx, c); err != nil {
			return err
		}
	}
	v, err := e.view(ctx, c)
	if err != nil {
		return err
	}
	defer v.Close()
	dest, err := resolve(v, strings.TrimSuffix(p, "/")+"/")
	if err != nil {
		return err
	}
	defer dest.file.Close()
	if dest.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return invalidf("extraction point is not a directory")
	}
	if v.ReadOnly(path.Clean("/" + p)) {
		return invalidf("container rootfs is marked read-only")
	}
	in := r
	if opts.NoOverwriteDirNonDir || opts.CopyUIDGID {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(filterTar(r, pw, dest.file, opts.NoOverwriteDirNonDir, uid, gid)) }()
		defer pr.Close()
		in = pr
	}
	if _, err := archive.Apply(ctx, fdPath(dest.file), in, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone}); err != nil {
		var ee *archive.EntryError
		if errors.As(err, &ee) {
			return invalidf("extract to %s: %v", p, err)
		}
		return fmt.Errorf("extract to %s: %w", p, err)
	}
	e.emit(events.ActionExtractToDir, c, map[string]string{"path": p})
	return nil
}

// filterTar copies a tar, refusing entries that would replace a
// directory with a non-directory (or the reverse) below dest, and
// setting owners when uid >= 0.
func filterTar(r io.Reader, w io.Writer, dest *os.File, noOverwrite bool, uid, gid int) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if noOverwrite {
			name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
			if name != "" {
				fd, err := openat2(int(dest.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW)
				if err == nil {
					var st unix.Stat_t
					unix.Fstat(fd, &st)
					unix.Close(fd)
					existingDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
					if existingDir != (hdr.Typeflag == tar.TypeDir) {
						if existingDir {
							return invalidf("cannot overwrite directory %q with non-directory %q", "/"+name, hdr.Name)
						}
						return invalidf("cannot overwrite non-directory %q with directory %q", "/"+name, hdr.Name)
					}
				}
			}
		}
		if uid >= 0 {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = uid, gid, "", ""
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// containerUser is the uid and gid the container's process runs as.
func (e *Engine) containerUser(ctx context.Context, c *ctr) (int, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mountRootfs(ctx, e); err != nil {
		return 0, 0, err
	}
	spec, _, err := e.buildSpec(c, c.rec, true)
	if err != nil {
		return 0, 0, err
	}
	return int(spec.Process.User.UID), int(spec.Process.User.GID), nil
}

// Export writes a container's root filesystem (its own files and the
// image's, without volumes) as a tar, as docker's GET
// /containers/{id}/export.
func (e *Engine) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.mountRootfs(ctx, e); err != nil {
		c.mu.Unlock()
		return err
	}
	// A descriptor pins the mount: if the container exits meanwhile, its
	// unmount detaches the root and the export reads on.
	root, err := os.OpenFile(c.rootfs, unix.O_PATH|unix.O_DIRECTORY, 0)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := archive.Tar(ctx, fdPath(root), w, archive.TarOptions{}); err != nil {
		return fmt.Errorf("export %s: %w", c.id, err)
	}
	e.emit(events.ActionExport, c, nil)
	return nil
}
