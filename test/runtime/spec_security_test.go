package runtime_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// TestSpecMaskedPaths: masked files read as /dev/null, masked directories
// are empty and read-only, and a masked path that does not exist is no
// error.
func TestSpecMaskedPaths(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Linux.MaskedPaths = append(b.Spec.Linux.MaskedPaths, "/proc/berth-does-not-exist", "/sys/berth/nothing/here")

	var files, dirs []string
	for _, p := range b.Spec.Linux.MaskedPaths {
		st, err := os.Stat(p)
		switch {
		case err != nil:
		case st.IsDir():
			dirs = append(dirs, p)
		default:
			files = append(files, p)
		}
	}
	if len(files) == 0 || len(dirs) == 0 {
		t.Fatalf("set-up: of the masked paths the host has files %q and directories %q; want some of each", files, dirs)
	}

	stats := specStat(t, r, b, specID(t, "masked-stat"), append(slices.Clone(files), dirs...)...)
	for _, p := range files {
		st, ok := stats[p]
		if !ok || st.Stat == nil {
			t.Errorf("masked file %s: missing in the container", p)
			continue
		}
		if st.Stat.Type != "char" || st.Stat.RdevMajor != 1 || st.Stat.RdevMinor != 3 {
			t.Errorf("masked file %s: %s %d:%d, want the null device 1:3", p, st.Stat.Type, st.Stat.RdevMajor, st.Stat.RdevMinor)
		}
	}
	for _, p := range dirs {
		st, ok := stats[p]
		if !ok || st.Stat == nil || st.Stat.Type != "dir" {
			t.Errorf("masked directory %s: %+v, want a directory", p, st)
		}
	}

	// /proc/kcore is missing on some kernels; /proc/interrupts never is.
	for _, f := range []string{"/proc/kcore", "/proc/interrupts", "/proc/keys"} {
		if !slices.Contains(files, f) {
			continue
		}
		if out := specCat(t, r, b, specID(t, "masked-"+filepath.Base(f)), f); out != "" {
			t.Errorf("masked %s read %d bytes, want none", f, len(out))
		}
	}
	for _, d := range []string{"/sys/firmware", "/proc/acpi"} {
		if !slices.Contains(dirs, d) {
			continue
		}
		id := specID(t, "masked-ls-"+filepath.Base(d))
		if out := specMustRun(t, r, b, id, "/bin/probe", "ls", d); out != "" {
			t.Errorf("masked %s lists %q, want nothing", d, out)
		}
	}

	rep := r.RunProbe(b, specID(t, "masked-report"))
	for _, d := range dirs {
		m, ok := rep.Mount(d)
		if !ok {
			t.Errorf("masked directory %s: no mount on it", d)
			continue
		}
		if !m.HasOption("ro") {
			t.Errorf("masked directory %s: mount options %v, want ro", d, m.Options)
		}
	}
	if d := "/sys/firmware"; slices.Contains(dirs, d) {
		w := specProbeWord(t, r, b, specID(t, "masked-write"), "write", d+"/x", "x")
		if !strings.Contains(w, "read-only file system") {
			t.Errorf("write into masked %s: %q, want EROFS", d, w)
		}
	}
}

// TestSpecReadonlyPaths: read-only paths refuse writes with EROFS, even to
// root in the container.
func TestSpecReadonlyPaths(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Linux.ReadonlyPaths = append(b.Spec.Linux.ReadonlyPaths, "/proc/berth-does-not-exist")
	// Opening for writing is enough to see EROFS, and writes nothing: the
	// test stays harmless even if the path were writable.
	for _, p := range []string{"/proc/sys/kernel/hostname", "/proc/sys/net/ipv4/ip_forward",
		"/proc/irq/default_smp_affinity", "/proc/sysrq-trigger"} {
		if _, err := os.Stat(p); err != nil {
			continue // not on this kernel
		}
		w := specProbeWord(t, r, b, specID(t, "ro-"+strings.ReplaceAll(strings.Trim(p, "/"), "/", "-")), "open", p, "w")
		if w != "EROFS" {
			t.Errorf("open %s for writing: %s, want EROFS", p, w)
		}
	}
	rep := r.RunProbe(b, specID(t, "ro-report"))
	for _, p := range []string{"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		m, ok := rep.Mount(p)
		if !ok {
			t.Errorf("read-only path %s: no mount on it", p)
			continue
		}
		if !m.HasOption("ro") {
			t.Errorf("read-only path %s: options %v, want ro", p, m.Options)
		}
	}
	// The rest of /proc stays writable where the kernel allows it.
	if m, ok := rep.Mount("/proc"); !ok || m.HasOption("ro") {
		t.Errorf("/proc mount %+v: want a read-write proc", m)
	}
}

