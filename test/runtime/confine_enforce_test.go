package runtime_test

// Limits the kernel enforces: the OOM killer under a memory limit (and the
// `events` stream reporting it), a fork bomb under a pids limit, the device
// cgroup, and `events --stats` on a busy container.

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// confineEvent is one line of `events`, with the parts of the stats the
// tests look at.
type confineEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data *struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage uint64 `json:"usage"`
				Limit uint64 `json:"limit"`
			} `json:"usage"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
			Limit   uint64 `json:"limit"`
		} `json:"pids"`
	} `json:"data"`
}

// confineParseEvents decodes every line of events output.
func confineParseEvents(t testing.TB, out string) []confineEvent {
	t.Helper()
	var evs []confineEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var ev confineEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("events line is not JSON: %v: %s", err, line)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestConfineMemoryOOM: a memory hog under 32 MiB (memory+swap the same,
// so no swap) is killed by the OOM killer, and `events --interval`
// running meanwhile prints an "oom" event for the container.
func TestConfineMemoryOOM(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	// The shell keeps the 200 MiB of the command substitution in memory.
	b := confineBundle(t, id, fixture.WithArgs("/bin/sh", "-c", `x=$(head -c 200m /dev/zero | tr "\000" a); echo done ${#x}`),
		fixture.WithSpec(func(s *specs.Spec) {
			limit := int64(32 * confineMiB)
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
		}))
	c := confineCreate(t, r, b, id)

	evDir := t.TempDir()
	evOut, evErrPath := evDir+"/stdout", evDir+"/stderr"
	evDone := make(chan confineResult, 1)
	ev := r.Command("events", "--interval", "100ms", id)
	go func() { evDone <- confineRunCmd(t, ev, evOut, evErrPath, 90*time.Second) }()
	events := func() string { b, _ := os.ReadFile(evOut); return string(b) }
	// Let events set up its watch before the hog starts.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(events(), `"stats"`) {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(evErrPath)
			t.Fatalf("events printed no stats line in 10s; stderr: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	confineMust(t, r, "start", id)
	r.WaitStatus(id, "stopped", 60*time.Second)
	stdout, stderr := c.output(t)
	if strings.Contains(stdout, "done") {
		t.Errorf("the hog finished under a 32 MiB limit: %q", stdout)
	}

	// events ends when the container stops.
	select {
	case res := <-evDone:
		if res.Code != 0 {
			t.Errorf("events: %s", res)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("events still running 10s after the container stopped")
		ev.Process.Kill()
		<-evDone
	}
	var oom, stats int
	for _, e := range confineParseEvents(t, events()) {
		if e.ID != id {
			t.Errorf("event for %q, want %q: %+v", e.ID, id, e)
		}
		switch e.Type {
		case "oom":
			oom++
		case "stats":
			stats++
		}
	}
	if stats == 0 {
		t.Errorf("no stats event:\n%s", events())
	}
	// The kernel counted the OOM kill in the cgroup. systemd removes a
	// scope's cgroup, counter and all, once its last process is gone: on
	// cgroup2 the kill's event is read from that counter, and a removal
	// that comes first (systemd is quicker than the watch on a slow
	// guest) leaves nothing to read. runc's watch has the same window.
	cg := confineCgroupOf(t, id)
	file := "memory.oom_control"
	if cg.v2 {
		file = "memory.events"
	}
	if runtimetest.SystemdCgroup() && !cg.exists("memory", file, file) {
		if oom == 0 {
			t.Logf("no oom event: the scope's cgroup went before its counter was read")
		}
		t.Logf("%s: the scope's cgroup is gone; the oom event stands for the kernel's count", file)
		return
	}
	if oom == 0 {
		t.Errorf("no oom event; container stdout %q stderr %q; events:\n%s", stdout, stderr, events())
	}
	content := cg.read("memory", file, file)
	if n := confineKeyValue(content, "oom_kill"); n < 1 {
		t.Errorf("%s: %q, want oom_kill >= 1", file, content)
	}
}

// confineKeyValue returns the number after key in "key N" lines, -1 if
// there is no such line.
func confineKeyValue(content, key string) int64 {
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// TestConfinePidsLimit: a fork bomb stops at the pids limit.
func TestConfinePidsLimit(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	b := confineBundle(t, id, fixture.WithSpec(func(s *specs.Spec) {
		limit := int64(10)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	}))
	res := confineRun(t, r, b, id, "/bin/probe", "fork", "100")
	if res.Code != 0 {
		t.Fatalf("probe fork: %s", res)
	}
	var f report.Fork
	if err := json.Unmarshal([]byte(res.Stdout), &f); err != nil {
		t.Fatalf("parse probe fork: %v: %s", err, res.Stdout)
	}
	// The probe and its Go threads count too: at most 9 children fit.
	if f.Started >= 10 {
		t.Errorf("started %d of %d children under pids limit 10", f.Started, f.Requested)
	}
	if f.Errno != "EAGAIN" {
		t.Errorf("fork failed with %q (%s), want EAGAIN", f.Errno, f.Error)
	}
	confineNoLeftovers(t, r, id)
}

// TestConfineDevices: with [deny all, allow c 1:3] the default devices
// still work (the runtime allows them after the spec's rules), a node made
// with mknod for an allowed device works, and a device no rule allows
// cannot be opened nor made, whatever file exists for it.
func TestConfineDevices(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	one, three := int64(1), int64(3)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: &one, Minor: &three, Access: "rwm"},
	}
	// /dev/net/tun (c 10:200): opening it needs no capability, so only
	// the device cgroup can refuse it.
	tun := specs.LinuxDevice{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200}
	b := confineBundle(t, id, fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.Resources.Devices = rules
		s.Linux.Devices = []specs.LinuxDevice{tun}
	}))
	script := `
for d in /dev/null /dev/zero /dev/urandom /dev/net/tun; do echo "open $d $(/bin/probe open $d rw)"; done
echo "mknod-null $(/bin/probe mknod /tmp/null)"
echo "open-mknod-null $(/bin/probe open /tmp/null rw)"
echo "write-mknod-null $(echo x > /tmp/null && echo ok)"
mknod /tmp/tun c 10 200 2>/dev/null && echo "mknod-tun ok" || echo "mknod-tun EPERM"
`
	res := confineRun(t, r, b, id, "/bin/sh", "-c", script)
	if res.Code != 0 {
		t.Fatalf("run: %s", res)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			got[line[:i]] = line[i+1:]
		}
	}
	for what, want := range map[string]string{
		"open /dev/null": "ok", "open /dev/zero": "ok", "open /dev/urandom": "ok",
		"open /dev/net/tun": "EPERM",
		"mknod-null":        "ok", "open-mknod-null": "ok", "write-mknod-null": "ok",
		"mknod-tun": "EPERM",
	} {
		if got[what] != want {
			t.Errorf("%s: %q, want %q\n(stdout %q, stderr %q)", what, got[what], want, res.Stdout, res.Stderr)
		}
	}

	// The same device allowed by a rule is usable: the refusal above was
	// the cgroup's, not the kernel's.
	id2 := confineID(t)
	ten, twoHundred := int64(10), int64(200)
	b2 := confineBundle(t, id2, fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.Resources.Devices = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &ten, Minor: &twoHundred, Access: "rw"})
		s.Linux.Devices = []specs.LinuxDevice{tun}
	}))
	res = confineRun(t, r, b2, id2, "/bin/probe", "open", "/dev/net/tun", "rw")
	if strings.TrimSpace(res.Stdout) != "ok" {
		t.Errorf("open /dev/net/tun allowed by rule c 10:200 rw: %s", res)
	}
	// Allowed for reading and writing, not for mknod.
	res = confineRun(t, r, b2, id2, "/bin/sh", "-c", "mknod /tmp/tun c 10 200 2>/dev/null && echo ok || echo EPERM")
	if strings.TrimSpace(res.Stdout) != "EPERM" {
		t.Errorf("mknod of c 10:200 allowed only rw: %s", res)
	}
}

