package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// lifeExecReport runs `exec [flags] id /bin/probe report` in the foreground
// and returns the report.
func lifeExecReport(t *testing.T, r *runtimetest.Runtime, id string, flags ...string) *report.Report {
	t.Helper()
	args := append(append([]string{"exec"}, flags...), id, "/bin/probe", "report")
	res := lifeRun(t, r, args...)
	if res.Code != 0 {
		t.Fatalf("berth-runtime %s: %s", strings.Join(args, " "), res)
	}
	var rep report.Report
	lifeDecode(t, "probe report from exec", res.Stdout, &rep)
	return &rep
}

// lifeSleeper starts a detached container running "probe sleep 1000" (opts
// change the bundle) and returns the bundle and the init's pid.
func lifeSleeper(t *testing.T, r *runtimetest.Runtime, id string, opts ...fixture.Option) (*fixture.OCIBundle, int) {
	t.Helper()
	opts = append([]fixture.Option{fixture.WithArgs("/bin/probe", "sleep", "1000")}, opts...)
	b := fixture.Bundle(t, opts...)
	return b, lifeStart(t, r, b, id)
}

// lifeCompareNamespaces checks that the report's namespaces are the init's.
func lifeCompareNamespaces(t *testing.T, rep *report.Report, initNS map[string]uint64) {
	t.Helper()
	compared := 0
	for _, kind := range report.NamespaceKinds {
		want, ok := initNS[kind]
		if !ok {
			continue // not on this kernel
		}
		compared++
		if got := rep.Namespaces[kind]; got != want {
			t.Errorf("exec'd process: %s namespace %d, want the init's %d", kind, got, want)
		}
	}
	if compared < 7 {
		t.Errorf("compared only %d namespaces: %v", compared, initNS)
	}
}

// TestLifeExecJoinsNamespaces checks that exec joins every namespace of the
// container, the mount namespace included.
func TestLifeExecJoinsNamespaces(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	marker := "marker-" + id
	if err := os.WriteFile(filepath.Join(b.Rootfs, "life-marker"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := lifeStart(t, r, b, id)
	initNS := lifeNamespaces(t, pid)
	hostNS := lifeNamespaces(t, os.Getpid())
	// The container must have namespaces of its own for the comparison to
	// mean anything.
	for _, kind := range []string{"mnt", "net", "pid", "uts", "ipc", "cgroup"} {
		if initNS[kind] == hostNS[kind] {
			t.Errorf("the container's init shares the host's %s namespace", kind)
		}
	}
	rep := lifeExecReport(t, r, id)
	lifeCompareNamespaces(t, rep, initNS)
	if rep.PID == 1 || rep.PID <= 0 {
		t.Errorf("exec'd process has pid %d in the container, want another than the init's 1", rep.PID)
	}
	if rep.Hostname != fixture.Hostname {
		t.Errorf("exec'd process sees hostname %q, want %q", rep.Hostname, fixture.Hostname)
	}
	// The mount namespace: the container's rootfs, not the host's.
	res := lifeRun(t, r, "exec", id, "/bin/probe", "cat", "/life-marker")
	if res.Code != 0 || res.Stdout != marker {
		t.Errorf("exec probe cat /life-marker: %s; want %q", res, marker)
	}
	if _, ok := rep.Mount("/proc"); !ok {
		t.Errorf("exec'd process sees no /proc mount: %v", rep.Mounts)
	}
	for _, m := range rep.Mounts {
		if m.MountPoint == "/work" || m.MountPoint == "/run" {
			t.Errorf("host mount %s visible to the exec'd process", m.MountPoint)
		}
	}
}

// TestLifeExecUserNamespace checks exec into a container with a user
// namespace: the process is root in the container, mapped on the host.
func TestLifeExecUserNamespace(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	const base, size = 100000, 65536
	b := fixture.Bundle(t, fixture.WithCopy(), fixture.WithArgs("/bin/probe", "sleep", "1000"),
		fixture.WithSpec(func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: base, Size: size}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: base, Size: size}}
		}))
	lifeShiftOwners(t, b.Rootfs, base)
	lifeOpenPath(t, b.Rootfs)
	pid := lifeStart(t, r, b, id)
	initNS := lifeNamespaces(t, pid)
	if initNS["user"] == lifeNamespaces(t, os.Getpid())["user"] {
		t.Fatalf("the container's init is in the host's user namespace")
	}
	uidMap, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/uid_map")
	if f := strings.Fields(string(uidMap)); !slices.Equal(f, []string{"0", strconv.Itoa(base), strconv.Itoa(size)}) {
		t.Errorf("init's uid_map %q, want 0 %d %d", uidMap, base, size)
	}

	rep := lifeExecReport(t, r, id)
	lifeCompareNamespaces(t, rep, initNS)
	if rep.UID != 0 || rep.GID != 0 {
		t.Errorf("exec'd process is %d:%d in the container, want 0:0", rep.UID, rep.GID)
	}
	res := lifeRun(t, r, "exec", id, "/bin/probe", "cat", "/proc/self/uid_map")
	if f := strings.Fields(res.Stdout); res.Code != 0 || !slices.Equal(f, []string{"0", strconv.Itoa(base), strconv.Itoa(size)}) {
		t.Errorf("exec'd process's uid_map: %s; want 0 %d %d", res, base, size)
	}
	// An unprivileged user of the container works too.
	rep = lifeExecReport(t, r, id, "--user", "1000:1000")
	if rep.UID != 1000 || rep.GID != 1000 {
		t.Errorf("exec --user 1000:1000 in a user namespace: %d:%d", rep.UID, rep.GID)
	}
}