// TestSpecProcSymlinkRefused: a rootfs whose /proc or /sys is a symlink
// could make the runtime mount the real procfs somewhere masks do not
// reach (CVE-2019-19921 class). Create must fail cleanly, leaving nothing.
func TestSpecProcSymlinkRefused(t *testing.T) {
	for _, dir := range []string{"proc", "sys"} {
		for _, target := range []string{"/tmp", "../../../../../../tmp"} {
			name := dir + map[bool]string{true: "-abs", false: "-rel"}[strings.HasPrefix(target, "/")]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := runtimetest.New(t)
				b := fixture.Bundle(t)
				p := filepath.Join(b.Rootfs, dir)
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
				id := specID(t, "symlink-"+name)
				before := specHostMounts(t)
				out, stderr, err := specRun(t, r, b, id, "/bin/probe", "exit", "0")
				if err == nil {
					t.Fatalf("run with /%s -> %s succeeded: %s", dir, target, out)
				}
				if !strings.Contains(stderr, "/"+dir) && !strings.Contains(stderr, dir+" ") {
					t.Errorf("error does not name /%s: %s", dir, stderr)
				}
				t.Logf("error: %s", strings.TrimSpace(stderr))
				specNoLeftovers(t, r, id)
				// Nothing of the container's landed on the host's /tmp.
				after := specHostMounts(t)
				if after["/tmp"] != before["/tmp"] {
					t.Errorf("mounts on the host's /tmp: %d before, %d after", before["/tmp"], after["/tmp"])
				}
			})
		}
	}
}

// TestSpecDescriptors: the process gets stdio and nothing else, even when
// the runtime itself was handed more (a leaked host directory here, the
// shape of CVE-2024-21626).
func TestSpecDescriptors(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.Args = []string{"/bin/probe", "report"}

	specQuietFDs(b)
	leak, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	// Descriptor 3 is taken over by the runtime's own plumbing; 9 is not,
	// and reaches the init unless the runtime closes it.
	c := specCreate(t, r, b, specID(t, "fds-none"), nil, leak, nil, nil, nil, nil, nil, leak)
	specStartWait(t, r, c)
	out, stderr := c.output(t)
	rep := specParseReport(t, out, stderr)
	var fds []string
	for _, fd := range rep.FDs {
		fds = append(fds, fmt.Sprintf("%d -> %s", fd.FD, fd.Target))
	}
	if len(rep.FDs) != 3 || rep.FDs[0].FD != 0 || rep.FDs[1].FD != 1 || rep.FDs[2].FD != 2 {
		t.Errorf("descriptors of the process: %q, want only 0, 1, 2", fds)
	}
}

// specQuietFDs stops the probe's Go runtime from opening the cgroup's CPU
// limit files at start-up (Go 1.25's container-aware GOMAXPROCS keeps
// cpu.max or cpu.cfs_quota_us and cpu.cfs_period_us open), which the
// probe would otherwise list among its descriptors as if the runtime had
// leaked them.
func specQuietFDs(b *fixture.OCIBundle) {
	b.Spec.Process.Env = append(b.Spec.Process.Env, "GODEBUG=containermaxprocs=0")
}

