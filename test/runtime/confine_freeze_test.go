package runtime_test

// The freezer (pause, resume, delete --force of a paused container) and
// kill --all, which must reach every process of the cgroup: children,
// orphans reparented outside the container, frozen ones.

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// confineLastCount returns the last number "probe spin" printed, 0 if none.
func confineLastCount(t testing.TB, c *confineStarted) int {
	t.Helper()
	out, _ := c.output(t)
	lines := strings.Fields(out)
	if len(lines) == 0 {
		return 0
	}
	n, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		// A line being written: take the one before.
		if len(lines) < 2 {
			return 0
		}
		n, _ = strconv.Atoi(lines[len(lines)-2])
	}
	return n
}

// confineWaitCount waits until the counter passes after.
func confineWaitCount(t testing.TB, c *confineStarted, after int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if n := confineLastCount(t, c); n > after {
			return n
		}
		if time.Now().After(deadline) {
			out, errOut := c.output(t)
			t.Fatalf("counter did not pass %d in %s; stdout %q stderr %q", after, d, out, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// confineFreezerState returns the container's freezer state as the host
// shows it: "FROZEN"/"THAWED" (v1) or "1"/"0" (cgroup.freeze on v2).
func confineFreezerState(t testing.TB, id string) string {
	t.Helper()
	return confineCgroupOf(t, id).read("freezer", "freezer.state", "cgroup.freeze")
}

// TestConfinePauseResume: a paused container makes no progress and shows
// "paused"; resumed, it goes on and shows "running"; paused again, delete
// --force removes it and everything it had.
func TestConfinePauseResume(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "spin"))
	c := confineStart(t, r, b, id)
	n := confineWaitCount(t, c, 2, 10*time.Second)

	confineMust(t, r, "pause", id)
	if s := r.State(id).Status; s != "paused" {
		t.Errorf("status after pause: %q, want paused", s)
	}
	if f := confineFreezerState(t, id); f != "FROZEN" && f != "1" {
		t.Errorf("freezer state after pause: %q, want FROZEN (v1) or 1 (v2)", f)
	}
	// Whatever was being printed as pause returned has landed by now.
	time.Sleep(150 * time.Millisecond)
	frozen := confineLastCount(t, c)
	time.Sleep(500 * time.Millisecond)
	if got := confineLastCount(t, c); got != frozen {
		t.Errorf("counter went from %d to %d while paused", frozen, got)
	}
	if frozen < n {
		t.Errorf("counter went back from %d to %d", n, frozen)
	}
	// A second pause is an error or a no-op, never a hang; the container
	// stays paused either way.
	confineExec(t, r, "pause", id)
	if s := r.State(id).Status; s != "paused" {
		t.Errorf("status after a second pause: %q, want paused", s)
	}

	confineMust(t, r, "resume", id)
	if s := r.State(id).Status; s != "running" {
		t.Errorf("status after resume: %q, want running", s)
	}
	confineWaitCount(t, c, frozen+2, 10*time.Second)
	// Resuming a running container is refused.
	confineFails(t, "resume of a running container", confineExec(t, r, "resume", id))

	confineMust(t, r, "pause", id)
	r.WaitStatus(id, "paused", 5*time.Second)
	pids := confineProcs(t, id)
	// A plain delete of a paused container is refused: it is not stopped.
	confineFails(t, "delete of a paused container", confineExec(t, r, "delete", id))
	confineMust(t, r, "delete", "--force", id)
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		if !confineWaitDead(p, time.Until(deadline)) {
			t.Errorf("process %d of the paused container survived delete --force", p)
		}
	}
	confineNoLeftovers(t, r, id)
}

