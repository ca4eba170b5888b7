package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// richTree fills dir with every kind of file Apply and Tar handle; the
// privileged kinds only as root.
func richTree(t *testing.T, dir string) {
	t.Helper()
	root := os.Geteuid() == 0
	w := func(name, body string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(body), 0o600))
		must(t, os.Chmod(p, mode))
	}
	w("etc/hostname", "berth\n", 0o644)
	w("usr/bin/su", "#!/bin/sh\n", 0o755|os.ModeSetuid)
	w("usr/bin/wall", "#!/bin/sh\n", 0o755|os.ModeSetgid)
	w("big", string(bytes.Repeat([]byte("0123456789abcdef"), 300000)), 0o640)
	sparse := make([]byte, 1<<20)
	copy(sparse[600000:], "island")
	w("sparse", string(sparse), 0o644)
	w("empty", "", 0o000)
	must(t, os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	must(t, os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky))
	must(t, os.MkdirAll(filepath.Join(dir, "empty-dir/nested"), 0o700))
	must(t, os.Symlink("../usr/share/zoneinfo/UTC", filepath.Join(dir, "etc/localtime")))
	must(t, os.Symlink("/does/not/exist", filepath.Join(dir, "dangling")))
	must(t, os.Link(filepath.Join(dir, "usr/bin/su"), filepath.Join(dir, "usr/bin/su2")))
	must(t, os.Link(filepath.Join(dir, "usr/bin/su"), filepath.Join(dir, "etc/su3")))
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(t, unix.Setxattr(filepath.Join(dir, "etc/hostname"), "user.note", []byte("from the tree"), 0))
	must(t, unix.Setxattr(filepath.Join(dir, "tmp"), "user.dir", []byte("d"), 0))
	if root {
		must(t, unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(filepath.Join(dir, "loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
		must(t, os.Lchown(filepath.Join(dir, "etc/hostname"), 1000, 1001))
		must(t, os.Lchown(filepath.Join(dir, "etc/localtime"), 5, 6))
		must(t, os.Lchown(filepath.Join(dir, "tmp"), 0, 50))
		must(t, os.Chmod(filepath.Join(dir, "usr/bin/su"), 0o755|os.ModeSetuid)) // after the chown
		must(t, unix.Setxattr(filepath.Join(dir, "usr/bin/wall"), "security.capability",
			[]byte("\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 0))
		must(t, unix.Setxattr(filepath.Join(dir, "big"), "trusted.berth", []byte("t"), 0))
		must(t, unix.Lsetxattr(filepath.Join(dir, "dangling"), "trusted.link", []byte("l"), 0))
	}
	// Times last, children before parents, nanoseconds included.
	ts := []unix.Timespec{{Sec: 1500000000, Nsec: 1}, {Sec: 1600000000, Nsec: 987654321}}
	var paths []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func tarDir(t testing.TB, dir string, opts TarOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Tar(context.Background(), dir, &buf, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Tar then Apply reproduces the tree exactly, and Tar of the copy is the
// same bytes: nothing is lost either way.
func TestTarApplyRoundTrip(t *testing.T) {
	src, dst := tmpDir(t), tmpDir(t)
	richTree(t, src)
	first := tarDir(t, src, TarOptions{})
	if again := tarDir(t, src, TarOptions{}); !bytes.Equal(first, again) {
		t.Fatal("Tar is not deterministic")
	}
	st, err := apply(t, dst, first, applyOpts(WhiteoutOverlay))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size < 4800000 {
		t.Errorf("stats %+v", st)
	}
	want, got := treeOf(t, src), treeOf(t, dst)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s:\n got %s\nwant %s", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s appeared", name)
		}
	}
	if second := tarDir(t, dst, TarOptions{}); !bytes.Equal(first, second) {
		t.Error("Tar of the applied copy differs from the original tar")
	}
	if s := lstat(t, filepath.Join(dst, "sparse")); s.Blocks*512 > 64<<10 {
		t.Errorf("sparse takes %d bytes", s.Blocks*512)
	}
}

func readTar(t testing.TB, data []byte) []*tar.Header {
	t.Helper()
	var hdrs []*tar.Header
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
	}
}

func TestTarEntries(t *testing.T) {
	dir := tmpDir(t)
	richTree(t, dir)
	fixed := time.Unix(1234567890, 0)
	hdrs := readTar(t, tarDir(t, dir, TarOptions{ModTime: fixed}))
	var order []string
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		order = append(order, h.Name)
		byName[h.Name] = h
		if !h.ModTime.Equal(fixed) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uname %q gname %q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
	}
	// Depth first, each directory's children sorted, directories before
	// what is in them.
	wantPrefix := []string{"big", "dangling", "empty", "empty-dir/", "empty-dir/nested/", "etc/", "etc/hostname", "etc/localtime", "etc/su3", "fifo"}
	for i, w := range wantPrefix {
		if i >= len(order) || order[i] != w {
			t.Fatalf("order %q, want it to start with %q", order, wantPrefix)
		}
	}
	// etc/su3 comes first of the three links to one inode.
	if h := byName["usr/bin/su"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "etc/su3" {
		t.Errorf("usr/bin/su: %+v", h)
	}
	if h := byName["etc/su3"]; h.Typeflag != tar.TypeReg || h.Mode != 0o4755 || h.Size != 10 {
		t.Errorf("etc/su3: %+v", h)
	}
	if h := byName["etc/hostname"]; h.PAXRecords["SCHILY.xattr.user.note"] != "from the tree" {
		t.Errorf("etc/hostname xattrs: %v", h.PAXRecords)
	}
	if h := byName["tmp/"]; h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Errorf("tmp/: %+v", h)
	}
	if os.Geteuid() == 0 {
		if h := byName["null"]; h.Typeflag != tar.TypeChar || h.Devmajor != 1 || h.Devminor != 3 {
			t.Errorf("null: %+v", h)
		}
		if h := byName["etc/hostname"]; h.Uid != 1000 || h.Gid != 1001 {
			t.Errorf("etc/hostname owner %d:%d", h.Uid, h.Gid)
		}
	}
}

func TestTarIDMap(t *testing.T) {
	requireRoot(t)
	dir := tmpDir(t)
	must(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	must(t, os.Lchown(filepath.Join(dir, "f"), 101000, 100000))
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	hdrs := readTar(t, tarDir(t, dir, TarOptions{UIDMap: m, GIDMap: m}))
	if len(hdrs) != 1 || hdrs[0].Uid != 1000 || hdrs[0].Gid != 0 {
		t.Fatalf("headers %+v", hdrs)
	}
	must(t, os.Lchown(filepath.Join(dir, "f"), 0, 0))
	if err := Tar(context.Background(), dir, io.Discard, TarOptions{UIDMap: m, GIDMap: m}); err == nil {
		t.Error("a host id outside the mapping was archived")
	}
}

// An overlay upper directory becomes a layer with .wh. entries again, and
// that layer applied onto the lower gives the merged view.
func TestTarOverlayWhiteouts(t *testing.T) {
	requireRoot(t)
	upper := tmpDir(t)
	if _, err := apply(t, upper, upperLayer(t), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
		t.Fatal(err)
	}
	data := tarDir(t, upper, TarOptions{OverlayWhiteouts: true})
	var got []string
	for _, h := range readTar(t, data) {
		got = append(got, h.Name)
		if h.PAXRecords[paxXattr+overlayOpaque] != "" {
			t.Errorf("%s carries %s", h.Name, overlayOpaque)
		}
	}
	want := []string{".wh.gone", ".wh.gonedir", ".wh.never-existed", "nodir/", "nodir/.wh.x", "opq/", "opq/.wh..wh..opq", "opq/early", "opq/late", "plain/", "plain/new"}
	if !equal(got, want) {
		t.Errorf("entries\n%q\nwant\n%q", got, want)
	}
	dir := tmpDir(t)
	if _, err := apply(t, dir, lowerLayer(t), ApplyOptions{Whiteouts: WhiteoutApply}); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, dir, data, ApplyOptions{Whiteouts: WhiteoutApply}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !equal(got, append(mergedView[:0:0], "keep", "nodir", "opq", "opq/early", "opq/late", "plain", "plain/a", "plain/new")) {
		t.Errorf("applied: %q", got)
	}
	// Without the option the devices stay devices.
	for _, h := range readTar(t, tarDir(t, upper, TarOptions{})) {
		if h.Name == "gone" && h.Typeflag != tar.TypeChar {
			t.Errorf("gone: %+v", h)
		}
	}
}

// Tar never follows a symlink, not even one that points at a directory.
func TestTarSymlinkNotFollowed(t *testing.T) {
	outside, dir := tmpDir(t), tmpDir(t)
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600))
	must(t, os.Symlink(outside, filepath.Join(dir, "link")))
	hdrs := readTar(t, tarDir(t, dir, TarOptions{}))
	if len(hdrs) != 1 || hdrs[0].Typeflag != tar.TypeSymlink || hdrs[0].Linkname != outside {
		t.Fatalf("headers %+v", hdrs)
	}
}
