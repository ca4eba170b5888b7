package runtime_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// TestSpecNamespacesSeparate: every namespace the spec asks for without a
// path is a new one, different from the host's; the user namespace, not
// asked for, is the host's.
func TestSpecNamespacesSeparate(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	host := specHostNS(t)
	if host["time"] != 0 {
		b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	}
	rep := r.RunProbe(b, specID(t, "ns-separate"))
	if len(rep.Errors) > 0 {
		t.Logf("probe errors: %q", rep.Errors)
	}
	kinds := []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "uts"}
	if host["time"] != 0 {
		kinds = append(kinds, "time", "time_for_children")
	}
	for _, kind := range kinds {
		got := rep.Namespaces[kind]
		if got == 0 {
			t.Errorf("%s namespace: the probe could not read it", kind)
			continue
		}
		if got == host[kind] {
			t.Errorf("%s namespace %d is the host's", kind, got)
		}
	}
	if rep.Namespaces["user"] != host["user"] {
		t.Errorf("user namespace %d, want the host's %d (none asked for)", rep.Namespaces["user"], host["user"])
	}
	if rep.PID != 1 {
		t.Errorf("pid %d in a new pid namespace, want 1", rep.PID)
	}
	// A new cgroup namespace is rooted at the container's own cgroup.
	for _, line := range rep.Cgroup {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[2] != "/" {
			t.Errorf("/proc/self/cgroup line %q: a new cgroup namespace shows its root as /", line)
		}
	}
}

// TestSpecNamespacesNotAsked: a namespace the spec does not list is the
// host's.
func TestSpecNamespacesNotAsked(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Hostname = ""
	var keep []specs.LinuxNamespace
	for _, n := range b.Spec.Linux.Namespaces {
		if n.Type == specs.PIDNamespace || n.Type == specs.MountNamespace {
			keep = append(keep, n)
		}
	}
	b.Spec.Linux.Namespaces = keep
	host := specHostNS(t)
	rep := r.RunProbe(b, specID(t, "ns-notasked"))
	for _, kind := range []string{"ipc", "net", "uts", "cgroup", "user"} {
		if rep.Namespaces[kind] != host[kind] {
			t.Errorf("%s namespace %d, want the host's %d: not asked for", kind, rep.Namespaces[kind], host[kind])
		}
	}
	for _, kind := range []string{"pid", "mnt"} {
		if rep.Namespaces[kind] == host[kind] {
			t.Errorf("%s namespace is the host's, but the spec asks for a new one", kind)
		}
	}
}

