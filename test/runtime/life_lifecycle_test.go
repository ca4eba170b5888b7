package runtime_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// TestLifeCreateStartKillDelete walks one container through the whole
// lifecycle and checks what runc users rely on at each step.
func TestLifeCreateStartKillDelete(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	id := lifeID(t)
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	tr := lifeBaseline(t, r, b, id)

	lifeMust(t, r, "create", "--bundle", b.Dir, "--pid-file", pidFile, id)
	s := r.State(id)
	if s.Status != "created" {
		t.Fatalf("after create: status %q, want created", s.Status)
	}
	if s.Pid <= 0 {
		t.Fatalf("after create: pid %d, want > 0", s.Pid)
	}
	if !lifeAlive(s.Pid) {
		t.Fatalf("after create: init %d is not alive", s.Pid)
	}
	tr.record(t, s.Pid)
	// The user's program must not run before start: the process is still
	// the runtime's init waiting on its fifo.
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(s.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(argv) < 2 || argv[1] != "init" {
		t.Errorf("after create: init cmdline %q, want the runtime's init (argv[1] \"init\")", argv)
	}
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(s.Pid) + "/exe"); strings.HasSuffix(exe, "/bin/probe") {
		t.Errorf("after create: init already executes %s", exe)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("--pid-file: %v", err)
	}
	if got, err := strconv.Atoi(strings.TrimSpace(string(data))); err != nil || got != s.Pid {
		t.Errorf("--pid-file holds %q, want %d", data, s.Pid)
	}

	lifeMust(t, r, "start", id)
	s2 := r.State(id)
	if s2.Status != "running" || s2.Pid != s.Pid {
		t.Fatalf("after start: status %q pid %d, want running with pid %d", s2.Status, s2.Pid, s.Pid)
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(s.Pid) + "/exe")
	if err != nil || !strings.HasSuffix(exe, "/bin/probe") {
		t.Errorf("after start: /proc/%d/exe is %q (%v), want the probe", s.Pid, exe, err)
	}

	// Default signal: SIGTERM, which the probe handles by exiting.
	lifeWaitCatches(t, s.Pid, syscall.SIGTERM)
	lifeMust(t, r, "kill", id)
	r.WaitStatus(id, "stopped", 10*time.Second)

	lifeMust(t, r, "delete", id)
	if err := lifeStateErr(r, id); err == nil {
		t.Errorf("state %s works after delete", id)
	}
	if ids := lifeListIDs(t, r); len(ids) != 0 {
		t.Errorf("list after delete: %v, want empty", ids)
	}
	tr.assertGone(t, r)
}

// TestLifeKillSignals checks the signal spellings kill accepts: each stops
// a probe that ignores nothing but would survive a missing signal.
func TestLifeKillSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []string{"KILL", "SIGKILL", "9", "TERM", "15"} {
		t.Run(sig, func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
			id := lifeID(t)
			pid := lifeStart(t, r, b, id)
			lifeWaitCatches(t, pid, syscall.SIGTERM)
			lifeMust(t, r, "kill", id, sig)
			r.WaitStatus(id, "stopped", 10*time.Second)
			if lifeAlive(pid) {
				t.Errorf("init %d alive after kill %s", pid, sig)
			}
			lifeMust(t, r, "delete", id)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
		id := lifeID(t)
		pid := lifeStart(t, r, b, id)
		lifeFail(t, r, []string{"SIGNOPE"}, "kill", id, "SIGNOPE")
		if !lifeAlive(pid) {
			t.Errorf("init %d died of an unknown signal name", pid)
		}
	})
}