// TestConfineEventsStats: `events --stats` on a busy container prints one
// line with real numbers.
func TestConfineEventsStats(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	b := confineBundle(t, id, fixture.WithArgs("/bin/sh", "-c", "/bin/probe sleep 100 & while :; do :; done"),
		fixture.WithSpec(func(s *specs.Spec) {
			// Keep the busy loop from taking a whole CPU of the host.
			quota, period := int64(20000), uint64(100000)
			pids := int64(64)
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
		}))
	confineStart(t, r, b, id)
	time.Sleep(500 * time.Millisecond)
	res := confineMust(t, r, "events", "--stats", id)
	evs := confineParseEvents(t, res.Stdout)
	if len(evs) != 1 {
		t.Fatalf("events --stats printed %d lines, want 1:\n%s", len(evs), res.Stdout)
	}
	e := evs[0]
	if e.Type != "stats" || e.ID != id || e.Data == nil {
		t.Fatalf("events --stats: %s, want type stats, id %s and data", res.Stdout, id)
	}
	if e.Data.CPU.Usage.Total == 0 {
		t.Errorf("cpu usage total is 0 for a busy container: %s", res.Stdout)
	}
	if e.Data.Memory.Usage.Usage == 0 {
		t.Errorf("memory usage is 0: %s", res.Stdout)
	}
	if e.Data.Pids.Current < 2 {
		t.Errorf("pids current %d, want >= 2 (the shell and its child): %s", e.Data.Pids.Current, res.Stdout)
	}
	if e.Data.Pids.Limit != 64 {
		t.Errorf("pids limit %d, want 64: %s", e.Data.Pids.Limit, res.Stdout)
	}
	// CPU time grows.
	time.Sleep(300 * time.Millisecond)
	again := confineParseEvents(t, confineMust(t, r, "events", "--stats", id).Stdout)
	if len(again) != 1 || again[0].Data == nil || again[0].Data.CPU.Usage.Total <= e.Data.CPU.Usage.Total {
		t.Errorf("cpu usage did not grow on a busy container: first %d, then %+v", e.Data.CPU.Usage.Total, again)
	}
	confineMust(t, r, "delete", "--force", id)
	confineNoLeftovers(t, r, id)
	// A container that is gone has no stats.
	confineFails(t, "events --stats of a deleted container", confineExec(t, r, "events", "--stats", id), id)
}