// specNSHolder starts a process in new namespaces (unshare(1) flags) and
// returns its pid; it is killed when the test ends.
func specNSHolder(t *testing.T, unshareFlags ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	args := append(unshareFlags, "sleep", "600")
	cmd := exec.Command("unshare", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare %q: %v", args, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// specWaitNS waits until /proc/pid/ns/kind differs from the test's own, that is
// until unshare(1) has made its namespaces and executed its program.
func specWaitNS(t *testing.T, pid int, kind string) string {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
	own := specNSInode(t, "/proc/self/ns/"+kind)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ino, err := os.Readlink(path); err == nil && !strings.Contains(ino, strconv.FormatUint(own, 10)) {
			return path
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never left the test's namespace", path)
	return ""
}

// TestSpecNamespacesJoinByPath: a namespace given by path is joined: the
// container shares it with the process that made it.
func TestSpecNamespacesJoinByPath(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)

	// A named network namespace, as `ip netns add` makes it.
	netnsName := specID(t, "berth-spec")
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8)")
	}
	if out, err := exec.Command("ip", "netns", "add", netnsName).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", netnsName).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete: %v: %s", err, out)
		}
	})
	netPath := filepath.Join("/run/netns", netnsName)

	// ipc and uts of a sleeping process.
	holder := specNSHolder(t, "--ipc", "--uts")
	ipcPath := specWaitNS(t, holder.Process.Pid, "ipc")
	utsPath := fmt.Sprintf("/proc/%d/ns/uts", holder.Process.Pid)

	b := fixture.Bundle(t)
	// The names are set in the joined uts namespace (a pod's), as runc
	// sets them: its holder sees them, the host keeps its own.
	b.Spec.Hostname = "berth-joined-uts"
	b.Spec.Domainname = "joined.berth.test"
	hostName, _ := os.Hostname()
	for i, n := range b.Spec.Linux.Namespaces {
		switch n.Type {
		case specs.NetworkNamespace:
			b.Spec.Linux.Namespaces[i].Path = netPath
		case specs.IPCNamespace:
			b.Spec.Linux.Namespaces[i].Path = ipcPath
		case specs.UTSNamespace:
			b.Spec.Linux.Namespaces[i].Path = utsPath
		}
	}
	want := map[string]uint64{
		"net": specNSInode(t, netPath),
		"ipc": specNSInode(t, ipcPath),
		"uts": specNSInode(t, utsPath),
	}
	host := specHostNS(t)
	rep := r.RunProbe(b, specID(t, "ns-join"))
	for kind, ino := range want {
		if ino == host[kind] {
			t.Fatalf("set-up: the %s namespace to join is the test's own", kind)
		}
		if rep.Namespaces[kind] != ino {
			t.Errorf("%s namespace %d, want %d: the one given by path", kind, rep.Namespaces[kind], ino)
		}
	}
	// The namespaces not given by path are still new ones.
	for _, kind := range []string{"pid", "mnt"} {
		if rep.Namespaces[kind] == host[kind] {
			t.Errorf("%s namespace is the host's", kind)
		}
	}
	if rep.Hostname != "berth-joined-uts" || rep.Domainname != "joined.berth.test" {
		t.Errorf("hostname %q domainname %q in the joined uts namespace, want berth-joined-uts and joined.berth.test", rep.Hostname, rep.Domainname)
	}
	if out, err := exec.Command("nsenter", "--uts="+utsPath, "hostname").Output(); err != nil || strings.TrimSpace(string(out)) != "berth-joined-uts" {
		t.Errorf("the uts namespace's holder sees the name %q (%v), want berth-joined-uts", out, err)
	}
	if now, _ := os.Hostname(); now != hostName {
		t.Errorf("the host's name changed from %q to %q", hostName, now)
	}
}

// TestSpecNamespacesJoinMount: a mount namespace joined by path is the
// container's, and the bundle's root, mounts, masked and read-only paths
// are set up in it as in a new one (runc does the same): root.path is the
// container's root either way. The host's mount table is untouched and
// the namespace's holder lives on.
func TestSpecNamespacesJoinMount(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	// The bundle first: the namespace is a copy of the host's mounts
	// when it is made, and the fixture's rootfs is a mount.
	b := fixture.Bundle(t)
	holder := specNSHolder(t, "--mount", "--propagation", "private")
	mntPath := specWaitNS(t, holder.Process.Pid, "mnt")
	for i, n := range b.Spec.Linux.Namespaces {
		if n.Type == specs.MountNamespace {
			b.Spec.Linux.Namespaces[i].Path = mntPath
		}
	}
	hostMounts := lifeMountsUnder(t, b.Dir)
	id := specID(t, "ns-join-mnt")
	// The probe is the bundle's: the host's root has no /bin/probe.
	rep := r.RunProbe(b, id)
	if got, want := rep.Namespaces["mnt"], specNSInode(t, mntPath); got != want {
		t.Errorf("mnt namespace %d, want %d: the one given by path", got, want)
	}
	kinds := map[string]string{}
	var interrupts, procSys *report.Mount
	for i, m := range rep.Mounts {
		kinds[m.MountPoint] = m.FSType
		switch m.MountPoint {
		case "/proc/interrupts":
			interrupts = &rep.Mounts[i]
		case "/proc/sys":
			procSys = &rep.Mounts[i]
		}
	}
	if kinds["/proc"] != "proc" || kinds["/dev"] != "tmpfs" || kinds["/dev/pts"] != "devpts" {
		t.Errorf("the spec's mounts in the joined namespace: /proc %q /dev %q /dev/pts %q", kinds["/proc"], kinds["/dev"], kinds["/dev/pts"])
	}
	if interrupts == nil {
		t.Error("masked /proc/interrupts is not covered in the joined namespace")
	}
	if procSys == nil || !procSys.HasOption("ro") {
		t.Errorf("read-only /proc/sys in the joined namespace: %+v", procSys)
	}
	if err := holder.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the namespace's holder is gone: %v", err)
	}
	if now := lifeMountsUnder(t, b.Dir); !slices.Equal(now, hostMounts) {
		t.Errorf("the host's mounts under the bundle changed:\nbefore %q\nafter  %q", hostMounts, now)
	}
	specNoLeftovers(t, r, id)
}