// TestSpecPreserveFDs: --preserve-fds 1 passes descriptor 3, and only it:
// descriptors 4 and 9, also handed to the runtime, are not passed on.
func TestSpecPreserveFDs(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.Args = []string{"/bin/probe", "report"}
	specQuietFDs(b)
	passed := filepath.Join(t.TempDir(), "passed-fd")
	if err := os.WriteFile(passed, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f3, err := os.Open(passed)
	if err != nil {
		t.Fatal(err)
	}
	defer f3.Close()
	leak, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	c := specCreate(t, r, b, specID(t, "fds-preserve"), []string{"--preserve-fds", "1"}, f3, leak, nil, nil, nil, nil, leak)
	specStartWait(t, r, c)
	out, stderr := c.output(t)
	rep := specParseReport(t, out, stderr)
	var nums []int
	var fds []string
	for _, fd := range rep.FDs {
		nums = append(nums, fd.FD)
		fds = append(fds, fmt.Sprintf("%d -> %s", fd.FD, fd.Target))
	}
	if !slices.Equal(nums, []int{0, 1, 2, 3}) {
		t.Errorf("descriptors: %q, want 0-2 and the preserved 3", fds)
	}
	for _, fd := range rep.FDs {
		if fd.FD == 3 && !strings.HasSuffix(fd.Target, "passed-fd") {
			t.Errorf("descriptor 3 is %s, want the file passed as 3", fd.Target)
		}
	}
}

// TestSpecSelfExeProtection: while the init waits in the created state its
// executable is the runtime through a detached read-only overlay, or a
// sealed memfd copy, neither of which can be written; the runtime binary on disk is untouched
// (CVE-2019-5736). Its working directory and root are the rootfs, and it
// holds no directory of the host (CVE-2024-21626).
func TestSpecSelfExeProtection(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	bin := specReadFile(t, r.Bin)
	var binSt unix.Stat_t
	if err := unix.Stat(r.Bin, &binSt); err != nil {
		t.Fatal(err)
	}
	b := fixture.Bundle(t)
	b.Spec.Process.Args = []string{"/bin/probe", "exit", "0"}
	c := specCreate(t, r, b, specID(t, "selfexe"), nil)
	proc := fmt.Sprintf("/proc/%d", c.pid)

	// The init's executable is either the runtime seen through a detached
	// read-only overlayfs, or a sealed memfd copy: both refuse writes
	// whatever the writer's privileges, and both hold the runtime's bytes.
	if _, err := os.Readlink(proc + "/exe"); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []int{unix.O_WRONLY, unix.O_RDWR} {
		fd, err := unix.Open(proc+"/exe", flag|unix.O_CLOEXEC, 0)
		if err == nil {
			_, werr := unix.Pwrite(fd, []byte("BERTH"), 0)
			unix.Close(fd)
			if werr == nil {
				t.Errorf("wrote to the init's exe through /proc (flags %#x)", flag)
			}
			continue
		}
		if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.ETXTBSY) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
			t.Errorf("open the init's exe for writing: %v, want EROFS, ETXTBSY or EPERM", err)
		}
	}
	if f, err := os.Open(proc + "/exe"); err != nil {
		t.Errorf("open the init's exe read-only: %v", err)
	} else {
		var fs unix.Statfs_t
		if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil {
			t.Error(err)
		}
		switch {
		case fs.Type == unix.OVERLAYFS_SUPER_MAGIC:
			if fs.Flags&unix.ST_RDONLY == 0 {
				t.Errorf("the init's exe is on a writable overlay")
			}
			// Not the runtime's own mount: nothing the host has attached.
			if specHostMountinfoMentions(t, "overlay", r.Bin) {
				t.Errorf("the exe overlay is attached in the host's mount namespace")
			}
		default:
			seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
			if err != nil || seals&(unix.F_SEAL_WRITE|unix.F_SEAL_SEAL) != unix.F_SEAL_WRITE|unix.F_SEAL_SEAL {
				t.Errorf("the init's exe is neither a read-only overlay nor sealed (filesystem %#x, seals %#x, %v)", fs.Type, seals, err)
			}
		}
		data := specReadFile(t, f.Name())
		f.Close()
		if !bytes.Equal(data, bin) {
			t.Errorf("the init's exe (%d bytes) is not the runtime binary (%d bytes)", len(data), len(bin))
		}
	}

	// cwd and root are the rootfs itself.
	var rootSt unix.Stat_t
	if err := unix.Stat(b.Rootfs, &rootSt); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"cwd", "root"} {
		var st unix.Stat_t
		if err := unix.Stat(proc+"/"+link, &st); err != nil {
			t.Errorf("stat init's %s: %v", link, err)
			continue
		}
		if st.Dev != rootSt.Dev || st.Ino != rootSt.Ino {
			target, _ := os.Readlink(proc + "/" + link)
			t.Errorf("init's %s (%s, %d:%d) is not the rootfs (%d:%d)", link, target, st.Dev, st.Ino, rootSt.Dev, rootSt.Ino)
		}
	}
	// No descriptor of a host directory: every directory the init holds
	// must be inside the rootfs's filesystem.
	ents, err := os.ReadDir(proc + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		if n <= 2 {
			continue
		}
		p := proc + "/fd/" + e.Name()
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		var fs unix.Statfs_t
		unix.Statfs(p, &fs)
		target, _ := os.Readlink(p)
		if st.Dev == rootSt.Dev {
			continue
		}
		what := fmt.Sprintf("filesystem type %#x", fs.Type)
		if fs.Type == unix.PROC_SUPER_MAGIC {
			// Whose procfs: one in which this test process is "self"
			// shows the host's processes, and <fd>/1/root is the host's /.
			if self, _ := os.Readlink(p + "/self"); self == strconv.Itoa(os.Getpid()) {
				what = "the host's procfs: <fd>/1/root is the host's /"
			} else {
				// A procfs of the container's own pid namespace (the
				// init's private one, for reopening its fifo) shows
				// nothing the container could not see anyway.
				continue
			}
		}
		t.Errorf("created init holds descriptor %d of a directory outside the rootfs: %q (%s)", n, target, what)
	}

	// The runtime binary on disk did not change.
	var after unix.Stat_t
	if err := unix.Stat(r.Bin, &after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(specReadFile(t, r.Bin), bin) || after.Mtim != binSt.Mtim || after.Ino != binSt.Ino {
		t.Errorf("the runtime binary %s changed", r.Bin)
	}
	specStartWait(t, r, c)
}

