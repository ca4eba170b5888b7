package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func apply(t testing.TB, dir string, data []byte, opts ApplyOptions) (ApplyStats, error) {
	t.Helper()
	return Apply(context.Background(), dir, bytes.NewReader(data), opts)
}

func TestApplyEntryTypes(t *testing.T) {
	dir := tmpDir(t)
	fifo := tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o620, ModTime: testTime}}
	ro := dirEnt("ro/", 0o555)
	data := mkTar(t,
		dirEnt("etc/", 0o755),
		reg("etc/hostname", "berth\n", 0o644),
		reg("bin/tool", "#!/bin/sh\n", 0o4755), // parent not listed: created 0755
		dirEnt("tmp/", 0o1777),
		dirEnt("shared/", 0o2775),
		reg("ro/file", "x", 0o400),
		ro, // listed after its child: its mode still wins, at the end
		symlinkEnt("etc/localtime", "/usr/share/zoneinfo/UTC"),
		hardlinkEnt("bin/tool2", "bin/tool"),
		fifo,
		reg("empty", "", 0o600),
	)
	st, err := apply(t, dir, data, applyOpts(WhiteoutOverlay))
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 11 || st.Size != int64(len("berth\n")+len("#!/bin/sh\n")+1) {
		t.Errorf("stats %+v", st)
	}
	if got := readFile(t, filepath.Join(dir, "etc/hostname")); got != "berth\n" {
		t.Errorf("etc/hostname = %q", got)
	}
	for name, want := range map[string]uint32{
		"etc":          unix.S_IFDIR | 0o755,
		"etc/hostname": unix.S_IFREG | 0o644,
		"bin":          unix.S_IFDIR | 0o755,
		"bin/tool":     unix.S_IFREG | 0o4755,
		"tmp":          unix.S_IFDIR | 0o1777,
		"shared":       unix.S_IFDIR | 0o2775,
		"ro":           unix.S_IFDIR | 0o555,
		"ro/file":      unix.S_IFREG | 0o400,
		"run/fifo":     unix.S_IFIFO | 0o620,
		"empty":        unix.S_IFREG | 0o600,
	} {
		if got := lstat(t, filepath.Join(dir, name)).Mode; got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
	l := lstat(t, filepath.Join(dir, "etc/localtime"))
	if l.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("etc/localtime is not a symlink")
	}
	if target, _ := os.Readlink(filepath.Join(dir, "etc/localtime")); target != "/usr/share/zoneinfo/UTC" {
		t.Errorf("symlink target %q", target)
	}
	a, b := lstat(t, filepath.Join(dir, "bin/tool")), lstat(t, filepath.Join(dir, "bin/tool2"))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("bin/tool2 is not a hardlink of bin/tool (inodes %d %d, nlink %d)", a.Ino, b.Ino, a.Nlink)
	}
	// Every listed entry has the header's mtime with nanoseconds, dirs
	// included although children were written into them afterwards.
	for _, name := range []string{"etc", "etc/hostname", "etc/localtime", "bin/tool", "tmp", "ro", "run/fifo"} {
		st := lstat(t, filepath.Join(dir, name))
		if st.Mtim.Sec != testTime.Unix() || st.Mtim.Nsec != int64(testTime.Nanosecond()) {
			t.Errorf("%s: mtime %d.%09d, want %d.%09d", name, st.Mtim.Sec, st.Mtim.Nsec, testTime.Unix(), testTime.Nanosecond())
		}
	}
}

