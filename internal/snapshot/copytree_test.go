package snapshot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fileCaps is a VFS_CAP_REVISION_2 security.capability value: effective,
// permitted CAP_NET_BIND_SERVICE.
var fileCaps = []byte{0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// TestCopyPreservesEverything: the copy snapshotter's Extract gives a
// child layer a faithful copy of its parent.
func TestCopyPreservesEverything(t *testing.T) {
	requireRoot(t)
	s := newTest(t, KindCopy)
	src, err := s.Extract(ctx, "x1", "")
	noErr(t, err)
	p := func(name string) string { return filepath.Join(src, name) }
	write(t, p("setuid"), "suid", 0o4755)
	noErr(t, os.Chown(p("setuid"), 1000, 1000))
	noErr(t, os.Chmod(p("setuid"), 0o4755)) // chown cleared it
	write(t, p("capped"), "cap", 0o755)
	noErr(t, unix.Setxattr(p("capped"), "security.capability", fileCaps, 0))
	noErr(t, os.Mkdir(p("dir"), 0o1777))
	noErr(t, os.Chmod(p("dir"), 0o1777))
	noErr(t, unix.Setxattr(p("dir"), "trusted.overlay.opaque", []byte("y"), 0))
	if err := unix.Setxattr(p("dir"), "user.note", []byte("hello"), 0); errors.Is(err, unix.EOPNOTSUPP) {
		// tmpfs holds user.* attributes from Linux 6.6 on only.
		t.Logf("user.* xattrs unsupported here, not checked: %v", err)
	} else {
		noErr(t, err)
	}
	write(t, p("dir/inner"), "inner", 0o600)
	noErr(t, os.Link(p("dir/inner"), p("outer-link")))
	noErr(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	noErr(t, unix.Mknod(p("blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
	noErr(t, unix.Mkfifo(p("fifo"), 0o600))
	noErr(t, os.Symlink("/etc/passwd", p("abs-link")))
	noErr(t, unix.Lchown(p("abs-link"), 7, 8))
	sparse, err := os.Create(p("sparse"))
	noErr(t, err)
	noErr(t, sparse.Truncate(1<<20))
	sparse.WriteAt([]byte("end"), 1<<20-3)
	sparse.Close()
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	for _, name := range []string{"setuid", "dir", "dir/inner", "null", ""} {
		noErr(t, os.Chtimes(p(name), old, old))
	}
	ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
	noErr(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("abs-link"), ts, unix.AT_SYMLINK_NOFOLLOW))
	noErr(t, os.Chmod(src, 0o750))
	noErr(t, os.Chtimes(src, old, old))
	noErr(t, s.Commit(ctx, "L1", "x1", nil))

	dst, err := s.Extract(ctx, "x2", "L1")
	noErr(t, err)
	diffTrees(t, "copy", tree(t, dst), tree(t, src))
	for _, name := range []string{"", "setuid", "capped", "dir", "dir/inner", "outer-link", "null", "blk", "fifo", "abs-link", "sparse"} {
		var a, b unix.Stat_t
		noErr(t, unix.Lstat(filepath.Join(src, name), &a))
		noErr(t, unix.Lstat(filepath.Join(dst, name), &b))
		if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev || a.Size != b.Size || a.Nlink != b.Nlink {
			t.Errorf("%q: copy mode %o uid %d gid %d rdev %d size %d nlink %d, want %o %d %d %d %d %d",
				name, b.Mode, b.Uid, b.Gid, b.Rdev, b.Size, b.Nlink, a.Mode, a.Uid, a.Gid, a.Rdev, a.Size, a.Nlink)
		}
		if a.Mtim != b.Mtim {
			t.Errorf("%q: mtime %v, want %v", name, b.Mtim, a.Mtim)
		}
		for _, x := range []string{"security.capability", "trusted.overlay.opaque", "user.note"} {
			va, ea := getx(filepath.Join(src, name), x)
			vb, eb := getx(filepath.Join(dst, name), x)
			if (ea == nil) != (eb == nil) || !bytes.Equal(va, vb) {
				t.Errorf("%q: xattr %s = %q (%v), want %q (%v)", name, x, vb, eb, va, ea)
			}
		}
	}
	var in, out unix.Stat_t
	noErr(t, unix.Lstat(filepath.Join(dst, "dir/inner"), &in))
	noErr(t, unix.Lstat(filepath.Join(dst, "outer-link"), &out))
	if in.Ino != out.Ino {
		t.Error("a hard link became two files in the copy")
	}
	// The copy is independent: writing it leaves the parent alone.
	write(t, filepath.Join(dst, "dir/inner"), "changed", 0o600)
	if b, _ := os.ReadFile(p("dir/inner")); string(b) != "inner" {
		t.Errorf("writing the copy changed the parent: %q", b)
	}
}

func getx(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