// TestSpecCwdMagicLink: a process.cwd through /proc/self/fd/N could start
// the process in a directory the runtime held open, outside the rootfs
// (CVE-2024-21626). Each N either fails at create or leaves the process
// in a directory that is inside the container.
func TestSpecCwdMagicLink(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	for n := 3; n <= 9; n++ {
		cwd := fmt.Sprintf("/proc/self/fd/%d", n)
		b.Spec.Process.Cwd = cwd
		b.Spec.Process.Args = []string{"/bin/probe", "report"}
		b.Save(t)
		out, stderr, err := r.Exec("run", "--bundle", b.Dir, specID(t, fmt.Sprintf("cwd-fd%d", n)))
		if err != nil {
			continue // refused: fine
		}
		rep := specParseReport(t, out, stderr)
		for _, e := range rep.Errors {
			if strings.Contains(e, "getwd") {
				t.Errorf("cwd %s: the process's working directory is unreachable from its root: %s", cwd, e)
			}
		}
		if !strings.HasPrefix(rep.Cwd, "/") || strings.Contains(rep.Cwd, "unreachable") {
			t.Errorf("cwd %s: the process starts in %q, outside its root", cwd, rep.Cwd)
		}
	}
}

// TestSpecExecCwdMagicLink: the working directory of an exec'd process is
// a name the container owns. An image link to /proc/self/fd/3, with 3 a
// directory of the host passed to exec, must not start the process there:
// exec refuses it, or the process starts inside the container
// (CVE-2024-21626 through exec).
func TestSpecExecCwdMagicLink(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := specID(t, "exec-cwd-fd")
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	if err := os.Symlink("/proc/self/fd/3", filepath.Join(b.Rootfs, "app")); err != nil {
		t.Fatal(err)
	}
	b.Save(t)
	lifeStart(t, r, b, id)
	hostDir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	cmd := r.Command("exec", "--preserve-fds", "1", "--cwd", "/app", id, "/bin/probe", "report")
	cmd.ExtraFiles = []*os.File{hostDir}
	res := lifeRunCmd(t, cmd, 60*time.Second)
	if res.Code != 0 {
		lifeWantMsg(t, "exec with a cwd through a magic link: stderr", res.Stderr, "chdir to /app")
		return
	}
	rep := specParseReport(t, res.Stdout, res.Stderr)
	for _, e := range rep.Errors {
		if strings.Contains(e, "getwd") {
			t.Errorf("the exec'd process's working directory is unreachable from its root: %s", e)
		}
	}
	if !strings.HasPrefix(rep.Cwd, "/") || strings.Contains(rep.Cwd, "unreachable") {
		t.Errorf("the exec'd process starts in %q, outside its root", rep.Cwd)
	}
}