// TestLifeExecCgroupAndDetach checks exec --detach --pid-file, and that the
// exec'd process lands in the container's cgroups.
func TestLifeExecCgroupAndDetach(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	_, pid := lifeSleeper(t, r, id)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	res := lifeMust(t, r, "exec", "--detach", "--pid-file", pidFile, id, "/bin/probe", "sleep", "1000")
	if res.Elapsed > 20*time.Second {
		t.Errorf("exec --detach took %s", res.Elapsed)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("exec --pid-file: %v", err)
	}
	execPid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || execPid <= 0 || execPid == pid {
		t.Fatalf("exec --pid-file holds %q", data)
	}
	if !lifeAlive(execPid) {
		t.Fatalf("detached exec'd process %d is not alive", execPid)
	}
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(execPid) + "/exe"); !strings.HasSuffix(exe, "/bin/probe") {
		t.Errorf("detached exec'd process runs %q, want the probe", exe)
	}
	want := map[string]string{}
	for _, c := range lifeCgroupsOf(t, pid) {
		want[c.Controllers] = c.Path
	}
	got := lifeCgroupsOf(t, execPid)
	if len(got) != len(want) {
		t.Errorf("exec'd process in %d cgroups, the init in %d", len(got), len(want))
	}
	for _, c := range got {
		if want[c.Controllers] != c.Path {
			t.Errorf("exec'd process cgroup %q, want the init's %q", c.Line, want[c.Controllers])
		}
	}
	var pids []int
	lifeDecode(t, "ps --format json", r.Must("ps", "--format", "json", id), &pids)
	if !slices.Contains(pids, execPid) || !slices.Contains(pids, pid) {
		t.Errorf("ps --format json: %v, want the init %d and the exec'd %d", pids, pid, execPid)
	}
	initNS, execNS := lifeNamespaces(t, pid), lifeNamespaces(t, execPid)
	for kind, ino := range initNS {
		if execNS[kind] != ino {
			t.Errorf("detached exec'd process: %s namespace %d, want %d", kind, execNS[kind], ino)
		}
	}
	// delete --force takes exec'd processes with the container.
	lifeMust(t, r, "delete", "--force", id)
	if !lifeWaitDead(execPid, 10*time.Second) {
		t.Errorf("exec'd process %d survived delete --force", execPid)
	}
}