// TestSpecNamespacesJoinPID: joining a pid namespace by path puts the
// process into it, next to the namespace's own init.
func TestSpecNamespacesJoinPID(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	holder := specNSHolder(t, "--pid", "--fork", "--kill-child")
	// unshare --fork: the sleep is unshare's child, pid 1 of the namespace.
	pidPath := specWaitNS(t, holder.Process.Pid, "pid_for_children")
	b := fixture.Bundle(t)
	for i, n := range b.Spec.Linux.Namespaces {
		if n.Type == specs.PIDNamespace {
			b.Spec.Linux.Namespaces[i].Path = pidPath
		}
	}
	want := specNSInode(t, pidPath)
	rep := r.RunProbe(b, specID(t, "ns-joinpid"))
	if rep.Namespaces["pid"] != want {
		t.Errorf("pid namespace %d, want %d: the one given by path", rep.Namespaces["pid"], want)
	}
	if rep.PID == 1 {
		t.Errorf("pid 1 in a joined pid namespace that already has an init")
	}
}

// TestSpecNamespacesUser: a new user namespace with mappings; the process
// is root inside and an unprivileged id outside.
func TestSpecNamespacesUser(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		t.Skip("no user namespaces")
	}
	r := runtimetest.New(t)
	b := specUserNSBundle(t)
	rep := r.RunProbe(b, specID(t, "ns-user"))
	if len(rep.Errors) > 0 {
		t.Logf("probe errors: %q", rep.Errors)
	}
	host := specHostNS(t)
	if rep.Namespaces["user"] == 0 || rep.Namespaces["user"] == host["user"] {
		t.Errorf("user namespace %d, want a new one (host %d)", rep.Namespaces["user"], host["user"])
	}
	if rep.UID != 0 || rep.EUID != 0 || rep.GID != 0 || rep.EGID != 0 {
		t.Errorf("ids uid=%d euid=%d gid=%d egid=%d, want root inside", rep.UID, rep.EUID, rep.GID, rep.EGID)
	}
	for _, kind := range []string{"pid", "mnt", "net", "ipc", "uts"} {
		if rep.Namespaces[kind] == host[kind] {
			t.Errorf("%s namespace is the host's", kind)
		}
	}
	uidMap := specCat(t, r, b, specID(t, "ns-user-uidmap"), "/proc/self/uid_map")
	if f := strings.Fields(uidMap); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Errorf("uid_map %q, want 0 100000 65536", uidMap)
	}
	gidMap := specCat(t, r, b, specID(t, "ns-user-gidmap"), "/proc/self/gid_map")
	if f := strings.Fields(gidMap); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Errorf("gid_map %q, want 0 100000 65536", gidMap)
	}
}

// TestSpecNamespacesUserHostIDs: from the host, the container's process
// runs as the mapped ids, not as root.
func TestSpecNamespacesUserHostIDs(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := specUserNSBundle(t)
	b.Spec.Process.Args = []string{"/bin/probe", "sleep", "inf"}
	id := specID(t, "ns-user-hostids")
	c := specCreate(t, r, b, id, nil)
	r.Must("start", id)
	r.WaitStatus(id, "running", 10*time.Second)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "Uid" || k == "Gid") {
			for _, f := range strings.Fields(v) {
				if f != "100000" {
					t.Errorf("host view of %s: %q, want 100000 for each id", k, strings.TrimSpace(v))
					break
				}
			}
		}
	}
	r.Must("kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
}