// TestLifeWrongStates checks the transitions runc refuses.
func TestLifeWrongStates(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	id := lifeID(t)

	lifeFail(t, r, []string{id}, "start", id) // does not exist
	lifeFail(t, r, nil, "kill", id)
	lifeFail(t, r, nil, "delete", id)

	lifeMust(t, r, "create", "--bundle", b.Dir, id)
	pid := r.State(id).Pid
	lifeMust(t, r, "start", id)
	// start twice
	lifeFail(t, r, nil, "start", id)
	if s := r.State(id); s.Status != "running" || s.Pid != pid {
		t.Errorf("after a second start: status %q pid %d, want running %d", s.Status, s.Pid, pid)
	}
	// delete of a running container without --force
	lifeFail(t, r, []string{"running"}, "delete", id)
	if s := r.State(id); s.Status != "running" || !lifeAlive(pid) {
		t.Errorf("after a refused delete: status %q, init alive %v; want it untouched", s.Status, lifeAlive(pid))
	}

	// Signal 0 signals nothing: it says the container is there.
	lifeMust(t, r, "kill", id, "0")
	if !lifeAlive(pid) {
		t.Fatal("kill 0 killed the init")
	}
	lifeMust(t, r, "kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	// start and kill of a stopped container; runc's words, which
	// scripts look for.
	lifeFail(t, r, nil, "start", id)
	lifeFail(t, r, []string{"container not running"}, "kill", id)
	lifeFail(t, r, []string{"container not running"}, "kill", id, "KILL")
	lifeFail(t, r, []string{"container not running"}, "kill", id, "0")
	// delete of a stopped container needs no --force
	lifeMust(t, r, "delete", id)
}

// TestLifeDeleteForce deletes running and created containers with --force,
// and a missing one.
func TestLifeDeleteForce(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)

	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	id := lifeID(t)
	tr := lifeBaseline(t, r, b, id)
	pid := lifeStart(t, r, b, id)
	tr.record(t, pid)
	lifeMust(t, r, "delete", "--force", id)
	tr.assertGone(t, r)

	// A created container: delete without --force works (runc) and kills
	// the waiting init.
	b2 := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	id2 := lifeID(t)
	tr2 := lifeBaseline(t, r, b2, id2)
	lifeMust(t, r, "create", "--bundle", b2.Dir, id2)
	tr2.record(t, r.State(id2).Pid)
	lifeMust(t, r, "delete", id2)
	tr2.assertGone(t, r)

	// Repeatable clean-up: a missing id with --force is not an error.
	lifeMust(t, r, "delete", "--force", lifeID(t))
	lifeMust(t, r, "delete", "-f", "no-such-container")
	lifeFail(t, r, nil, "delete", "no-such-container")
}

// TestLifeDuplicateID checks that a second create with a used id fails and
// leaves the first container as it was.
func TestLifeDuplicateID(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	other := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "exit", "0"))
	id := lifeID(t)
	lifeMust(t, r, "create", "--bundle", b.Dir, id)
	before := r.State(id)

	lifeFail(t, r, []string{id}, "create", "--bundle", other.Dir, id)

	after := r.State(id)
	if after.Status != "created" || after.Pid != before.Pid || after.Bundle != before.Bundle || !after.Created.Equal(before.Created) {
		t.Errorf("first container changed by the duplicate create: %+v, was %+v", after, before)
	}
	if !lifeAlive(before.Pid) {
		t.Fatalf("init of the first container died")
	}
	if ids := lifeListIDs(t, r); !slices.Equal(ids, []string{id}) {
		t.Errorf("list: %v, want [%s]", ids, id)
	}
	// It still starts, with its own bundle's program.
	lifeMust(t, r, "start", id)
	if s := r.State(id); s.Status != "running" {
		t.Errorf("first container after start: %q, want running", s.Status)
	}
}