// TestLifeExecExitStatus checks that exec returns the process's status.
func TestLifeExecExitStatus(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	lifeSleeper(t, r, id)
	if res := lifeRun(t, r, "exec", id, "/bin/probe", "exit", "3"); res.Code != 3 {
		t.Errorf("exec probe exit 3: %s; want 3", res)
	}
	if res := lifeRun(t, r, "exec", id, "/bin/probe", "exit", "0"); res.Code != 0 {
		t.Errorf("exec probe exit 0: %s; want 0", res)
	}
	// A process killed by a signal: 128+N, as a shell reports it.
	if res := lifeRun(t, r, "exec", id, "/bin/sh", "-c", "kill -9 $$"); res.Code != 137 {
		t.Errorf("exec of a process killed by SIGKILL: %s; want 137", res)
	}
	// stdio passes through separately.
	res := lifeRun(t, r, "exec", id, "/bin/sh", "-c", "echo out; echo err >&2")
	if res.Code != 0 || res.Stdout != "out\n" || res.Stderr != "err\n" {
		t.Errorf("exec stdio: %s; want stdout \"out\\n\", stderr \"err\\n\"", res)
	}
}

// TestLifeExecOptions checks the flags that change the exec'd process.
func TestLifeExecOptions(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	lifeSleeper(t, r, id)

	base := lifeExecReport(t, r, id)
	if base.UID != 0 || base.Cwd != "/" || !slices.Contains(base.Env, fixture.DefaultPath) {
		t.Errorf("plain exec: uid %d cwd %q env %v; want the container's process (0, /, its PATH)", base.UID, base.Cwd, base.Env)
	}
	if slices.Contains(base.Capabilities.Effective, "CAP_SYS_ADMIN") {
		t.Fatalf("plain exec already has CAP_SYS_ADMIN: the --cap check would mean nothing")
	}

	t.Run("env", func(t *testing.T) {
		rep := lifeExecReport(t, r, id, "--env", "LIFE_A=one", "-e", "LIFE_B=two words")
		for _, e := range []string{"LIFE_A=one", "LIFE_B=two words", fixture.DefaultPath} {
			if !slices.Contains(rep.Env, e) {
				t.Errorf("exec --env: environment %v lacks %q", rep.Env, e)
			}
		}
	})
	t.Run("cwd", func(t *testing.T) {
		rep := lifeExecReport(t, r, id, "--cwd", "/tmp")
		if rep.Cwd != "/tmp" {
			t.Errorf("exec --cwd /tmp: cwd %q", rep.Cwd)
		}
	})
	t.Run("user", func(t *testing.T) {
		rep := lifeExecReport(t, r, id, "--user", "1000:1000", "--additional-gids", "50", "--additional-gids", "4242")
		if rep.UID != 1000 || rep.EUID != 1000 || rep.SUID != 1000 || rep.GID != 1000 || rep.EGID != 1000 {
			t.Errorf("exec --user 1000:1000: uid %d/%d/%d gid %d/%d", rep.UID, rep.EUID, rep.SUID, rep.GID, rep.EGID)
		}
		for _, g := range []int{50, 4242} {
			if !slices.Contains(rep.Groups, g) {
				t.Errorf("exec --additional-gids: groups %v lack %d", rep.Groups, g)
			}
		}
		if len(rep.Capabilities.Effective) != 0 {
			t.Errorf("exec --user 1000: effective capabilities %v, want none", rep.Capabilities.Effective)
		}
	})
	t.Run("cap", func(t *testing.T) {
		rep := lifeExecReport(t, r, id, "--cap", "CAP_SYS_ADMIN")
		for set, caps := range map[string][]string{"bounding": rep.Capabilities.Bounding,
			"effective": rep.Capabilities.Effective, "permitted": rep.Capabilities.Permitted} {
			if !slices.Contains(caps, "CAP_SYS_ADMIN") {
				t.Errorf("exec --cap CAP_SYS_ADMIN: %s set %v lacks it", set, caps)
			}
			if !slices.Contains(caps, "CAP_CHOWN") {
				t.Errorf("exec --cap CAP_SYS_ADMIN: %s set %v lost the container's CAP_CHOWN", set, caps)
			}
		}
	})
	t.Run("process-json", func(t *testing.T) {
		p := specs.Process{
			Args: []string{"/bin/probe", "report"},
			Env:  []string{fixture.DefaultPath, "FROM_PROCESS_JSON=yes"},
			Cwd:  "/home/berth",
			User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{50}},
		}
		data, _ := json.Marshal(&p)
		path := filepath.Join(t.TempDir(), "process.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res := lifeRun(t, r, "exec", "--process", path, id)
		if res.Code != 0 {
			t.Fatalf("exec --process: %s", res)
		}
		var rep report.Report
		lifeDecode(t, "exec --process report", res.Stdout, &rep)
		if rep.UID != 1000 || rep.GID != 1000 || rep.Cwd != "/home/berth" || !slices.Contains(rep.Env, "FROM_PROCESS_JSON=yes") || !slices.Contains(rep.Groups, 50) {
			t.Errorf("exec --process: uid %d gid %d cwd %q env %v groups %v; want process.json's", rep.UID, rep.GID, rep.Cwd, rep.Env, rep.Groups)
		}
		lifeFail(t, r, []string{"process"}, "exec", "--process", filepath.Join(t.TempDir(), "missing.json"), id)
	})
}

