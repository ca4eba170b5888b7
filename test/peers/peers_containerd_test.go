package peers_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// containerd is a containerd daemon private to one test.
type containerd struct {
	t       *testing.T
	ctrPath string
	runtime string // --runc-binary
	dir     string // the test's temporary directory: root, state, sockets
	sock    string
	ns      string // containerd namespace of the test's containers
	fifoDir string // ctr --fifo-dir
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startContainerd starts containerd with everything under a temporary
// directory, in a private mount namespace with a tmpfs on /run (see the
// package doc), waits for its socket and imports the fixture image. It is
// stopped, and what it left cleaned up, when the test ends.
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	paths := requireTools(t, "containerd", "ctr", "containerd-shim-runc-v2")
	image := fixture.Image(t)
	c := &containerd{
		t:       t,
		ctrPath: paths[1],
		runtime: runtimetest.Binary(t),
		dir:     t.TempDir(),
		ns:      fmt.Sprintf("berth-peers-%d", os.Getpid()),
		exited:  make(chan struct{}),
	}
	c.sock = filepath.Join(c.dir, "containerd.sock")
	c.fifoDir = filepath.Join(c.dir, "fifo")
	c.logPath = filepath.Join(c.dir, "containerd.log")
	config := filepath.Join(c.dir, "config.toml")
	// The v1 linux runtime stays: containerd 1.6's tasks service needs it.
	err := os.WriteFile(config, []byte(fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  address = ""
  level = "debug"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = %[6]q
`, filepath.Join(c.dir, "root"), filepath.Join(c.dir, "state"), c.sock, c.sock+".ttrpc",
		filepath.Join(c.dir, "opt"), filepath.Join(c.dir, "runtime-v1"))), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	// sh mounts the tmpfs inside the new mount namespace (which Go makes
	// recursively private) and becomes containerd. For the systemd cgroup
	// driver, the runtime the shims start must still see systemd's
	// /run/systemd (how it knows systemd is PID 1, and its private bus
	// socket) and the D-Bus system socket in /run/dbus: they are moved
	// over the tmpfs, in this mount namespace only.
	script := `mount -t tmpfs -o mode=0755,size=64m berth-peers /run && exec "$0" --config "$1"`
	if runtimetest.SystemdCgroup() {
		script = `keep=$2 && mkdir "$keep" "$keep/systemd" "$keep/dbus" &&
mount --rbind /run/systemd "$keep/systemd" && mount --rbind /run/dbus "$keep/dbus" &&
mount -t tmpfs -o mode=0755,size=64m berth-peers /run && mkdir /run/systemd /run/dbus &&
mount --move "$keep/systemd" /run/systemd && mount --move "$keep/dbus" /run/dbus &&
exec "$0" --config "$1"`
	}
	c.cmd = exec.Command("/bin/sh", "-c", script, paths[0], config, filepath.Join(c.dir, "run-keep"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Its temporary mounts and the shims' process.json files and console
	// sockets go under TMPDIR.
	tmp := filepath.Join(c.dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	c.cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.stop)

	up := waitFor(30*time.Second, func() bool {
		select {
		case <-c.exited:
			return true
		default:
		}
		return run(exec.Command(c.ctrPath, "--address", c.sock, "version"), 10*time.Second).code == 0
	})
	select {
	case <-c.exited:
		t.Fatalf("containerd exited: %v\nlog:\n%s", c.cmd.ProcessState, tail(c.logPath, 40))
	default:
	}
	if !up {
		t.Fatalf("containerd's socket %s did not answer in 30s\nlog:\n%s", c.sock, tail(c.logPath, 40))
	}
	c.must(t, 2*time.Minute, "images", "import", image)
	return c
}

// ctr returns a ctr command for the test's socket and namespace. TMPDIR:
// to read the image's users ctr mounts the rootfs for a moment under it.
func (c *containerd) ctr(args ...string) *exec.Cmd {
	cmd := exec.Command(c.ctrPath, append([]string{"--address", c.sock, "--namespace", c.ns}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(c.dir, "tmp"))
	return cmd
}

// runArgs are ctr's arguments to run container id from the fixture image
// with flags and argv: through the runtime under test, and with the
// systemd cgroup driver when the tests drive it (runtimetest.SystemdCgroup):
// the shim then passes --systemd-cgroup, and the container's cgroup is a
// scope named by cgroupsPath.
func (c *containerd) runArgs(id string, flags []string, argv ...string) []string {
	args := append([]string{"run", "--fifo-dir", c.fifoDir, "--runc-binary", c.runtime}, flags...)
	if runtimetest.SystemdCgroup() {
		args = append(args, "--runc-systemd-cgroup", "--cgroup", c.cgroupsPath(id))
	}
	return append(append(args, fixture.ImageName, id), argv...)
}

// cgroupsPath is container id's linux.cgroupsPath: containerd's default,
// /<namespace>/<id>, or a scope in a slice of the namespace's name.
func (c *containerd) cgroupsPath(id string) string {
	return runtimetest.CgroupsPath(c.ns, id)
}

// must runs ctr and fails the test unless it exits 0.
func (c *containerd) must(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	r := run(c.ctr(args...), timeout)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	return r
}

// runcRoot is the runtime's --root: the shim passes
// /run/containerd/runc/<namespace>, here in containerd's mount namespace.
func (c *containerd) runcRoot() string {
	return filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "root", "run/containerd/runc", c.ns)
}

// bundle is where the shim keeps the container's bundle and mounts its
// rootfs.
func (c *containerd) bundle(id string) string {
	return filepath.Join(c.dir, "state", "io.containerd.runtime.v2.task", c.ns, id)
}

// task returns the pid and status of the task id from "ctr task ls", or
// status "" when there is no such task.
func (c *containerd) task(t *testing.T, id string) (pid int, status string) {
	t.Helper()
	r := c.must(t, 30*time.Second, "task", "ls")
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			pid, _ = strconv.Atoi(f[1])
			return pid, f[2]
		}
	}
	return 0, ""
}

// waitStatus waits until the task has the status.
func (c *containerd) waitStatus(t *testing.T, id, want string) {
	t.Helper()
	var last string
	if !waitFor(15*time.Second, func() bool {
		_, last = c.task(t, id)
		return last == want
	}) {
		t.Fatalf("task %s: status %q, want %q", id, last, want)
	}
}

// checkGone fails the test if container id left runtime state, cgroups or
// its rootfs mount behind.
func (c *containerd) checkGone(t *testing.T, id string) {
	t.Helper()
	stateLeft(t, c.runcRoot(), id)
	if dirs := cgroupDirs(strings.TrimPrefix(runtimetest.CgroupDir(c.cgroupsPath(id)), "/")); len(dirs) > 0 {
		t.Errorf("cgroups left behind: %s", strings.Join(dirs, " "))
	}
	mountinfo := filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "mountinfo")
	if mps := mountsUnder(mountinfo, c.bundle(id)); len(mps) > 0 {
		t.Errorf("mounts left behind in containerd's namespace: %s", strings.Join(mps, " "))
	}
}

// stop removes leftover containers, checks the runtime's root is empty,
// stops containerd, kills its shims and undoes mounts and cgroups.
func (c *containerd) stop() {
	t := c.t
	running := true
	select {
	case <-c.exited:
		running = false
	default:
	}
	if running {
		// Whatever a failed test left.
		if r := run(c.ctr("task", "ls", "-q"), 30*time.Second); r.code == 0 {
			for _, id := range strings.Fields(r.stdout) {
				run(c.ctr("task", "kill", "-s", "SIGKILL", id), 30*time.Second)
				run(c.ctr("task", "delete", "--force", id), 30*time.Second)
				t.Logf("clean-up: removed task %s", id)
			}
		}
		if r := run(c.ctr("containers", "ls", "-q"), 30*time.Second); r.code == 0 {
			for _, id := range strings.Fields(r.stdout) {
				run(c.ctr("containers", "delete", id), 30*time.Second)
				t.Logf("clean-up: removed container %s", id)
			}
		}
		if entries, err := os.ReadDir(c.runcRoot()); err == nil && len(entries) > 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("runtime state left under containerd's runc root %s: %s",
				strings.TrimPrefix(c.runcRoot(), filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "root")),
				strings.Join(names, " "))
		}
	}
	if t.Failed() {
		t.Logf("containerd log (last 150 lines; shim and runtime errors are in it):\n%s", tail(c.logPath, 150))
	}
	if running {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
	// A shim outlives containerd; its command line names our socket.
	if pids := killMatching(t, "containerd-shim-runc-v2", c.sock); len(pids) > 0 {
		t.Logf("clean-up: killed shims %v", pids)
	}
	unmountUnder(t, c.dir)
	removeCgroupDirs(t, c.ns+"/*")
	removeCgroupDirs(t, c.ns)
}

func TestContainerd(t *testing.T) {
	c := startContainerd(t)
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("run", func(t *testing.T) {
		r := c.must(t, time.Minute, c.runArgs("run", []string{"--rm"}, "/bin/probe", "report")...)
		// ctr's default spec sets no hostname: the new UTS namespace keeps
		// the host's name.
		checkInit(t, parseReport(t, r.stdout), hostname)
		c.checkGone(t, "run")
	})

	t.Run("exit-status", func(t *testing.T) {
		r := run(c.ctr(c.runArgs("status", []string{"--rm"}, "/bin/probe", "exit", "3")...), time.Minute)
		if r.code != 3 {
			t.Errorf("want exit status 3: %s", r)
		}
		c.checkGone(t, "status")
	})

	t.Run("tty", func(t *testing.T) {
		r := runOnPty(t, c.ctr(c.runArgs("tty", []string{"--rm", "-t"}, "/bin/probe", "tty")...), time.Minute, 24, 80)
		checkTerminal(t, r, 24, 80)
		c.checkGone(t, "tty")
	})

	t.Run("detached", func(t *testing.T) {
		const id = "detached"
		c.must(t, time.Minute, c.runArgs(id, []string{"-d"}, "/bin/probe", "sleep", "inf")...)
		pid, status := c.task(t, id)
		if status != "RUNNING" || pid <= 0 {
			t.Fatalf("task %s: pid %d status %q after run -d, want RUNNING", id, pid, status)
		}
		// The state is where the shim's --root points.
		if _, err := os.Stat(filepath.Join(c.runcRoot(), id)); err != nil {
			t.Errorf("runtime state not under the shim's --root /run/containerd/runc/%s: %v", c.ns, err)
		}

		// task ps asks the runtime: "ps --format json".
		r := c.must(t, 30*time.Second, "task", "ps", id)
		if !strings.Contains(r.stdout, strconv.Itoa(pid)) {
			t.Errorf("ctr task ps does not list the init pid %d:\n%s", pid, r.stdout)
		}

		r = c.must(t, time.Minute, "task", "exec", "--fifo-dir", c.fifoDir, "--exec-id", "report", id, "/bin/probe", "report")
		checkJoined(t, parseReport(t, r.stdout), pid)

		r = run(c.ctr("task", "exec", "--fifo-dir", c.fifoDir, "--exec-id", "x", id, "/bin/probe", "exit", "5"), time.Minute)
		if r.code != 5 {
			t.Errorf("exec: want exit status 5: %s", r)
		}

		r = run(c.ctr("task", "exec", "--fifo-dir", c.fifoDir, "--exec-id", "out", id, "/bin/probe", "cat", "/etc/passwd"), time.Minute)
		if r.code != 0 || !strings.Contains(r.stdout, "root:") {
			t.Errorf("exec: want /etc/passwd on stdout: %s", r)
		}

		r = runOnPty(t, c.ctr("task", "exec", "-t", "--fifo-dir", c.fifoDir, "--exec-id", "tty", id, "/bin/probe", "tty"), time.Minute, 30, 100)
		checkTerminal(t, r, 30, 100)

		c.must(t, 30*time.Second, "task", "pause", id)
		c.waitStatus(t, id, "PAUSED")
		c.must(t, 30*time.Second, "task", "resume", id)
		c.waitStatus(t, id, "RUNNING")

		// The probe ends on SIGTERM, ctr's default signal.
		c.must(t, 30*time.Second, "task", "kill", id)
		c.waitStatus(t, id, "STOPPED")
		c.must(t, 30*time.Second, "task", "delete", id)
		c.must(t, 30*time.Second, "containers", "delete", id)
		c.checkGone(t, id)
	})
}
