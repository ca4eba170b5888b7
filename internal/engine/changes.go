package engine

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// Changes lists what a container changed in its root filesystem, as
// docker's GET /containers/{id}/changes (docker diff): added, changed
// and deleted paths, sorted. On overlay it reads the writable layer:
// an overlay whiteout is a deletion, a path the image has is a change,
// any other an addition. With the copy snapshotter it compares the
// container's tree with the image's. What docker keeps in its init
// layer is left out (initLayerPaths).
func (e *Engine) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	mounts, err := e.snaps.Mounts(ctx, c.id)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", c.id, err)
	}
	var changes []container.FilesystemChange
	overlay := false
	if len(mounts) == 1 && mounts[0].Type == "overlay" {
		var upper string
		var lowers []string
		for _, o := range mounts[0].Options {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "upperdir":
				upper = v
			case "lowerdir":
				lowers = strings.Split(v, ":")
			}
		}
		if upper != "" {
			overlay = true
			changes, err = overlayChanges(ctx, upper, lowers)
		}
	}
	if !overlay {
		changes, err = e.treeChanges(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	return hideInitLayer(changes), nil
}

// initLayerPaths are what docker keeps in a container's "init" layer,
// beneath the writable one, so that docker diff never shows them: the
// files the engine binds over (hostname, hosts, resolv.conf) and the
// mount points every container gets. berth has no init layer — the
// runtime makes the mount points it lacks in the writable layer — so
// Changes leaves them out instead.
var initLayerPaths = []string{
	"/.dockerenv", "/dev/console", "/dev/pts", "/dev/shm",
	"/etc/hostname", "/etc/hosts", "/etc/mtab", "/etc/resolv.conf",
	"/proc", "/sys",
}

// hideInitLayer drops initLayerPaths from a change list, and the
// directories above them that changed only for them (/etc, /dev). The
// result is never nil: an unchanged container lists none.
func hideInitLayer(changes []container.FilesystemChange) []container.FilesystemChange {
	out := []container.FilesystemChange{}
	var dropped []string
	for _, ch := range changes {
		if ch.Kind != container.ChangeDelete && slices.Contains(initLayerPaths, ch.Path) {
			dropped = append(dropped, ch.Path)
			continue
		}
		out = append(out, ch)
	}
	if len(dropped) == 0 {
		return out
	}
	// onlyFor: dir is above a dropped path and above nothing kept.
	onlyFor := func(dir string) bool {
		above := slices.ContainsFunc(dropped, func(p string) bool { return strings.HasPrefix(p, dir+"/") })
		return above && !slices.ContainsFunc(out, func(ch container.FilesystemChange) bool { return strings.HasPrefix(ch.Path, dir+"/") })
	}
	return slices.DeleteFunc(out, func(ch container.FilesystemChange) bool {
		return ch.Kind != container.ChangeDelete && onlyFor(ch.Path)
	})
}

// overlayChanges walks an overlay upper directory.
func overlayChanges(ctx context.Context, upper string, lowers []string) ([]container.FilesystemChange, error) {
	var lowerFDs []int
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: l, Err: err}
		}
		defer unix.Close(fd)
		lowerFDs = append(lowerFDs, fd)
	}
	var out []container.FilesystemChange
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel := strings.TrimPrefix(p, upper)
		if d.Type()&fs.ModeCharDevice != 0 {
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err == nil && st.Rdev == 0 {
				out = append(out, container.FilesystemChange{Kind: container.ChangeDelete, Path: rel})
				return nil
			}
		}
		kind := container.ChangeAdd
		if inLowers(lowerFDs, rel) {
			kind = container.ChangeModify
		}
		out = append(out, container.FilesystemChange{Kind: kind, Path: rel})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	slices.SortFunc(out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// inLowers tells whether rel exists in the merged lower layers: the
// topmost layer that has the name (or a whiteout of it, or of a parent)
// decides. No symlink is followed: a layer's symlink is a name, never a
// way out of its directory.
func inLowers(lowers []int, rel string) bool {
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	for _, fd := range lowers {
		found, whiteout := lookupLayer(fd, parts)
		if whiteout {
			return false
		}
		if found {
			return true
		}
	}
	return false
}

// lookupLayer looks rel up in one layer: found when the whole path is
// there, whiteout when the layer deletes it or a parent (or makes a
// parent opaque, which hides the lower ones).
func lookupLayer(dirfd int, parts []string) (found, whiteout bool) {
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, p, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, false
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return false, true
		}
		if i < len(parts)-1 {
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return false, false
			}
			if opaque(dirfd, p) {
				// The directory hides the layers below; this layer
				// alone decides.
				var cst unix.Stat_t
				rest := strings.Join(parts, "/")
				err := unix.Fstatat(dirfd, rest, &cst, unix.AT_SYMLINK_NOFOLLOW)
				here := err == nil && !(cst.Mode&unix.S_IFMT == unix.S_IFCHR && cst.Rdev == 0)
				return here, !here
			}
		}
	}
	return true, false
}