// TestLifeKillAll checks that kill --all reaches every process of the
// container, not only the init. The container shares the host's pid
// namespace so that the init's death does not take the child with it: only
// --all can kill both.
func TestLifeKillAll(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/sh", "-c", "/bin/probe sleep 100 & exec /bin/probe sleep 100"),
		fixture.WithSpec(func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
				return n.Type == specs.PIDNamespace
			})
		}))
	id := lifeID(t)
	pid := lifeStart(t, r, b, id)

	var pids []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		lifeDecode(t, "ps --format json", r.Must("ps", "--format", "json", id), &pids)
		if len(pids) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) != 2 || !slices.Contains(pids, pid) {
		t.Fatalf("processes of the container: %v, want the init %d and its background child", pids, pid)
	}
	lifeMust(t, r, "kill", "--all", id, "KILL")
	for _, p := range pids {
		if !lifeWaitDead(p, 10*time.Second) {
			t.Errorf("process %d survived kill --all", p)
		}
	}
	r.WaitStatus(id, "stopped", 10*time.Second)
	lifeMust(t, r, "delete", id)
}

// TestLifeRunForeground checks run's exit status, stdio and clean-up.
func TestLifeRunForeground(t *testing.T) {
	t.Parallel()
	t.Run("exit-status", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "exit", "7"))
		id := lifeID(t)
		tr := lifeBaseline(t, r, b, id)
		res := lifeRun(t, r, "run", "--bundle", b.Dir, id)
		if res.Code != 7 {
			t.Errorf("run of probe exit 7: %s; want exit status 7", res)
		}
		if ids := lifeListIDs(t, r); len(ids) != 0 {
			t.Errorf("list after a foreground run: %v, want empty", ids)
		}
		tr.assertGone(t, r)
	})
	t.Run("stdio", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		b := fixture.Bundle(t, fixture.WithArgs("/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; read line; echo read:$line"))
		id := lifeID(t)
		cmd := r.Command("run", "--bundle", b.Dir, id)
		cmd.Stdin = strings.NewReader("from-stdin\n")
		res := lifeRunCmd(t, cmd, 60*time.Second)
		if res.Code != 0 {
			t.Fatalf("run: %s", res)
		}
		if res.Stdout != "to-stdout\nread:from-stdin\n" {
			t.Errorf("stdout %q, want %q", res.Stdout, "to-stdout\nread:from-stdin\n")
		}
		if res.Stderr != "to-stderr\n" {
			t.Errorf("stderr %q, want %q", res.Stderr, "to-stderr\n")
		}
	})
	t.Run("killed-by-signal", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		// sh as pid 1 of its namespace ignores SIGTERM; the kernel's SIGKILL
		// is what ends it: status 128+9, as a shell reports it.
		b := fixture.Bundle(t, fixture.WithArgs("/bin/sh", "-c", "kill -9 $$; sleep 5"))
		id := lifeID(t)
		b.Spec.Linux.Namespaces = slices.DeleteFunc(b.Spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.PIDNamespace
		})
		b.Save(t)
		res := lifeRun(t, r, "run", "--bundle", b.Dir, id)
		if res.Code != 128+int(syscall.SIGKILL) {
			t.Errorf("run of a container killed by SIGKILL: %s; want 137", res)
		}
	})
	t.Run("keep", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "exit", "3"))
		id := lifeID(t)
		res := lifeRun(t, r, "run", "--keep", "--bundle", b.Dir, id)
		if res.Code != 3 {
			t.Errorf("run --keep: %s; want exit status 3", res)
		}
		if ids := lifeListIDs(t, r); !slices.Equal(ids, []string{id}) {
			t.Fatalf("list after run --keep: %v, want [%s]", ids, id)
		}
		if s := r.State(id); s.Status != "stopped" {
			t.Errorf("state after run --keep: %q, want stopped", s.Status)
		}
		lifeMust(t, r, "delete", id)
	})
}