// TestLifeExecFailures checks that exec fails clearly where it cannot run.
func TestLifeExecFailures(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	_, pid := lifeSleeper(t, r, id)

	for _, args := range [][]string{{"/bin/no-such-binary"}, {"no-such-command"}} {
		res := lifeRun(t, r, append([]string{"exec", id}, args...)...)
		msg := strings.ToLower(res.Stderr)
		if res.Code == 0 || !(strings.Contains(msg, "not found") || strings.Contains(msg, "no such file")) {
			t.Errorf("exec %s: %s; want a failure saying not found / no such file", args[0], res)
		}
		if !strings.Contains(res.Stderr, args[0]) {
			t.Errorf("exec %s: the error does not name the program: %q", args[0], res.Stderr)
		}
		// runc's status for an exec that could not run: a caller tells
		// it from the program's own 1.
		if res.Code != 255 {
			t.Errorf("exec %s: exit status %d, want 255", args[0], res.Code)
		}
	}
	res := lifeRun(t, r, "exec", "--pid-file", filepath.Join(t.TempDir(), "no", "dir", "pid"), id, "/bin/probe", "exit", "0")
	if res.Code != 255 || !strings.Contains(res.Stderr, "pid") {
		t.Errorf("exec with a pid file in a missing directory: %s; want status 255 and an error naming the pid file", res)
	}
	if !lifeAlive(pid) {
		t.Fatalf("a failed exec killed the container")
	}
	lifeFail(t, r, []string{"no-such-container"}, "exec", "no-such-container", "/bin/probe")
	lifeFail(t, r, []string{"usage"}, "exec", id) // no command

	// A stopped container.
	lifeMust(t, r, "kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	res = lifeRun(t, r, "exec", id, "/bin/probe", "exit", "0")
	msg := strings.ToLower(res.Stderr)
	if res.Code == 0 || !(strings.Contains(msg, "stopped") || strings.Contains(msg, "not running")) {
		t.Errorf("exec in a stopped container: %s; want a failure saying it is stopped / not running", res)
	}
}

// TestLifeExecCreatedAndAmbient: exec runs in a created container (its
// init waits for start with every namespace and mount in place), as runc
// execs there; and --cap adds an ambient capability where the process has
// an inheritable set, as runc's --cap does.
func TestLifeExecCreatedAndAmbient(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"), fixture.WithSpec(func(s *specs.Spec) {
		// Inheritable within the bounding set, as capset(2) demands.
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYSLOG")
		s.Process.Capabilities.Inheritable = []string{"CAP_CHOWN", "CAP_SYSLOG"}
	}))
	r.Must("create", "--bundle", b.Dir, id)
	t.Cleanup(func() { r.Exec("delete", "--force", id) })
	pid := r.State(id).Pid

	rep := lifeExecReport(t, r, id)
	lifeCompareNamespaces(t, rep, lifeNamespaces(t, pid))
	if s := r.State(id).Status; s != "created" {
		t.Errorf("exec changed the container's status to %q", s)
	}

	rep = lifeExecReport(t, r, id, "--cap", "CAP_SYSLOG")
	for set, caps := range map[string][]string{"effective": rep.Capabilities.Effective, "permitted": rep.Capabilities.Permitted,
		"ambient": rep.Capabilities.Ambient} {
		if !slices.Contains(caps, "CAP_SYSLOG") {
			t.Errorf("exec --cap CAP_SYSLOG with an inheritable set: %s set %v lacks it", set, caps)
		}
	}
	r.Must("start", id)
	r.Must("kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	r.Must("delete", id)
}
