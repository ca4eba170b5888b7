package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs privileges only root has (chown to
// other ids, mknod of devices, trusted xattrs, mounts).
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod, trusted xattrs or mount)")
	}
}

// tmpDir makes a directory on tmpfs (/dev/shm) when there is one: file
// creation on this machine's root disk is slow, and tmpfs has holes and
// every xattr namespace. It is removed when the test ends.
func tmpDir(t testing.TB) string {
	t.Helper()
	base := "/dev/shm"
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		return t.TempDir()
	}
	d, err := os.MkdirTemp(base, "berth-archive-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { forceRemove(d) })
	return d
}

// forceRemove removes a tree even where a test left directories without
// write permission.
func forceRemove(d string) {
	filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(d)
}

// applyOpts are the options a test's caller can use: the header's owners
// as root, the caller's otherwise.
func applyOpts(w WhiteoutFormat) ApplyOptions {
	return ApplyOptions{Whiteouts: w, KeepOwner: os.Geteuid() != 0}
}

// tarEntry is one entry for mkTar.
type tarEntry struct {
	hdr  tar.Header
	body string
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func reg(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func dirEnt(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: testTime}}
}

func symlinkEnt(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func hardlinkEnt(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: testTime}}
}

func charEnt(name string, major, minor int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

// mkTar writes the entries as a PAX tar.
func mkTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("write %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a directory holding the target root and, beside it, a
// directory of sentinels that no layer may touch.
type sandbox struct {
	dir, root, outside string
	before             map[string]string
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	d := tmpDir(t)
	s := &sandbox{dir: d, root: filepath.Join(d, "root"), outside: filepath.Join(d, "outside")}
	for _, p := range []string{s.root, s.outside, filepath.Join(s.outside, "sub")} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"secret", "sub/secret", "passwd"} {
		if err := os.WriteFile(filepath.Join(s.outside, f), []byte("sentinel "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// seal records the state of everything outside the root.
func (s *sandbox) seal(t testing.TB) {
	t.Helper()
	s.before = snapshotOutside(t, s)
}

// check fails the test if anything outside the root changed, appeared or
// vanished since seal.
func (s *sandbox) check(t testing.TB) {
	t.Helper()
	after := snapshotOutside(t, s)
	for p, v := range s.before {
		if after[p] != v {
			t.Errorf("outside the root, %s changed: %q -> %q", p, v, after[p])
		}
	}
	for p, v := range after {
		if _, ok := s.before[p]; !ok {
			t.Errorf("outside the root, %s appeared: %q", p, v)
		}
	}
}

func snapshotOutside(t testing.TB, s *sandbox) map[string]string {
	t.Helper()
	m := make(map[string]string)
	filepath.WalkDir(s.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			m[p] = "error " + err.Error()
			return nil
		}
		if p == s.root {
			return fs.SkipDir
		}
		m[p] = describe(p)
		return nil
	})
	return m
}

// describe is a one-line summary of a file: type, mode, owner, size,
// mtime, link target or content hash, xattrs.
func describe(p string) string {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "error " + err.Error()
	}
	s := fmt.Sprintf("mode=%o uid=%d gid=%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		b, _ := os.ReadFile(p)
		h := sha256.Sum256(b)
		s += fmt.Sprintf(" size=%d sha=%s", st.Size, hex.EncodeToString(h[:8]))
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		s += " -> " + l
	case unix.S_IFCHR, unix.S_IFBLK:
		s += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return s + " xattrs=" + xattrSummary(p)
}

func xattrSummary(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return ""
	}
	var kv []string
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" {
			continue
		}
		v := make([]byte, 4096)
		m, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			continue
		}
		kv = append(kv, k+"="+string(v[:m]))
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// tree summarises every file beneath root, by relative name, with the
// inode groups of hardlinked files.
func treeOf(t testing.TB, root string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	inodes := make(map[uint64]string)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		d := describe(p)
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
			if first, ok := inodes[st.Ino]; ok {
				d += " link=" + first
			} else {
				inodes[st.Ino] = rel
			}
		}
		m[rel] = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lstat(t testing.TB, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return &st
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