func TestApplyOwnership(t *testing.T) {
	requireRoot(t)
	dir := tmpDir(t)
	f := reg("f", "x", 0o6755)
	f.hdr.Uid, f.hdr.Gid = 1000, 2000
	d := dirEnt("d/", 0o2750)
	d.hdr.Uid, d.hdr.Gid = 33, 44
	s := symlinkEnt("d/s", "f")
	s.hdr.Uid, s.hdr.Gid = 5, 6
	c := charEnt("null", 1, 3)
	c.hdr.Uid, c.hdr.Gid = 7, 8
	inner := reg("d/inner", "y", 0o644) // root-owned in a setgid directory of group 44
	if _, err := apply(t, dir, mkTar(t, f, d, s, c, inner), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][3]uint32{
		"f":       {1000, 2000, unix.S_IFREG | 0o6755}, // setuid survives the chown
		"d":       {33, 44, unix.S_IFDIR | 0o2750},
		"d/s":     {5, 6, unix.S_IFLNK | 0o777},
		"null":    {7, 8, unix.S_IFCHR | 0o666},
		"d/inner": {0, 0, unix.S_IFREG | 0o644}, // the header's group, not the setgid parent's
	} {
		st := lstat(t, filepath.Join(dir, name))
		if st.Uid != want[0] || st.Gid != want[1] || st.Mode != want[2] {
			t.Errorf("%s: %d:%d mode %o, want %d:%d mode %o", name, st.Uid, st.Gid, st.Mode, want[0], want[1], want[2])
		}
	}
	if st := lstat(t, filepath.Join(dir, "null")); unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("null is %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
}

func TestApplyIDMap(t *testing.T) {
	requireRoot(t)
	dir := tmpDir(t)
	f := reg("a/f", "x", 0o644)
	f.hdr.Uid, f.hdr.Gid = 1000, 0
	opts := ApplyOptions{
		UIDMap: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GIDMap: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
	}
	if _, err := apply(t, dir, mkTar(t, f), opts); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(dir, "a/f")); st.Uid != 101000 || st.Gid != 200000 {
		t.Errorf("a/f owned by %d:%d, want 101000:200000", st.Uid, st.Gid)
	}
	// The implied parent belongs to the container's root.
	if st := lstat(t, filepath.Join(dir, "a")); st.Uid != 100000 || st.Gid != 200000 {
		t.Errorf("a owned by %d:%d, want 100000:200000", st.Uid, st.Gid)
	}
	out := reg("g", "x", 0o644)
	out.hdr.Uid = 70000
	_, err := apply(t, tmpDir(t), mkTar(t, out), opts)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"g"`) {
		t.Errorf("an unmapped uid: %v", err)
	}
}

func TestApplyXattrs(t *testing.T) {
	dir := tmpDir(t)
	f := reg("f", "x", 0o644)
	f.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.comment":            "hello",
		"SCHILY.xattr.system.posix_acl_access": "\x02\x00\x00\x00", // ignored namespace
		"SCHILY.xattr.trusted.overlay.opaque":  "y",                // the overlay driver's, ignored
	}
	if os.Geteuid() == 0 {
		f.hdr.PAXRecords["SCHILY.xattr.trusted.berth"] = "t"
		// CAP_NET_BIND_SERVICE, v2 file capability.
		f.hdr.PAXRecords["SCHILY.xattr.security.capability"] = "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
		f.hdr.Uid = 1000
	}
	d := dirEnt("d/", 0o755)
	d.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.dir": "yes"}
	if _, err := apply(t, dir, mkTar(t, f, d), applyOpts(WhiteoutOverlay)); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("no user xattrs here: %v", err)
		}
		t.Fatal(err)
	}
	want := "user.comment=hello"
	if os.Geteuid() == 0 {
		want = "security.capability=\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00,trusted.berth=t,user.comment=hello"
	}
	if got := xattrSummary(filepath.Join(dir, "f")); got != want {
		t.Errorf("xattrs of f: %q, want %q", got, want)
	}
	if got := xattrSummary(filepath.Join(dir, "d")); got != "user.dir=yes" {
		t.Errorf("xattrs of d: %q", got)
	}
}

// An entry for an existing name replaces it as docker does.
func TestApplyReplace(t *testing.T) {
	dir := tmpDir(t)
	first := mkTar(t,
		reg("file", "old", 0o644),
		symlinkEnt("link", "file"),
		dirEnt("dir/", 0o755), reg("dir/child", "c", 0o644),
		dirEnt("merge/", 0o700), reg("merge/lower", "l", 0o644),
		reg("tofifo", "x", 0o644),
		symlinkEnt("dirlink", "dir"),
	)
	if _, err := apply(t, dir, first, applyOpts(WhiteoutApply)); err != nil {
		t.Fatal(err)
	}
	second := mkTar(t,
		reg("file", "new", 0o600),         // file over file
		reg("link", "not through", 0o644), // file over symlink: the symlink goes
		reg("dir", "was a dir", 0o644),    // non-dir over dir: the dir goes
		dirEnt("merge/", 0o755),           // dir over dir: merged, metadata updated
		reg("merge/upper", "u", 0o644),    //
		symlinkEnt("tofifo", "file"),      // symlink over file
		dirEnt("dirlink/", 0o750),         // dir over symlink: not followed
		reg("dirlink/inside", "i", 0o644), //
		hardlinkEnt("file2", "file"),      //
		hardlinkEnt("file2", "file"),      // the same link again: kept
	)
	if _, err := apply(t, dir, second, applyOpts(WhiteoutApply)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"file": "new", "link": "not through", "dir": "was a dir", "merge/lower": "l", "merge/upper": "u", "dirlink/inside": "i", "file2": "new"} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if st := lstat(t, filepath.Join(dir, "merge")); st.Mode != unix.S_IFDIR|0o755 {
		t.Errorf("merge: mode %o", st.Mode)
	}
	if st := lstat(t, filepath.Join(dir, "dirlink")); st.Mode != unix.S_IFDIR|0o750 {
		t.Errorf("dirlink: mode %o", st.Mode)
	}
	if _, err := os.Lstat(filepath.Join(dir, "dir/inside")); err == nil {
		t.Errorf("dirlink/inside went through the old symlink: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "tofifo")); l != "file" {
		t.Errorf("tofifo -> %q", l)
	}
}

func TestApplySparse(t *testing.T) {
	dir := tmpDir(t)
	body := make([]byte, 8<<20)
	copy(body, "head")
	copy(body[len(body)-4:], "tail")
	if _, err := apply(t, dir, mkTar(t, reg("big", string(body), 0o644)), applyOpts(WhiteoutOverlay)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "big"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("content differs (%d bytes, %v)", len(got), err)
	}
	st := lstat(t, filepath.Join(dir, "big"))
	if st.Blocks*512 > 64<<10 {
		t.Errorf("8 MiB of mostly zeros takes %d bytes on disk: holes were written", st.Blocks*512)
	}
}

// GNU tar's sparse entries (old GNU and PAX 1.0) stay sparse.
func TestApplyGNUSparse(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	src := tmpDir(t)
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("start"), 0)
	f.WriteAt([]byte("end"), 64<<20)
	f.Close()
	for _, format := range []string{"gnu", "pax"} {
		t.Run(format, func(t *testing.T) {
			out, err := exec.Command("tar", "--sparse", "--format="+format, "-C", src, "-cf", "-", "sparse").Output()
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > 1<<20 {
				t.Fatalf("tar wrote %d bytes: not a sparse entry", len(out))
			}
			dir := tmpDir(t)
			st, err := apply(t, dir, out, applyOpts(WhiteoutOverlay))
			if err != nil {
				t.Fatal(err)
			}
			if st.Size != 64<<20+3 {
				t.Errorf("size %d", st.Size)
			}
			fst := lstat(t, filepath.Join(dir, "sparse"))
			if fst.Size != 64<<20+3 || fst.Blocks*512 > 64<<10 {
				t.Errorf("size %d, %d bytes on disk", fst.Size, fst.Blocks*512)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "sparse"))
			if string(b[:5]) != "start" || string(b[len(b)-3:]) != "end" {
				t.Errorf("content wrong")
			}
		})
	}
}

func TestApplyCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, tmpDir(t), bytes.NewReader(mkTar(t, reg("f", "x", 0o644))), applyOpts(WhiteoutOverlay))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
}

func TestApplyErrorsNameTheEntry(t *testing.T) {
	dir := tmpDir(t)
	data := mkTar(t, reg("ok", "x", 0o644), reg("ok/child", "y", 0o644))
	_, err := apply(t, dir, data, applyOpts(WhiteoutOverlay))
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Index != 1 || ee.Name != "ok/child" || !errors.Is(err, unix.ENOTDIR) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), `"ok/child"`) {
		t.Errorf("error does not name the entry: %v", err)
	}
	// A truncated tar fails with the count of entries read.
	trunc := mkTar(t, reg("a", strings.Repeat("x", 5000), 0o644))
	if _, err := apply(t, tmpDir(t), trunc[:2000], applyOpts(WhiteoutOverlay)); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("truncated content: %v", err)
	}
}

func TestApplyUnknownWhiteoutFormat(t *testing.T) {
	if _, err := apply(t, tmpDir(t), mkTar(t), ApplyOptions{Whiteouts: 9}); err == nil {
		t.Error("accepted whiteout format 9")
	}
}

// Apply reads its input to the end, so a verifying reader beneath sees
// every byte.
func TestApplyDrains(t *testing.T) {
	data := append(mkTar(t, reg("f", "x", 0o644)), make([]byte, 100<<10)...)
	r := bytes.NewReader(data)
	if _, err := Apply(context.Background(), tmpDir(t), r, applyOpts(WhiteoutOverlay)); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread", r.Len())
	}
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// A deep name costs a bounded number of descriptors, and Apply closes all
// it opened, on success and on error.
func TestApplyDescriptors(t *testing.T) {
	deep := strings.Repeat("d/", 1500)
	var peak int
	layer := mkTar(t, reg(deep+"f", "x", 0o644), hardlinkEnt(deep+"g", deep+"f"), reg("top", "y", 0o644),
		reg(deep+".wh.f", "", 0), dirEnt("d/", 0o755))
	before := openFds(t)
	dir := tmpDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if n := openFds(t); n > peak {
				peak = n
			}
		}
	}()
	if _, err := apply(t, dir, layer, applyOpts(WhiteoutApply)); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, dir, mkTar(t, reg(deep+"g/x", "", 0o644)), applyOpts(WhiteoutApply)); err == nil {
		t.Fatal("a file beneath a file was accepted")
	}
	cancel()
	<-done
	if after := openFds(t); after != before {
		t.Errorf("%d descriptors open before Apply, %d after", before, after)
	}
	if peak-before > 2*maxCachedDirs+64 {
		t.Errorf("a 1500-deep name held %d descriptors at once", peak-before)
	}
	if got := readFile(t, filepath.Join(dir, "top")); got != "y" {
		t.Errorf("top = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, deep+"g")); err != nil {
		t.Errorf("the deep hardlink: %v", err)
	}
}