// specUserNSBundle is a bundle with a new user namespace mapping container
// 0-65535 to host 100000-165535. The rootfs is a copy chowned to the
// mapped root (as an image unpacked for that mapping would be), and the
// directories above it are searchable so the container's root, an
// unprivileged id on the host, can reach it.
func specUserNSBundle(t *testing.T) *fixture.OCIBundle {
	t.Helper()
	b := fixture.Bundle(t, fixture.WithCopy())
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.UIDMappings = m
	b.Spec.Linux.GIDMappings = m
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	err := filepath.Walk(b.Rootfs, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		return os.Lchown(p, int(st.Uid)+100000, int(st.Gid)+100000)
	})
	if err != nil {
		t.Fatalf("chown rootfs: %v", err)
	}
	for d := b.Dir; d != "/"; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, info.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Save(t)
	return b
}

// TestSpecNamespacesTime: a new time namespace with offsets: the clocks
// inside are shifted by exactly those offsets.
func TestSpecNamespacesTime(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("no time namespaces on this kernel")
	}
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	const bootOff, monoOff = 10 * 365 * 86400, 7 * 86400
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	b.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
		"boottime":  {Secs: bootOff},
		"monotonic": {Secs: monoOff, Nanosecs: 5000},
	}
	offsets := specCat(t, r, b, specID(t, "ns-time-offsets"), "/proc/self/timens_offsets")
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(offsets), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			got[f[0]] = f[1] + " " + f[2]
		}
	}
	if got["boottime"] != fmt.Sprintf("%d 0", bootOff) || got["monotonic"] != fmt.Sprintf("%d 5000", monoOff) {
		t.Errorf("timens_offsets inside:\n%s\nwant boottime %d 0, monotonic %d 5000", offsets, bootOff, monoOff)
	}

	// /proc/uptime is CLOCK_BOOTTIME as the reader's time namespace sees it.
	before := specUptime(t, specReadString(t, "/proc/uptime"))
	inside := specUptime(t, specCat(t, r, b, specID(t, "ns-time-uptime"), "/proc/uptime"))
	after := specUptime(t, specReadString(t, "/proc/uptime"))
	if inside < before+bootOff || inside > after+bootOff {
		t.Errorf("uptime inside %.2f s, want between %.2f and %.2f (host's plus the %d s boottime offset)",
			inside, before+bootOff, after+bootOff, bootOff)
	}

	// The container's namespace is new, and the host's clocks are not
	// shifted.
	host := specHostNS(t)
	rep := r.RunProbe(b, specID(t, "ns-time-report"))
	if rep.Namespaces["time"] == host["time"] {
		t.Errorf("time namespace is the host's")
	}
	if up := specUptime(t, specReadString(t, "/proc/uptime")); up > after+60 {
		t.Errorf("host uptime jumped to %.2f s after the container ran", up)
	}
}

