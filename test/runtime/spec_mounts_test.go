package runtime_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// TestSpecPivotRoot: / is the bundle's rootfs and nothing of the host's
// mount tree is left in the container's.
func TestSpecPivotRoot(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	const marker = "berth pivot marker\n"
	if err := os.WriteFile(filepath.Join(b.Rootfs, "pivot-marker"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "outside-marker"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := specCat(t, r, b, specID(t, "pivot-cat"), "/pivot-marker"); got != marker {
		t.Errorf("/pivot-marker in the container: %q, want %q", got, marker)
	}
	// The bundle directory, outside the rootfs, is not reachable by its
	// host path nor by climbing out of /.
	for _, p := range []string{filepath.Join(b.Dir, "outside-marker"), "/../outside-marker", "/../../../../outside-marker"} {
		if out, _, err := specRun(t, r, b, specID(t, "pivot-out"), "/bin/probe", "cat", p); err == nil {
			t.Errorf("the container read %s: %q", p, out)
		}
	}

	rep := r.RunProbe(b, specID(t, "pivot-report"))
	hostOnly := []string{"/work", "/run", "/var", "/mnt", filepath.Dir(b.Dir)}
	for _, m := range rep.Mounts {
		for _, h := range hostOnly {
			if m.MountPoint == h || strings.HasPrefix(m.MountPoint, h+"/") {
				t.Errorf("host mount %s (%s) visible in the container", m.MountPoint, m.FSType)
			}
		}
	}
	root, ok := rep.Mount("/")
	if !ok {
		t.Fatalf("no / in the container's mountinfo")
	}
	var hostRoot unix.Stat_t
	if err := unix.Stat(b.Rootfs, &hostRoot); err != nil {
		t.Fatal(err)
	}
	if uint32(root.Major) != unix.Major(hostRoot.Dev) || uint32(root.Minor) != unix.Minor(hostRoot.Dev) {
		t.Errorf("/ is device %d:%d, want the rootfs's %d:%d", root.Major, root.Minor, unix.Major(hostRoot.Dev), unix.Minor(hostRoot.Dev))
	}
	// The root directory lists what the rootfs holds, no more.
	ls := strings.Fields(specMustRun(t, r, b, specID(t, "pivot-ls"), "/bin/probe", "ls", "/"))
	ents, err := os.ReadDir(b.Rootfs)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range ents {
		want = append(want, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(ls, want) {
		t.Errorf("ls / in the container: %q, want the rootfs's %q", ls, want)
	}
}

// TestSpecDefaultMounts: the default spec's mounts are there with the
// options it gives.
func TestSpecDefaultMounts(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	rep := r.RunProbe(b, specID(t, "mounts-default"))
	type want struct {
		fstype string
		opts   []string
		super  []string
	}
	wants := map[string]want{
		"/proc":          {"proc", nil, nil},
		"/dev":           {"tmpfs", []string{"nosuid"}, []string{"mode=755", "size=65536k"}},
		"/dev/pts":       {"devpts", []string{"nosuid", "noexec"}, []string{"mode=620", "ptmxmode=666", "gid=5"}},
		"/dev/shm":       {"tmpfs", []string{"nosuid", "noexec", "nodev"}, []string{"size=65536k"}},
		"/dev/mqueue":    {"mqueue", []string{"nosuid", "noexec", "nodev"}, nil},
		"/sys":           {"sysfs", []string{"ro", "nosuid", "noexec", "nodev"}, nil},
		"/sys/fs/cgroup": {"", []string{"ro", "nosuid", "noexec", "nodev"}, nil},
	}
	for path, w := range wants {
		m, ok := rep.Mount(path)
		if !ok {
			t.Errorf("%s: not mounted", path)
			continue
		}
		if w.fstype != "" && m.FSType != w.fstype {
			t.Errorf("%s: type %s, want %s", path, m.FSType, w.fstype)
		}
		for _, o := range w.opts {
			if !m.HasOption(o) {
				t.Errorf("%s: options %v, want %s", path, m.Options, o)
			}
		}
		for _, o := range w.super {
			if !slices.Contains(m.SuperOptions, o) {
				t.Errorf("%s: super options %v, want %s", path, m.SuperOptions, o)
			}
		}
	}
	if m, ok := rep.Mount("/sys/fs/cgroup"); ok && m.FSType != "cgroup2" && m.FSType != "tmpfs" {
		t.Errorf("/sys/fs/cgroup: type %s, want cgroup2 or a tmpfs of v1 hierarchies", m.FSType)
	}
	// Every cgroup hierarchy is read-only too (CVE-2022-0492).
	n := 0
	for _, m := range rep.Mounts {
		if strings.HasPrefix(m.MountPoint, "/sys/fs/cgroup/") {
			n++
			if !m.HasOption("ro") {
				t.Errorf("cgroup hierarchy %s (%s) is writable: %v", m.MountPoint, m.FSType, m.Options)
			}
		}
	}
	t.Logf("%d cgroup hierarchies below /sys/fs/cgroup", n)
	if m, ok := rep.Mount("/"); !ok || m.HasOption("ro") {
		t.Errorf("/ is %+v, want a writable root (root.readonly is false)", m)
	}
}

// specHostMount mounts a tmpfs at dir on the host, unmounted when the test
// ends.
func specHostMount(t *testing.T, dir, data string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, data); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// TestSpecBindMounts: bind mounts of a file and of a directory, read-only
// or not, with nosuid, nodev and noexec doing what they say.
func TestSpecBindMounts(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), []byte("bound directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An executable and a device node, for noexec and nodev.
	probe := filepath.Join(fixture.Rootfs(t), "bin", "probe")
	if err := os.WriteFile(filepath.Join(src, "probe-copy"), specReadFile(t, probe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(src, "null-copy"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("bound file\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	b := fixture.Bundle(t)
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/mnt/rw", Type: "bind", Source: src, Options: []string{"rbind"}},
		specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/mnt/locked", Type: "bind", Source: src, Options: []string{"bind", "nosuid", "nodev", "noexec"}},
		specs.Mount{Destination: "/etc/bound-file", Type: "bind", Source: file, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/new/dir/bound-file", Source: file, Options: []string{"bind"}},
	)
	b.Save(t)

	rep := r.RunProbe(b, specID(t, "bind-report"))
	checks := map[string]struct{ has, lacks []string }{
		"/mnt/rw":             {nil, []string{"ro", "noexec", "nodev"}},
		"/mnt/ro":             {[]string{"ro"}, nil},
		"/mnt/locked":         {[]string{"nosuid", "nodev", "noexec"}, []string{"ro"}},
		"/etc/bound-file":     {[]string{"ro"}, nil},
		"/new/dir/bound-file": {nil, []string{"ro"}},
	}
	for path, c := range checks {
		m, ok := rep.Mount(path)
		if !ok {
			t.Errorf("%s: not mounted", path)
			continue
		}
		for _, o := range c.has {
			if !m.HasOption(o) {
				t.Errorf("%s: options %v, want %s", path, m.Options, o)
			}
		}
		for _, o := range c.lacks {
			if m.HasOption(o) {
				t.Errorf("%s: options %v, want no %s", path, m.Options, o)
			}
		}
	}

	if got := specCat(t, r, b, specID(t, "bind-cat-dir"), "/mnt/ro/data"); got != "bound directory\n" {
		t.Errorf("/mnt/ro/data: %q", got)
	}
	if got := specCat(t, r, b, specID(t, "bind-cat-file"), "/etc/bound-file"); got != "bound file\n" {
		t.Errorf("/etc/bound-file: %q", got)
	}
	if got := specCat(t, r, b, specID(t, "bind-cat-newfile"), "/new/dir/bound-file"); got != "bound file\n" {
		t.Errorf("/new/dir/bound-file: %q", got)
	}
	for _, p := range []string{"/mnt/ro/new", "/etc/bound-file"} {
		if w := specProbeWord(t, r, b, specID(t, "bind-write-ro"), "write", p, "x"); !strings.Contains(w, "read-only file system") {
			t.Errorf("write %s: %q, want a read-only file system error", p, w)
		}
	}
	if w := specProbeWord(t, r, b, specID(t, "bind-write-rw"), "write", "/mnt/rw/written", "from the container"); w != "ok" {
		t.Errorf("write /mnt/rw/written: %q", w)
	} else if got, err := os.ReadFile(filepath.Join(src, "written")); err != nil || string(got) != "from the container" {
		t.Errorf("the host sees %q (%v) in the bound directory", got, err)
	}
	if _, err := os.Stat(filepath.Join(src, "new")); err == nil {
		t.Errorf("a write through the read-only bind reached the host")
	}

	// noexec and nodev act; without them the same files work.
	if _, _, err := specRun(t, r, b, specID(t, "bind-exec"), "/mnt/rw/probe-copy", "exit", "0"); err != nil {
		t.Errorf("executing from a bind mount without noexec: %v", err)
	}
	if out, _, err := specRun(t, r, b, specID(t, "bind-noexec"), "/mnt/locked/probe-copy", "exit", "0"); err == nil {
		t.Errorf("executed a program from a noexec bind mount: %q", out)
	}
	if w := specProbeWord(t, r, b, specID(t, "bind-dev"), "open", "/mnt/rw/null-copy", "r"); w != "ok" {
		t.Errorf("open a device node on a bind mount without nodev: %s", w)
	}
	if w := specProbeWord(t, r, b, specID(t, "bind-nodev"), "open", "/mnt/locked/null-copy", "r"); w != "EACCES" {
		t.Errorf("open a device node on a nodev bind mount: %s, want EACCES", w)
	}
}

// TestSpecBindRecursive: "bind" takes the directory alone, "rbind" the
// mounts beneath it too.
func TestSpecBindRecursive(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	tree := t.TempDir()
	sub := filepath.Join(tree, "sub")
	specHostMount(t, sub, "size=1m")
	if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("sub-mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := fixture.Bundle(t)
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/mnt/bind", Type: "bind", Source: tree, Options: []string{"bind"}},
		specs.Mount{Destination: "/mnt/rbind", Type: "bind", Source: tree, Options: []string{"rbind", "ro"}},
	)
	rep := r.RunProbe(b, specID(t, "rbind-report"))
	if _, ok := rep.Mount("/mnt/bind/sub"); ok {
		t.Errorf("bind (not rbind) carried the sub-mount along")
	}
	if m, ok := rep.Mount("/mnt/rbind/sub"); !ok {
		t.Errorf("rbind left the sub-mount behind")
	} else if m.FSType != "tmpfs" {
		t.Errorf("/mnt/rbind/sub is %s, want the tmpfs", m.FSType)
	}
	if got := specCat(t, r, b, specID(t, "rbind-cat"), "/mnt/rbind/sub/marker"); got != "sub-mount\n" {
		t.Errorf("/mnt/rbind/sub/marker: %q", got)
	}
	if out, _, err := specRun(t, r, b, specID(t, "bind-cat"), "/bin/probe", "cat", "/mnt/bind/sub/marker"); err == nil {
		t.Errorf("bind showed the sub-mount's file: %q", out)
	}
}

// TestSpecBindPropagation: a bind of a shared host mount receives mounts
// made on the host after the container was created unless it is private;
// "shared" makes it a peer group of its own.
func TestSpecBindPropagation(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	src := filepath.Join(t.TempDir(), "shared")
	specHostMount(t, src, "size=1m")
	if err := unix.Mount("", src, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	b := fixture.Bundle(t)
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/mnt/slave", Type: "bind", Source: src, Options: []string{"rbind", "rslave"}},
		specs.Mount{Destination: "/mnt/private", Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}},
		specs.Mount{Destination: "/mnt/shared", Type: "bind", Source: src, Options: []string{"rbind", "rshared"}},
	)
	b.Spec.Process.Args = []string{"/bin/probe", "report"}
	c := specCreate(t, r, b, specID(t, "propagation"), nil)
	// A mount on the host after the container's mounts were made.
	specHostMount(t, filepath.Join(src, "late"), "size=1m")
	specStartWait(t, r, c)
	stdout, stderr := c.output(t)
	rep := specParseReport(t, stdout, stderr)

	prop := func(path string) []string {
		m, ok := rep.Mount(path)
		if !ok {
			t.Errorf("%s: not mounted", path)
		}
		return m.Propagation
	}
	has := func(props []string, prefix string) bool {
		return slices.ContainsFunc(props, func(p string) bool { return strings.HasPrefix(p, prefix) })
	}
	if p := prop("/mnt/slave"); !has(p, "master:") || has(p, "shared:") {
		t.Errorf("/mnt/slave propagation %q, want master:N only", p)
	}
	if p := prop("/mnt/private"); len(p) != 0 {
		t.Errorf("/mnt/private propagation %q, want none", p)
	}
	if p := prop("/mnt/shared"); !has(p, "shared:") {
		t.Errorf("/mnt/shared propagation %q, want shared:N", p)
	}
	if _, ok := rep.Mount("/mnt/slave/late"); !ok {
		t.Errorf("rslave bind did not receive the host's later mount")
	}
	if _, ok := rep.Mount("/mnt/private/late"); ok {
		t.Errorf("rprivate bind received the host's later mount")
	}
	// Nothing the container has comes back to the host: its mounts are not
	// in the host's table.
	for mp := range specHostMounts(t) {
		if strings.HasSuffix(mp, "/mnt/slave") || strings.HasSuffix(mp, "/mnt/shared") {
			t.Errorf("container mount %s propagated to the host", mp)
		}
	}
}

// TestSpecTmpfsOptions: a tmpfs mount takes size, mode and ownership from
// its options.
func TestSpecTmpfsOptions(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs",
		Options: []string{"nosuid", "nodev", "noexec", "size=1m", "mode=1770", "uid=1000", "gid=50"}})
	rep := r.RunProbe(b, specID(t, "tmpfs-report"))
	m, ok := rep.Mount("/scratch")
	if !ok {
		t.Fatalf("/scratch not mounted")
	}
	if m.FSType != "tmpfs" {
		t.Errorf("/scratch type %s, want tmpfs", m.FSType)
	}
	for _, o := range []string{"nosuid", "nodev", "noexec"} {
		if !m.HasOption(o) {
			t.Errorf("/scratch options %v, want %s", m.Options, o)
		}
	}
	for _, o := range []string{"size=1024k", "mode=1770", "uid=1000", "gid=50"} {
		if !slices.Contains(m.SuperOptions, o) {
			t.Errorf("/scratch super options %v, want %s", m.SuperOptions, o)
		}
	}
	st := specStat(t, r, b, specID(t, "tmpfs-stat"), "/scratch")["/scratch"]
	if st.Lstat.Type != "dir" || st.Lstat.Perm != "1770" || st.Lstat.UID != 1000 || st.Lstat.GID != 50 {
		t.Errorf("/scratch: %+v, want a dir 1770 owned by 1000:50", st.Lstat)
	}
}

// TestSpecReadonlyRoot: root.readonly makes / refuse writes with EROFS
// while the mounts on it stay as they are.
func TestSpecReadonlyRoot(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Root.Readonly = true
	for _, p := range []string{"/newfile", "/tmp/newfile", "/etc/passwd"} {
		w := specProbeWord(t, r, b, specID(t, "roroot-write"), "write", p, "x")
		if !strings.Contains(w, "read-only file system") {
			t.Errorf("write %s on a read-only root: %q, want EROFS", p, w)
		}
	}
	if w := specProbeWord(t, r, b, specID(t, "roroot-shm"), "write", "/dev/shm/ok", "x"); w != "ok" {
		t.Errorf("write /dev/shm/ok: %q, want ok (a tmpfs of its own)", w)
	}
	rep := r.RunProbe(b, specID(t, "roroot-report"))
	if m, ok := rep.Mount("/"); !ok || !m.HasOption("ro") {
		t.Errorf("/ mount %+v, want ro", m)
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs, "newfile")); err == nil {
		t.Errorf("a write to the read-only root reached the rootfs")
	}
}

// TestSpecMountThroughSymlink: a destination that is, or goes through, a
// symlink in the image pointing outside the rootfs lands inside the
// rootfs, where the link would point if the rootfs were /
// (CVE-2021-30465 class).
func TestSpecMountThroughSymlink(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("bound through a symlink\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("file through a symlink\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Host paths a runtime following the links on the host would reach:
	// an existing empty directory (it would create "sub" in it) and a file
	// that does not exist (it would create it).
	escDir := filepath.Join("/tmp", specID(t, "berth-evil-dir"))
	escFile := filepath.Join("/tmp", specID(t, "berth-evil-file"))
	for _, p := range []string{escDir, escFile} {
		os.RemoveAll(p)
		t.Cleanup(func() { os.RemoveAll(p) })
	}
	if err := os.Mkdir(escDir, 0o755); err != nil {
		t.Fatal(err)
	}

	b := fixture.Bundle(t)
	links := map[string]string{
		"evil-abs":  "/etc",                          // absolute, to a directory
		"evil-rel":  "../../../../../../.." + escDir, // relative, climbing out
		"evil-file": escFile,                         // dangling, to a file
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(b.Rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/evil-abs", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/evil-rel/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
		specs.Mount{Destination: "/evil-file", Type: "bind", Source: file, Options: []string{"bind"}},
	)
	etcBefore := specDirSnapshot(t, "/etc")
	mountsBefore := specHostMounts(t)

	// Whatever the run does, nothing may land on the host.
	defer func() {
		if ents, err := os.ReadDir(escDir); err != nil || len(ents) != 0 {
			t.Errorf("host directory %s: %d entries (%v) after the run, want it empty", escDir, len(ents), err)
		}
		if _, err := os.Lstat(escFile); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("host file %s exists after the run (lstat: %v)", escFile, err)
		}
		if etcAfter := specDirSnapshot(t, "/etc"); !slices.Equal(etcBefore, etcAfter) {
			t.Errorf("the host's /etc changed: %d entries before, %d after", len(etcBefore), len(etcAfter))
		}
		mountsAfter := specHostMounts(t)
		for _, p := range []string{"/etc", escDir, escDir + "/sub", escFile} {
			if mountsAfter[p] != mountsBefore[p] {
				t.Errorf("host mounts on %s: %d before, %d after", p, mountsBefore[p], mountsAfter[p])
			}
		}
	}()

	rep := r.RunProbe(b, specID(t, "symlink-dest"))
	// In the container the mounts are at the resolved in-root places.
	for _, want := range []string{"/etc", escDir + "/sub", escFile} {
		if _, ok := rep.Mount(want); !ok {
			t.Errorf("no mount at %s, where the symlink resolves inside the rootfs", want)
		}
	}
	if got := specCat(t, r, b, specID(t, "symlink-dest-cat"), "/etc/marker"); got != "bound through a symlink\n" {
		t.Errorf("/etc/marker in the container: %q", got)
	}
	if got := specCat(t, r, b, specID(t, "symlink-dest-file"), escFile); got != "file through a symlink\n" {
		t.Errorf("%s in the container: %q", escFile, got)
	}
	// The targets were created inside the rootfs.
	if _, err := os.Lstat(filepath.Join(b.Rootfs, escDir, "sub")); err != nil {
		t.Errorf("%s/sub was not created inside the rootfs: %v", escDir, err)
	}
}

// specDirSnapshot lists a directory's names with their modification times.
func specDirSnapshot(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, e.Name()+"@"+info.ModTime().String())
	}
	return out
}

// TestSpecDevDefault: /dev has the default devices, with the right numbers
// and modes, the standard links, and none of the host's other devices.
func TestSpecDevDefault(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	devs := map[string][2]uint32{
		"/dev/null": {1, 3}, "/dev/zero": {1, 5}, "/dev/full": {1, 7},
		"/dev/random": {1, 8}, "/dev/urandom": {1, 9}, "/dev/tty": {5, 0},
	}
	links := map[string]string{
		"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	}
	var paths []string
	for p := range devs {
		paths = append(paths, p)
	}
	for p := range links {
		paths = append(paths, p)
	}
	stats := specStat(t, r, b, specID(t, "dev-stat"), append(paths, "/dev/pts/ptmx", "/dev/shm", "/dev/mqueue")...)
	for p, num := range devs {
		st, ok := stats[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		l := st.Lstat
		if l.Type != "char" || l.RdevMajor != num[0] || l.RdevMinor != num[1] || l.Perm != "0666" || l.UID != 0 || l.GID != 0 {
			t.Errorf("%s: %s %d:%d mode %s owner %d:%d, want char %d:%d mode 0666 owner 0:0",
				p, l.Type, l.RdevMajor, l.RdevMinor, l.Perm, l.UID, l.GID, num[0], num[1])
		}
	}
	for p, target := range links {
		st, ok := stats[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		if st.Lstat.Type != "symlink" || st.Lstat.Link != target {
			t.Errorf("%s: %s -> %q, want a symlink to %s", p, st.Lstat.Type, st.Lstat.Link, target)
		}
	}
	if st, ok := stats["/dev/pts/ptmx"]; !ok || st.Lstat.Type != "char" || st.Lstat.RdevMajor != 5 || st.Lstat.RdevMinor != 2 {
		t.Errorf("/dev/pts/ptmx: %+v, want char 5:2", st)
	}
	if st := stats["/dev/ptmx"]; st.Stat == nil || st.Stat.Type != "char" || st.Stat.RdevMajor != 5 || st.Stat.RdevMinor != 2 {
		t.Errorf("/dev/ptmx does not lead to the container's own ptmx: %+v", st)
	}
	if st := stats["/dev/shm"]; st.Lstat.Type != "dir" || st.Lstat.Perm != "1777" {
		t.Errorf("/dev/shm: %+v, want a 1777 directory", st.Lstat)
	}

	// None of the host's other devices.
	allowed := map[string]bool{"null": true, "zero": true, "full": true, "random": true, "urandom": true,
		"tty": true, "ptmx": true, "fd": true, "stdin": true, "stdout": true, "stderr": true, "pts": true,
		"shm": true, "mqueue": true, "console": true, "core": true}
	inside := strings.Fields(specMustRun(t, r, b, specID(t, "dev-ls"), "/bin/probe", "ls", "/dev"))
	for _, name := range inside {
		if !allowed[name] {
			t.Errorf("/dev/%s in the container: not a default device", name)
		}
	}
}

// TestSpecDevices: a device the spec lists is created with its type,
// numbers, mode and owner, in directories made for it.
func TestSpecDevices(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	mode := fs.FileMode(0o640)
	uid, gid := uint32(fixture.BerthUID), uint32(fixture.StaffGID)
	b.Spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid},
		{Path: "/dev/berth/deep/zero", Type: "c", Major: 1, Minor: 5},
		{Path: "/dev/myfifo", Type: "p"},
	}
	stats := specStat(t, r, b, specID(t, "devices-stat"), "/dev/mynull", "/dev/berth/deep/zero", "/dev/myfifo")
	check := func(p string, want report.FileInfo) {
		t.Helper()
		st, ok := stats[p]
		if !ok {
			t.Errorf("%s: not created", p)
			return
		}
		l := st.Lstat
		if l.Type != want.Type || l.RdevMajor != want.RdevMajor || l.RdevMinor != want.RdevMinor ||
			l.Perm != want.Perm || l.UID != want.UID || l.GID != want.GID {
			t.Errorf("%s: %s %d:%d mode %s owner %d:%d, want %s %d:%d mode %s owner %d:%d", p,
				l.Type, l.RdevMajor, l.RdevMinor, l.Perm, l.UID, l.GID,
				want.Type, want.RdevMajor, want.RdevMinor, want.Perm, want.UID, want.GID)
		}
	}
	check("/dev/mynull", report.FileInfo{Type: "char", RdevMajor: 1, RdevMinor: 3, Perm: "0640", UID: uid, GID: gid})
	check("/dev/berth/deep/zero", report.FileInfo{Type: "char", RdevMajor: 1, RdevMinor: 5, Perm: "0666"})
	check("/dev/myfifo", report.FileInfo{Type: "fifo", Perm: "0666"})
	// The default devices are still there.
	if st, ok := specStat(t, r, b, specID(t, "devices-null"), "/dev/null")["/dev/null"]; !ok || st.Lstat.Type != "char" {
		t.Errorf("/dev/null missing next to the spec's devices")
	}
}