// TestSpecStartContainerHookPrivileges: a startContainer hook is a program
// of the image (its path is resolved in the container), so it runs with
// what the container's process gets, as runc runs it: the process's user,
// bounding set and capabilities, never the runtime's root over the host.
func TestSpecStartContainerHookPrivileges(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.User = specs.User{UID: fixture.BerthUID, GID: fixture.BerthGID}
	b.Spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{
		Path: "/bin/sh",
		Args: []string{"sh", "-c", "cat /proc/self/status > /tmp/hook-status"},
	}}}
	if err := os.MkdirAll(filepath.Join(b.Rootfs, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(b.Rootfs, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	out := specMustRun(t, r, b, specID(t, "hook-privs"), "/bin/probe", "cat", "/proc/self/status")
	hook := string(specReadFile(t, filepath.Join(b.Rootfs, "tmp", "hook-status")))
	field := func(status, name string) string {
		for _, line := range strings.Split(status, "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				return strings.Join(strings.Fields(v), " ")
			}
		}
		t.Fatalf("no %s in %q", name, status)
		return ""
	}
	want := strconv.Itoa(fixture.BerthUID)
	if got := field(hook, "Uid"); got != strings.Repeat(want+" ", 3)+want {
		t.Errorf("startContainer hook runs as uids %q, want the process's %s", got, want)
	}
	for _, name := range []string{"Gid", "CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb", "NoNewPrivs"} {
		if got, want := field(hook, name), field(out, name); got != want {
			t.Errorf("startContainer hook's %s is %s, want the process's %s", name, got, want)
		}
	}
}

// specHostMountinfoMentions reports whether the test's own mount table has
// a mount of fstype whose options mention dir's directory.
func specHostMountinfoMentions(t *testing.T, fstype, bin string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(bin)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, " - "+fstype+" ") && strings.Contains(line, dir) {
			return true
		}
	}
	return false
}

// TestSpecHostileDevAndCwd: with no /dev mount in the spec, the runtime
// makes the default devices and /dev's links in the image's /dev, and the
// working directory where the spec says. An image whose /dev and whose
// working directory's parent are symlinks climbing out of the rootfs gets
// them inside the rootfs, where the links would point if the rootfs were
// /, and nothing on the host (CVE-2024-45310 class).
func TestSpecHostileDevAndCwd(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	escDev := filepath.Join("/tmp", specID(t, "berth-evil-dev"))
	os.RemoveAll(escDev)
	t.Cleanup(func() { os.RemoveAll(escDev) })
	if err := os.Mkdir(escDev, 0o755); err != nil {
		t.Fatal(err)
	}
	// The working directory through a link that climbs to /tmp: the
	// host's /tmp/<work> must not appear.
	work := specID(t, "berth-evil-work")
	hostWork := filepath.Join("/tmp", work)
	os.RemoveAll(hostWork)
	t.Cleanup(func() { os.RemoveAll(hostWork) })

	b := fixture.Bundle(t)
	var mounts []specs.Mount
	for _, m := range b.Spec.Mounts {
		if m.Destination != "/dev" && !strings.HasPrefix(m.Destination, "/dev/") {
			mounts = append(mounts, m)
		}
	}
	b.Spec.Mounts = mounts
	b.Spec.Process.Cwd = "/evil-cwd/" + work
	if err := os.RemoveAll(filepath.Join(b.Rootfs, "dev")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b.Rootfs, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"dev": "../../../../../../.." + escDev, "evil-cwd": "../../../../../../../tmp"} {
		if err := os.Symlink(target, filepath.Join(b.Rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if ents, err := os.ReadDir(escDev); err != nil || len(ents) != 0 {
			t.Errorf("host directory %s: %d entries (%v) after the run, want it empty", escDev, len(ents), err)
		}
		if _, err := os.Lstat(hostWork); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host %s exists after the run (lstat: %v)", hostWork, err)
		}
	}()

	out, stderr, err := specRun(t, r, b, specID(t, "hostile-dev"), "/bin/sh", "-c", "pwd -P; ls /dev/")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	lines := strings.Fields(out)
	if len(lines) == 0 || lines[0] != "/tmp/"+work {
		t.Errorf("working directory %q, want /tmp/%s (inside the rootfs)", out, work)
	}
	for _, want := range []string{"null", "zero", "urandom", "tty", "fd", "stdin"} {
		if !slices.Contains(lines[1:], want) {
			t.Errorf("/dev in the container lacks %s: %v", want, lines[1:])
		}
	}
	// Made inside the rootfs, where the links lead from its root.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(b.Rootfs, escDev, "null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("%s/null inside the rootfs: %v (mode %o, rdev %d:%d)", escDev, err, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if fi, err := os.Stat(filepath.Join(b.Rootfs, "tmp", work)); err != nil || !fi.IsDir() {
		t.Errorf("tmp/%s inside the rootfs: %v", work, err)
	}
}