// TestSpecNamespacesTimeWithUser: a new time namespace beside a new user
// namespace, and beside a joined one (where a stage process clones the
// init): the offsets hold, the namespace belongs to the container's user
// namespace, and exec lands in the container's time namespace.
func TestSpecNamespacesTimeWithUser(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("no time namespaces on this kernel")
	}
	check := func(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id string) {
		const bootOff, monoOff = 86400, 3600
		b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		b.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
			"boottime":  {Secs: bootOff},
			"monotonic": {Secs: monoOff, Nanosecs: 7},
		}
		b.Spec.Process.Args = []string{"/bin/probe", "sleep", "inf"}
		c := specCreate(t, r, b, id, nil)
		t.Cleanup(func() { r.Exec("delete", "--force", id) })
		r.Must("start", id)
		r.WaitStatus(id, "running", 10*time.Second)
		initNS := specNSInode(t, fmt.Sprintf("/proc/%d/ns/time", c.pid))
		if initNS == specHostNS(t)["time"] {
			t.Fatalf("the init's time namespace is the host's")
		}
		if own := specNSInode(t, fmt.Sprintf("/proc/%d/ns/time_for_children", c.pid)); own != initNS {
			t.Errorf("the init's children get time namespace %d, the init is in %d", own, initNS)
		}
		offsets, stderr, err := r.Exec("exec", id, "/bin/probe", "cat", "/proc/self/timens_offsets")
		if err != nil {
			t.Fatalf("exec: %v: %s", err, stderr)
		}
		want := fmt.Sprintf("monotonic %d 7\nboottime %d 0\n", monoOff, bootOff)
		if strings.Join(strings.Fields(offsets), " ") != strings.Join(strings.Fields(want), " ") {
			t.Errorf("timens_offsets seen by exec:\n%s\nwant\n%s", offsets, want)
		}
		out, stderr, err := r.Exec("exec", id, "/bin/probe")
		if err != nil {
			t.Fatalf("exec: %v: %s", err, stderr)
		}
		if rep := specParseReport(t, out, stderr); rep.Namespaces["time"] != initNS {
			t.Errorf("exec's time namespace %d, want the init's %d", rep.Namespaces["time"], initNS)
		}
		// The namespace is owned by the container's user namespace.
		owner, err := nsOwner(fmt.Sprintf("/proc/%d/ns/time", c.pid))
		if err != nil {
			t.Fatal(err)
		}
		if user := specNSInode(t, fmt.Sprintf("/proc/%d/ns/user", c.pid)); owner != user {
			t.Errorf("time namespace owned by user namespace %d, want the container's %d", owner, user)
		}
		r.Must("kill", id, "KILL")
		r.WaitStatus(id, "stopped", 10*time.Second)
	}
	t.Run("new", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		check(t, r, specUserNSBundle(t), specID(t, "ns-time-newuser"))
	})
	t.Run("joined", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		// A user namespace mapping the host's first 65536 ids onto
		// themselves, so the fixture's rootfs and devpts's gid 5 are
		// mapped.
		holder := exec.Command("sleep", "600")
		ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		holder.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER, UidMappings: ids, GidMappings: ids,
			GidMappingsEnableSetgroups: true, Pdeathsig: syscall.SIGKILL,
		}
		if err := holder.Start(); err != nil {
			t.Fatalf("user namespace holder: %v", err)
		}
		t.Cleanup(func() {
			holder.Process.Kill()
			holder.Wait()
		})
		b := fixture.Bundle(t)
		b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{
			Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", holder.Process.Pid),
		})
		check(t, r, b, specID(t, "ns-time-joineduser"))
	})
}

// nsOwner returns the inode of the user namespace that owns the namespace
// at path (NS_GET_USERNS).
func nsOwner(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return 0, fmt.Errorf("NS_GET_USERNS %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// TestSpecNamespacesTimeOffsetsNeedNamespace: offsets without a new time
// namespace would have to shift the host's clocks; create refuses.
func TestSpecNamespacesTimeOffsetsNeedNamespace(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 100}}
	id := specID(t, "ns-time-nons")
	if out, stderr, err := specRun(t, r, b, id, "/bin/probe", "exit", "0"); err == nil {
		t.Fatalf("run with timeOffsets but no time namespace succeeded: %s %s", out, stderr)
	}
	specNoLeftovers(t, r, id)
}

func specUptime(t *testing.T, s string) float64 {
	t.Helper()
	f := strings.Fields(s)
	if len(f) < 1 {
		t.Fatalf("parse /proc/uptime %q", s)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("parse /proc/uptime %q: %v", s, err)
	}
	return v
}

func specReadString(t *testing.T, path string) string {
	t.Helper()
	return string(specReadFile(t, path))
}