// opaque tells whether a directory carries overlay's opaque mark.
func opaque(dirfd int, p string) bool {
	fd, err := unix.Openat(dirfd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 4)
	n, err := unix.Fgetxattr(fd, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// treeChanges compares the container's tree with the image's (the copy
// snapshotter keeps whole trees), docker's naive diff: a path only in the
// container is added, only in the image deleted, in both with another
// type, mode, owner, size, mtime or link target changed.
func (e *Engine) treeChanges(ctx context.Context, c *ctr) ([]container.FilesystemChange, error) {
	mounts, err := e.snaps.Mounts(ctx, c.id)
	if err != nil || len(mounts) != 1 || mounts[0].Type != "bind" {
		return nil, fmt.Errorf("changes of %s: unexpected snapshot mounts", c.id)
	}
	upper := mounts[0].Source
	key := "diff-" + c.id + "-" + newID()[:8]
	c.mu.Lock()
	chain := c.rec.ChainID
	c.mu.Unlock()
	view, err := e.snaps.View(ctx, key, chain, nil)
	if err != nil {
		return nil, err
	}
	defer e.snaps.Remove(context.Background(), key)
	if len(view) != 1 || view[0].Type != "bind" {
		return nil, fmt.Errorf("changes of %s: unexpected image view", c.id)
	}
	lower := view[0].Source
	type meta struct {
		mode     fs.FileMode
		uid, gid uint32
		size     int64
		mtime    time.Time
		link     string
	}
	scan := func(root string) (map[string]meta, error) {
		out := map[string]meta{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == root {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m := meta{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
			if st, ok := fi.Sys().(*unix.Stat_t); ok {
				m.uid, m.gid = st.Uid, st.Gid
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				m.link, _ = os.Readlink(p)
			}
			if fi.IsDir() {
				m.size, m.mtime = 0, time.Time{} // a directory's own change shows in its children
			}
			out[strings.TrimPrefix(p, root)] = m
			return nil
		})
		return out, err
	}
	before, err := scan(lower)
	if err != nil {
		return nil, err
	}
	after, err := scan(upper)
	if err != nil {
		return nil, err
	}
	var out []container.FilesystemChange
	changedDirs := map[string]bool{}
	for p, m := range after {
		old, ok := before[p]
		switch {
		case !ok:
			out = append(out, container.FilesystemChange{Kind: container.ChangeAdd, Path: p})
		case old != m:
			out = append(out, container.FilesystemChange{Kind: container.ChangeModify, Path: p})
		default:
			continue
		}
		changedDirs[filepath.Dir(p)] = true
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, container.FilesystemChange{Kind: container.ChangeDelete, Path: p})
			changedDirs[filepath.Dir(p)] = true
		}
	}
	// A directory with a changed child is changed, as overlay reports it.
	for d := range changedDirs {
		for ; d != "/" && d != "."; d = filepath.Dir(d) {
			if _, ok := before[d]; ok && !slices.ContainsFunc(out, func(ch container.FilesystemChange) bool { return ch.Path == d }) {
				out = append(out, container.FilesystemChange{Kind: container.ChangeModify, Path: d})
			}
		}
	}
	slices.SortFunc(out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
	if out == nil {
		out = []container.FilesystemChange{}
	}
	return out, nil
}
