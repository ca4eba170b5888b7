package shim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
)

// waitShed waits until the shim at pid runs as its next image (shed.go),
// which its command line shows.
func waitShed(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			t.Fatalf("shim %d: %v", pid, err)
		}
		if strings.Contains(string(data), "\x00--resume-fd\x00") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shim %d did not shed: %q", pid, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShed: an idle shim re-executes itself and goes on serving the same
// container: a wait begun before still gets the exit, the log goes on
// without a gap (an unterminated line included), exec, pause and kill
// work, and the shim keeps its pid.
func TestShed(t *testing.T) {
	r := newRig(t, []string{"/bin/sh", "-c",
		`trap "exit 5" TERM; i=0; while true; do echo out$i; printf p$i >&2; i=$((i+1)); sleep 0.05; done`})
	c := r.spawn()
	ctx := ctxT(t)
	shimPid := r.shimPid()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	type result struct {
		e   *Exit
		err error
	}
	waited := make(chan result, 1)
	go func() {
		e, err := c.Wait(ctx)
		waited <- result{e, err}
	}()
	waitShed(t, shimPid)
	before := stdoutLines(r)
	if r.shimPid() != shimPid {
		t.Errorf("shim.pid %d after the shed, was %d", r.shimPid(), shimPid)
	}
	st, err := c.State(ctx)
	if err != nil || st.Status != StatusRunning || st.Pid != c.InitPid() || st.StartedAt.IsZero() {
		t.Fatalf("state after the shed: %+v, %v", st, err)
	}
	e, err := c.Exec(ctx, ExecOptions{ID: "after", Process: &specs.Process{Args: []string{"/bin/sh", "-c", "exit 2"}, Cwd: "/", Env: []string{fixture.DefaultPath}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if x, err := e.Wait(ctx); err != nil || x.Code != 2 {
		t.Errorf("exec after the shed: %+v, %v", x, err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx); st.Status != StatusPaused {
		t.Errorf("status %s after pause", st.Status)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// More output, logged by the next image.
	for deadline := time.Now().Add(10 * time.Second); stdoutLines(r) < before+3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no output logged after the shed (%d lines before it)", before)
		}
	}
	if err := c.Kill(ctx, syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	w := <-waited
	if w.err != nil || w.e.Code != 5 {
		t.Fatalf("wait begun before the shed: %+v, %v", w.e, w.err)
	}
	got := map[string]string{}
	for _, m := range r.logMessages() {
		got[m.Stream] += string(m.Line)
	}
	lines := strings.Split(strings.TrimSuffix(got["stdout"], "\n"), "\n")
	n := len(lines)
	if before == 0 || n < before+3 {
		t.Fatalf("%d lines logged, %d of them before the shed", n, before)
	}
	var wantOut, wantErr strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&wantOut, "out%d\n", i)
		fmt.Fprintf(&wantErr, "p%d", i)
	}
	if got["stdout"] != wantOut.String() {
		t.Errorf("stdout logged with a gap:\n%s", got["stdout"])
	}
	// stderr may be a piece ahead or behind stdout.
	if e := got["stderr"]; !strings.HasPrefix(wantErr.String()+fmt.Sprintf("p%d", n), e) || len(e) < len(wantErr.String())-len(fmt.Sprintf("p%d", n-1)) {
		t.Errorf("stderr logged with a gap:\n%s", e)
	}
}

// stdoutLines counts the complete stdout lines in r's log.
func stdoutLines(r *rig) int {
	n := 0
	for _, m := range r.logMessages() {
		if m.Stream == "stdout" && !m.Partial {
			n++
		}
	}
	return n
}