// TestConfinePausedKill: SIGKILL to the init of a paused container takes
// effect (runc thaws the cgroup after it: a task frozen by the v1 freezer
// does not die until thawed).
func TestConfinePausedKill(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "spin"))
	c := confineStart(t, r, b, id)
	confineWaitCount(t, c, 1, 10*time.Second)
	confineMust(t, r, "pause", id)
	r.WaitStatus(id, "paused", 5*time.Second)
	confineMust(t, r, "kill", id, "KILL")
	if !confineWaitDead(c.pid, 10*time.Second) {
		t.Errorf("init %d of the paused container survived SIGKILL (freezer %s)", c.pid, confineFreezerState(t, id))
	}
	r.WaitStatus(id, "stopped", 10*time.Second)
	confineMust(t, r, "delete", id)
	confineNoLeftovers(t, r, id)
}

// TestConfinePauseStates: pause and resume need a running container.
func TestConfinePauseStates(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "exit", "0"))
	confineCreate(t, r, b, id)
	confineFails(t, "resume of a created container", confineExec(t, r, "resume", id))
	confineMust(t, r, "start", id)
	r.WaitStatus(id, "stopped", 10*time.Second)
	confineFails(t, "pause of a stopped container", confineExec(t, r, "pause", id))
	confineFails(t, "pause of a missing container", confineExec(t, r, "pause", id+"-missing"), id+"-missing")
}

// confineWaitProcs waits until the container's cgroup holds at least n
// processes and returns them.
func confineWaitProcs(t testing.TB, r *runtimetest.Runtime, id string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pids []int
		out := confineMust(t, r, "ps", "--format", "json", id).Stdout
		if err := json.Unmarshal([]byte(out), &pids); err != nil {
			t.Fatalf("ps --format json: %v: %s", err, out)
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: %d processes after 10s (%v), want %d", id, len(pids), pids, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConfineKillAll: kill --all reaches the init, its children, a
// grandchild and an orphan that left the init's tree (the container
// shares the host's pid namespace, so the orphan is reparented outside
// it and the init's death alone would not kill it).
func TestConfineKillAll(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		paused bool
	}{{"running", false}, {"paused", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			id := confineID(t)
			script := `(/bin/probe sleep 100 &); /bin/sh -c '/bin/probe sleep 100 & wait' & /bin/probe sleep 100 & exec /bin/probe sleep 100`
			b := confineBundle(t, id, fixture.WithArgs("/bin/sh", "-c", script), fixture.WithSpec(func(s *specs.Spec) {
				s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
					return n.Type == specs.PIDNamespace
				})
			}))
			c := confineStart(t, r, b, id)
			// init, orphan, sh and its child, one more child.
			pids := confineWaitProcs(t, r, id, 5)
			if !slices.Contains(pids, c.pid) {
				t.Fatalf("ps %v does not list the init %d", pids, c.pid)
			}
			orphans := 0
			for _, p := range pids {
				if ppid := confinePPid(p); p != c.pid && ppid != c.pid && !slices.Contains(pids, ppid) {
					orphans++
				}
			}
			if orphans == 0 {
				t.Logf("no process of %v left the init's tree; kill --all is still checked on the rest", pids)
			}
			if tc.paused {
				confineMust(t, r, "pause", id)
				r.WaitStatus(id, "paused", 5*time.Second)
			}
			confineMust(t, r, "kill", "--all", id, "KILL")
			deadline := time.Now().Add(10 * time.Second)
			for _, p := range pids {
				if !confineWaitDead(p, time.Until(deadline)) {
					t.Errorf("process %d survived kill --all", p)
				}
			}
			r.WaitStatus(id, "stopped", 10*time.Second)
			// The listing above may have missed a process forked after
			// it (the shells fork their children after the count was
			// reached). kill --all reaches it too, but a killed process
			// leaves the cgroup only when it runs its exit, which a busy
			// host may delay: wait for the cgroup to empty.
			for got := confineProcs(t, id); len(got) != 0; got = confineProcs(t, id) {
				if time.Now().After(deadline) {
					t.Errorf("cgroup still holds %v 10s after kill --all", got)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			confineMust(t, r, "delete", id)
			confineNoLeftovers(t, r, id)
		})
	}
}

// confinePPid returns the parent of pid, 0 if it is gone.
func confinePPid(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}
