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

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// podman is podman with storage, run state and configuration private to
// one test.
type podman struct {
	path    string
	runtime string
	dir     string
	global  []string // flags before the sub-command
	env     []string
	// runFlags go to every run: network and host-sized rlimits.
	runFlags []string
}

// newPodman prepares private podman configuration and storage, loads the
// fixture image, and cleans up when the test ends.
func newPodman(t *testing.T) *podman {
	t.Helper()
	paths := requireTools(t, "podman")
	image := fixture.Image(t)
	p := &podman{path: paths[0], runtime: runtimetest.Binary(t), dir: t.TempDir()}
	write := func(name, content string) string {
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Every path podman would otherwise take from /etc, /var/lib or /run.
	// The cgroup driver the tests drive (runtimetest.SystemdCgroup):
	// podman passes --systemd-cgroup to the runtime with "systemd".
	manager := "cgroupfs"
	if runtimetest.SystemdCgroup() {
		manager = "systemd"
	}
	conf := write("containers.conf", fmt.Sprintf(`[engine]
cgroup_manager = %q
events_logger = "file"
events_logfile_path = %q
tmp_dir = %q
volume_path = %q
static_dir = %q
image_copy_tmp_dir = %q

[network]
network_config_dir = %q
`, manager, filepath.Join(p.dir, "events.log"), filepath.Join(p.dir, "tmp"), filepath.Join(p.dir, "volumes"),
		filepath.Join(p.dir, "libpod"), filepath.Join(p.dir, "tmp"), filepath.Join(p.dir, "networks")))
	reg := write("registries.conf", "unqualified-search-registries = []\n")
	// TMPDIR: podman's temporary files, such as one of the two copies of
	// the oci-archive that "podman load" unpacks (see privateVar).
	if err := os.Mkdir(filepath.Join(p.dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	p.env = append(os.Environ(),
		"CONTAINERS_CONF="+conf,
		"CONTAINERS_REGISTRIES_CONF="+reg,
		"TMPDIR="+filepath.Join(p.dir, "tmp"),
	)
	t.Cleanup(func() { p.cleanup(t) })

	// overlay where this filesystem can hold it, vfs elsewhere.
	var loaded bool
	var last result
	for _, driver := range []string{"overlay", "vfs"} {
		storage := write("storage.conf", fmt.Sprintf("[storage]\ndriver = %q\ngraphroot = %q\nrunroot = %q\n",
			driver, filepath.Join(p.dir, "root"), filepath.Join(p.dir, "runroot")))
		p.env = append(p.env, "CONTAINERS_STORAGE_CONF="+storage)
		p.global = []string{
			"--root", filepath.Join(p.dir, "root"),
			"--runroot", filepath.Join(p.dir, "runroot"),
			"--tmpdir", filepath.Join(p.dir, "tmp"),
			"--storage-driver", driver,
			"--runtime", p.runtime,
			"--cgroup-manager", manager,
			"--events-backend", "file",
		}
		if debugEnabled() {
			p.global = append(p.global, "--log-level", "debug")
		}
		if last = run(p.privateVar(p.cmd("load", "-i", image)), 2*time.Minute); last.code == 0 {
			loaded = true
			break
		}
		t.Logf("podman load with the %s storage driver failed: %s", driver, last)
		run(p.cmd("system", "reset", "--force"), time.Minute)
		unmountUnder(t, p.dir)
	}
	if !loaded {
		t.Fatalf("podman load: %s", last)
	}

	// This host's root cannot raise RLIMIT_NOFILE (no CAP_SYS_RESOURCE),
	// so podman's default of 1048576 would fail in the container.
	p.runFlags = []string{"--network", "none"}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Max != unix.RLIM_INFINITY && lim.Max < 1<<20 {
		n := strconv.FormatUint(lim.Max, 10)
		p.runFlags = append(p.runFlags, "--ulimit", "nofile="+n+":"+n)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &lim); err == nil {
		n := uint64(32768)
		if lim.Max != unix.RLIM_INFINITY && lim.Max < n {
			n = lim.Max
		}
		s := strconv.FormatUint(n, 10)
		p.runFlags = append(p.runFlags, "--ulimit", "nproc="+s+":"+s)
	}
	return p
}

// cmd returns a podman command with the private flags and environment.
func (p *podman) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(p.path, append(append([]string{}, p.global...), args...)...)
	cmd.Env = p.env
	return cmd
}

// must runs podman and fails the test unless it exits 0.
func (p *podman) must(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	r := run(p.cmd(args...), timeout)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	return r
}

// privateVar makes cmd run in a mount namespace of its own with tmpfs
// mounts on /var/lib/containers (or, where that does not exist, /var/lib)
// and /var/tmp, unless the test's directory is under them. Loading an
// image writes where no option reaches: containers/image's blob info
// cache, for root always /var/lib/containers/cache, and a copy of the
// oci-archive that podman 4.3 unpacks in /var/tmp whatever TMPDIR and
// image_copy_tmp_dir say.
func (p *podman) privateVar(cmd *exec.Cmd) *exec.Cmd {
	const script = `hide() {
	case "$BERTH_PEERS_DIR/" in "$1"/*) return 0 ;; esac
	mount -t tmpfs -o "mode=$2" berth-peers "$1"
}
d=/var/lib/containers; [ -d "$d" ] || d=/var/lib
hide "$d" 0700 && hide /var/tmp 1777 && exec "$0" "$@"`
	wrapped := exec.Command("/bin/sh", append([]string{"-c", script}, cmd.Args...)...)
	wrapped.Env = append(cmd.Env, "BERTH_PEERS_DIR="+p.dir)
	wrapped.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return wrapped
}

// runArgs are "run", the common run flags, extra, the image and argv.
func (p *podman) runArgs(extra []string, argv ...string) []string {
	args := append([]string{"run"}, p.runFlags...)
	args = append(args, extra...)
	args = append(args, fixture.ImageName)
	return append(args, argv...)
}

// runtimeRoot is the runtime's default --root, which conmon leaves it.
func (p *podman) runtimeRoot() string {
	switch filepath.Base(p.runtime) {
	case "runc":
		return "/run/runc"
	case "crun":
		return "/run/crun"
	}
	return "/run/berth-runtime"
}

// cid reads a --cidfile.
func cid(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("container id: %v", err)
	}
	return strings.TrimSpace(string(data))
}

// checkGone fails the test if container id (full) left runtime state,
// cgroups or mounts behind.
func (p *podman) checkGone(t *testing.T, id string) {
	t.Helper()
	stateLeft(t, p.runtimeRoot(), id)
	// cgroupfs: <parent>/libpod-<id> (the parent is libpod_parent as
	// root); systemd: machine.slice/libpod-<id>.scope.
	if dirs := append(cgroupDirs("*/libpod-"+id), cgroupDirs("*/libpod-"+id+".scope")...); len(dirs) > 0 {
		t.Errorf("cgroups left behind: %s", strings.Join(dirs, " "))
	}
	for _, mp := range mountsUnder("/proc/self/mountinfo", p.dir) {
		if strings.Contains(mp, id) {
			t.Errorf("mount left behind: %s", mp)
		}
	}
}

// cleanup removes whatever containers a failed test left, the conmons of
// this storage root, runtime state and mounts.
func (p *podman) cleanup(t *testing.T) {
	ids := run(p.cmd("ps", "-a", "-q", "--no-trunc"), time.Minute)
	if ids.code == 0 {
		for _, id := range strings.Fields(ids.stdout) {
			r := run(p.cmd("rm", "-f", "-t", "0", id), time.Minute)
			t.Logf("clean-up: podman rm -f %s: exit %d", id[:12], r.code)
			if r.code != 0 {
				// The runtime's state cannot outlive the test.
				exec.Command(p.runtime, "--root", p.runtimeRoot(), "delete", "--force", id).Run()
			}
		}
	}
	if pids := killMatching(t, "conmon", filepath.Join(p.dir, "root")); len(pids) > 0 {
		t.Logf("clean-up: killed conmons %v", pids)
	}
	if t.Failed() {
		if events, err := os.ReadFile(filepath.Join(p.dir, "events.log")); err == nil {
			t.Logf("podman events:\n%s", clip(string(events)))
		}
	}
	unmountUnder(t, p.dir)
}

func TestPodman(t *testing.T) {
	p := newPodman(t)

	t.Run("run", func(t *testing.T) {
		cidFile := filepath.Join(p.dir, "run.cid")
		r := p.must(t, time.Minute, p.runArgs([]string{"--rm", "--cidfile", cidFile, "--hostname", "berth-peer"},
			"/bin/probe", "report")...)
		checkInit(t, parseReport(t, r.stdout), "berth-peer")
		p.checkGone(t, cid(t, cidFile))
	})

	t.Run("exit-status", func(t *testing.T) {
		cidFile := filepath.Join(p.dir, "status.cid")
		r := run(p.cmd(p.runArgs([]string{"--rm", "--cidfile", cidFile}, "/bin/probe", "exit", "3")...), time.Minute)
		if r.code != 3 {
			t.Errorf("want exit status 3: %s", r)
		}
		p.checkGone(t, cid(t, cidFile))
	})

	t.Run("tty", func(t *testing.T) {
		cidFile := filepath.Join(p.dir, "tty.cid")
		r := runOnPty(t, p.cmd(p.runArgs([]string{"--rm", "-t", "--cidfile", cidFile}, "/bin/probe", "tty")...),
			time.Minute, 24, 80)
		checkTerminal(t, r, 24, 80)
		p.checkGone(t, cid(t, cidFile))
	})

	t.Run("detached", func(t *testing.T) {
		const name = "berth-peers-detached"
		r := p.must(t, time.Minute, p.runArgs([]string{"-d", "--name", name}, "/bin/probe", "sleep", "inf")...)
		id := strings.TrimSpace(r.stdout)
		// conmon passes no --root: the state is under the default root.
		if _, err := os.Stat(filepath.Join(p.runtimeRoot(), id)); err != nil {
			t.Errorf("runtime state not under the runtime's default root %s: %v", p.runtimeRoot(), err)
		}
		r = p.must(t, 30*time.Second, "inspect", "--format", "{{.State.Pid}} {{.State.Status}}", name)
		f := strings.Fields(r.stdout)
		if len(f) != 2 || f[1] != "running" {
			t.Fatalf("podman inspect: %q, want a pid and running", r.stdout)
		}
		pid, _ := strconv.Atoi(f[0])

		r = p.must(t, time.Minute, "exec", name, "/bin/probe", "report")
		checkJoined(t, parseReport(t, r.stdout), pid)

		r = run(p.cmd("exec", name, "/bin/probe", "exit", "4"), time.Minute)
		if r.code != 4 {
			t.Errorf("exec: want exit status 4: %s", r)
		}

		r = runOnPty(t, p.cmd("exec", "-t", name, "/bin/probe", "tty"), time.Minute, 30, 100)
		checkTerminal(t, r, 30, 100)

		p.must(t, 30*time.Second, "pause", name)
		p.must(t, 30*time.Second, "unpause", name)

		// The probe ends on SIGTERM, podman's stop signal.
		p.must(t, time.Minute, "rm", "-f", name)
		p.checkGone(t, id)
		if r := p.must(t, 30*time.Second, "ps", "-a", "-q"); strings.TrimSpace(r.stdout) != "" {
			t.Errorf("podman ps -a after rm: %q", r.stdout)
		}
	})
}
