package e2e

import (
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The cgroup driver: docker's --exec-opt native.cgroupdriver. Where
// systemd is PID 1 (the test guest of make test-vm) a container's cgroup
// is a transient scope in system.slice, with its limits, reported by
// docker info, and gone with the container; elsewhere the driver is
// refused with the reason. A typo is refused everywhere.
func TestCgroupDriver(t *testing.T) {
	requireRoot(t)
	berthd := filepath.Join(binDir(t), "berthd")
	dir := scratchDir(t)
	r := run(t, nil, nil, berthd, "--data-root", dir+"/d", "--exec-root", dir+"/r", "--exec-opt", "native.cgroupdriver=systemdd")
	if r.Code == 0 || !strings.Contains(r.Stderr, "invalid --exec-opt native.cgroupdriver=systemdd: want cgroupfs or systemd") {
		t.Errorf("a driver typo: exit %d, %q", r.Code, r.Stderr)
	}
	r = run(t, nil, nil, berthd, "--data-root", dir+"/d", "--exec-root", dir+"/r", "--exec-opt", "native.cgroupdrive=systemd")
	if r.Code == 0 || !strings.Contains(r.Stderr, `invalid --exec-opt "native.cgroupdrive=systemd"`) {
		t.Errorf("an option typo: exit %d, %q", r.Code, r.Stderr)
	}
	if fi, err := os.Lstat("/run/systemd/system"); err != nil || !fi.IsDir() {
		r = run(t, nil, nil, berthd, "--data-root", dir+"/d", "--exec-root", dir+"/r", "--exec-opt", "native.cgroupdriver=systemd")
		if r.Code == 0 || !strings.Contains(r.Stderr, "systemd is not running on this host") {
			t.Errorf("the systemd driver without systemd: exit %d, %q", r.Code, r.Stderr)
		}
		t.Skip("systemd is not PID 1 here: the systemd driver runs in make test-vm's guest")
	}

	ref := seed(t)
	d := startDaemon(t, "--exec-opt", "native.cgroupdriver=systemd")
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	if got := d.mustBerth(t, "info", "--format", "{{.CgroupDriver}}"); got != "systemd\n" {
		t.Errorf("info's cgroup driver: %q", got)
	}
	id := strings.TrimSpace(d.mustBerth(t, "run", "-d", "--network", "none", "--memory", "64m", "--pids-limit", "50", ref, "sleep", "1000"))
	unit := "berth-" + id + ".scope"
	if out := d.mustBerth(t, "exec", id, "cat", "/proc/self/cgroup"); out != "0::/\n" {
		// The container has a cgroup namespace rooted at its scope.
		t.Errorf("/proc/self/cgroup in the container: %q", out)
	}
	pid := strings.TrimSpace(d.mustBerth(t, "inspect", "-f", "{{.State.Pid}}", id))
	cg, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if want := "0::/system.slice/" + unit + "\n"; string(cg) != want {
		t.Errorf("the container's cgroup: %q, want %q", cg, want)
	}
	show, err := exec.Command("systemctl", "show", "-p", "ActiveState,MemoryMax,TasksMax", unit).Output()
	if err != nil {
		t.Fatalf("systemctl show %s: %v", unit, err)
	}
	for _, want := range []string{"ActiveState=active", fmt.Sprintf("MemoryMax=%d", 64<<20), "TasksMax=50"} {
		if !strings.Contains(string(show), want) {
			t.Errorf("systemctl show %s: %q lacks %s", unit, show, want)
		}
	}
	if out := d.mustBerth(t, "update", "--memory", "96m", "--memory-swap", "-1", id); strings.TrimSpace(out) != id {
		t.Errorf("update: %q", out)
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/system.slice/" + unit + "/memory.max"); err != nil || string(b) != fmt.Sprintf("%d\n", 96<<20) {
		t.Errorf("memory.max after update: %q (%v)", b, err)
	}
	d.mustBerth(t, "rm", "-f", id)
	if _, err := os.Stat("/sys/fs/cgroup/system.slice/" + unit); !os.IsNotExist(err) {
		t.Errorf("the scope's cgroup after rm: %v", err)
	}
	if out, _ := exec.Command("systemctl", "is-active", unit).Output(); strings.TrimSpace(string(out)) == "active" {
		t.Errorf("%s still active after rm", unit)
	}
}

// defaultCgroupDriver is the driver berthd picks without --exec-opt, as
// dockerd does: systemd where it is init on a cgroup2-only host.
func defaultCgroupDriver() string {
	var st unix.Statfs_t
	if fi, err := os.Lstat("/run/systemd/system"); err == nil && fi.IsDir() &&
		unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "systemd"
	}
	return "cgroupfs"
}
