package images

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Verify checks the directory root (an unpacked image, a mounted snapshot,
// a container's root seen from the host) against e and returns every
// mismatch, joined; nil when root matches. It reads file contents and
// extended attributes, so it needs to run as root for Layered (private
// files, security.capability).
//
// A path whose parent is a symlink in root is reported rather than
// followed: Verify never looks outside root.
func (e Expect) Verify(root string) error {
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(e.Entries)) {
		if err := verifyEntry(root, p, e.Entries[p]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range e.Absent {
		if err := safeParents(root, p); err != nil {
			errs = append(errs, err)
			continue
		}
		_, err := os.Lstat(filepath.Join(root, p))
		if err == nil {
			errs = append(errs, fmt.Errorf("%s: exists, should be absent", p))
		} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(e.Listings)) {
		if err := safeParents(root, p+"/x"); err != nil {
			errs = append(errs, err)
			continue
		}
		des, err := os.ReadDir(filepath.Join(root, p))
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", p, err))
			continue
		}
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		if want := e.Listings[p]; !slices.Equal(names, want) {
			errs = append(errs, fmt.Errorf("%s lists %q, want %q", p, names, want))
		}
	}
	return errors.Join(errs...)
}

// safeParents checks that no directory above p in root is a symlink.
func safeParents(root, p string) error {
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		fi, err := os.Lstat(filepath.Join(root, parent))
		if err != nil {
			// The path below is then absent: its own check says so.
			return nil
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s: parent %s is a symlink", p, parent)
		}
	}
	return nil
}

func verifyEntry(root, p string, want Entry) error {
	if err := safeParents(root, p); err != nil {
		return err
	}
	path := filepath.Join(root, p)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	var diffs []string
	differ := func(what string, got, want any) {
		diffs = append(diffs, fmt.Sprintf("%s %v, want %v", what, got, want))
	}
	kind := kindOf(st.Mode)
	if kind != want.Kind {
		return fmt.Errorf("%s: a %s, want a %s", p, kind, want.Kind)
	}
	if mode := st.Mode & 0o7777; kind != KindSymlink && mode != want.Mode {
		differ("mode", fmt.Sprintf("%#o", mode), fmt.Sprintf("%#o", want.Mode))
	}
	if int(st.Uid) != want.UID || int(st.Gid) != want.GID {
		differ("owner", fmt.Sprintf("%d:%d", st.Uid, st.Gid), fmt.Sprintf("%d:%d", want.UID, want.GID))
	}
	switch kind {
	case KindFile:
		if want.Digest != "" || want.Size != 0 {
			if st.Size != want.Size {
				differ("size", st.Size, want.Size)
			} else if want.Digest != "" {
				if d, err := fileDigest(path); err != nil {
					diffs = append(diffs, err.Error())
				} else if d != want.Digest {
					differ("content", d, want.Digest)
				}
			}
		}
	case KindSymlink:
		target, err := os.Readlink(path)
		if err != nil {
			diffs = append(diffs, err.Error())
		} else if target != want.Target {
			differ("target", fmt.Sprintf("%q", target), fmt.Sprintf("%q", want.Target))
		}
	case KindChar, KindBlock:
		if unix.Major(st.Rdev) != want.Major || unix.Minor(st.Rdev) != want.Minor {
			differ("device", fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), fmt.Sprintf("%d:%d", want.Major, want.Minor))
		}
	}
	if kind != KindDir && !want.ModTime.IsZero() {
		if mt := time.Unix(st.Mtim.Unix()); !mt.Equal(want.ModTime) {
			differ("mtime", mt.UTC(), want.ModTime.UTC())
		}
	}
	if x, err := checkedXattrs(path); err != nil {
		diffs = append(diffs, err.Error())
	} else if !maps.Equal(x, want.Xattrs) && (len(x) > 0 || len(want.Xattrs) > 0) {
		differ("xattrs", quoteMap(x), quoteMap(want.Xattrs))
	}
	if want.LinkedTo != "" {
		var other unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, want.LinkedTo), &other); err != nil {
			diffs = append(diffs, fmt.Sprintf("hardlink partner %s: %v", want.LinkedTo, err))
		} else if other.Dev != st.Dev || other.Ino != st.Ino {
			diffs = append(diffs, fmt.Sprintf("not the same inode as %s", want.LinkedTo))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s: %s", p, strings.Join(diffs, "; "))
	}
	return nil
}

func kindOf(mode uint32) Kind {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return KindDir
	case unix.S_IFREG:
		return KindFile
	case unix.S_IFLNK:
		return KindSymlink
	case unix.S_IFCHR:
		return KindChar
	case unix.S_IFBLK:
		return KindBlock
	case unix.S_IFIFO:
		return KindFIFO
	}
	return Kind(fmt.Sprintf("type %#o", mode&unix.S_IFMT))
}

// fileDigest hashes a regular file without following a symlink to it.
func fileDigest(path string) (digest.Digest, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// checkedXattrs returns the user.* and security.capability extended
// attributes of path, not following a symlink.
func checkedXattrs(path string) (map[string]string, error) {
	names, err := listXattrs(path)
	if err != nil {
		return nil, err
	}
	x := map[string]string{}
	for _, n := range names {
		if !strings.HasPrefix(n, "user.") && n != "security.capability" {
			continue
		}
		v, err := getXattr(path, n)
		if err != nil {
			return nil, err
		}
		x[n] = v
	}
	return x, nil
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func getXattr(path, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		return string(buf[:n]), nil
	}
}

func quoteMap(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}