// TestLifeRunDetached checks that run -d returns at once with the container
// running.
func TestLifeRunDetached(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	id := lifeID(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	res := lifeMust(t, r, "run", "-d", "--pid-file", pidFile, "--bundle", b.Dir, id)
	if res.Elapsed > 20*time.Second {
		t.Errorf("run -d took %s", res.Elapsed)
	}
	s := r.State(id)
	if s.Status != "running" {
		t.Fatalf("after run -d: status %q, want running", s.Status)
	}
	data, _ := os.ReadFile(pidFile)
	if strings.TrimSpace(string(data)) != strconv.Itoa(s.Pid) {
		t.Errorf("--pid-file %q, want %d", data, s.Pid)
	}
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(s.Pid) + "/exe")
	if !strings.HasSuffix(exe, "/bin/probe") {
		t.Errorf("init runs %q, want the probe", exe)
	}
	lifeMust(t, r, "kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	lifeMust(t, r, "delete", id)
}

// TestLifeNoLeftovers checks what delete removes, after a normal stop and
// after the init was killed from outside the runtime.
func TestLifeNoLeftovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, r *runtimetest.Runtime, id string, pid int)
	}{
		{"kill-then-delete", func(t *testing.T, r *runtimetest.Runtime, id string, pid int) {
			lifeMust(t, r, "kill", id, "KILL")
			r.WaitStatus(id, "stopped", 10*time.Second)
			lifeMust(t, r, "delete", id)
		}},
		{"outside-kill-9", func(t *testing.T, r *runtimetest.Runtime, id string, pid int) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			r.WaitStatus(id, "stopped", 10*time.Second)
			lifeMust(t, r, "delete", id)
		}},
		{"force-running", func(t *testing.T, r *runtimetest.Runtime, id string, pid int) {
			lifeMust(t, r, "delete", "--force", id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			// A copy: no fixture mount under the bundle, so any mount that
			// refers to it is the container's.
			b := fixture.Bundle(t, fixture.WithCopy(),
				fixture.WithArgs("/bin/sh", "-c", "/bin/probe sleep 1000 & exec /bin/probe sleep 1000"))
			id := lifeID(t)
			tr := lifeBaseline(t, r, b, id)
			if len(tr.mountBase) != 0 {
				t.Fatalf("mounts under a copied bundle before the container: %v", tr.mountBase)
			}
			pid := lifeStart(t, r, b, id)
			tr.record(t, pid)
			tc.stop(t, r, id, pid)
			tr.assertGone(t, r)
		})
	}
}

// TestLifeCgroupsPath checks that linux.cgroupsPath (an absolute path, or
// with the systemd driver a scope in a slice) is where the container lands
// on every hierarchy, and that delete removes it.
func TestLifeCgroupsPath(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	cg := lifeUniqueCgroup(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"),
		fixture.WithSpec(func(s *specs.Spec) { s.Linux.CgroupsPath = cg }))
	id := lifeID(t)
	tr := lifeBaseline(t, r, b, id)
	pid := lifeStart(t, r, b, id)
	tr.record(t, pid)

	dir := runtimetest.CgroupDir(cg)
	seen := map[string]bool{}
	for _, c := range tr.cgroups {
		if c.Path != dir {
			t.Errorf("/proc/%d/cgroup: %q, want path %s", pid, c.Line, dir)
		}
		if c.Controllers == "" {
			seen["unified"] = true
		}
		for _, ctl := range strings.Split(c.Controllers, ",") {
			seen[ctl] = true
		}
	}
	for _, m := range lifeCgroupMounts(t) {
		name := "unified"
		if !m.Unified {
			name = m.Controllers[0]
		}
		if !seen[name] {
			t.Errorf("hierarchy %s (%s) missing from /proc/%d/cgroup", name, m.Mountpoint, pid)
		}
	}
	// The pids the runtime reports are those of the cgroup it was told.
	procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", dir, "cgroup.procs"))
	if err == nil && strings.TrimSpace(string(procs)) != strconv.Itoa(pid) {
		t.Errorf("%s/cgroup.procs: %q, want %d", dir, procs, pid)
	}
	lifeMust(t, r, "delete", "--force", id)
	tr.assertGone(t, r)
}
