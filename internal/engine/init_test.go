package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
)

// initBinary is berth-init: $BERTH_BIN_DIR's (make test), else compiled
// from cmd/berth-init for the test.
func initBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN_DIR"); dir != "" {
		if p := filepath.Join(dir, "berth-init"); fileExists(p) {
			return p
		}
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler to build berth-init")
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "cmd", "berth-init", "berth-init.c")
	bin := filepath.Join(t.TempDir(), "berth-init")
	if out, err := exec.Command(cc, "-static", "-Os", "-Wall", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("build berth-init: %v\n%s", err, out)
	}
	return bin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// leaveZombies orphans two short-lived processes (their parent, a
// subshell, exits at once, so PID 1 inherits them) and becomes a
// program that never reaps a child; zombieCount counts the container's
// zombies.
const (
	leaveZombies = `(sleep 0.1 &); (sleep 0.1 &); exec sleep 1000`
	zombieCount  = `n=0; for s in /proc/[0-9]*/stat; do case "$(cat $s 2>/dev/null)" in *") Z "*) n=$((n+1));; esac; done; echo $n`
)

// --init: berth-init is PID 1 and reaps the orphans a shell would leave
// as zombies, passes exit codes through, forwards signals to the
// program, and dies by the signal that killed it (128+N).
func TestInit(t *testing.T) {
	bin := initBinary(t)
	v := newEnv(t, func(c *engine.Config) { c.InitPath = bin })
	yes := true

	// Without an init, PID 1 is a program that reaps nothing and the
	// orphans stay zombies: what makes the check with one mean
	// something.
	zombies := func(init bool) string {
		id := v.create("", sh(leaveZombies), &container.HostConfig{Init: &init})
		v.start(id)
		time.Sleep(time.Second)
		n := strings.TrimSpace(v.execOut(id, "sh", "-c", zombieCount))
		v.e.Kill(ctx(t), id, "KILL")
		v.wait(id, container.WaitConditionNotRunning)
		return n
	}
	if n := zombies(false); n != "2" {
		t.Fatalf("without --init: %s zombies, want 2", n)
	}
	if n := zombies(true); n != "0" {
		t.Errorf("with --init: %s zombies, want 0", n)
	}
	// Exit codes pass through.
	id := v.create("", sh("exit 42"), &container.HostConfig{Init: &yes})
	v.start(id)
	if code := v.wait(id, container.WaitConditionNotRunning); code != 42 {
		t.Errorf("--init: exit %d, want the program's 42", code)
	}

	// Signals sent to the container reach the program through the init.
	id = v.create("", sh(`trap 'echo got USR1' USR1; trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.05; done`), &container.HostConfig{Init: &yes})
	v.start(id)
	pid := v.inspect(id).State.Pid
	if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); !strings.HasPrefix(string(cmd), "/sbin/docker-init\x00--\x00sh\x00") {
		t.Errorf("PID 1 runs %q, want /sbin/docker-init -- sh ...", cmd)
	}
	waitFor(t, 10*time.Second, "the trap to be set", func() bool { o, _ := v.logsOf(id); return o == "ready\n" })
	if err := v.e.Kill(ctx(t), id, "USR1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "USR1 to reach the program", func() bool { o, _ := v.logsOf(id); return strings.Contains(o, "got USR1") })
	if r := v.inspect(id); !r.State.Running {
		t.Fatalf("USR1 stopped the container: %+v", r.State)
	}
	if err := v.e.Kill(ctx(t), id, "TERM"); err != nil {
		t.Fatal(err)
	}
	if code := v.wait(id, container.WaitConditionNotRunning); code != 5 {
		t.Errorf("exit after TERM %d, want the trap's 5", code)
	}

	// A program killed by a signal: the init exits with 128+N.
	id = v.create("", sh(`echo ready; while :; do sleep 0.05; done`), &container.HostConfig{Init: &yes})
	v.start(id)
	waitFor(t, 10*time.Second, "the program", func() bool { o, _ := v.logsOf(id); return o == "ready\n" })
	if err := v.e.Kill(ctx(t), id, "HUP"); err != nil {
		t.Fatal(err)
	}
	if code := v.wait(id, container.WaitConditionNotRunning); code != 129 {
		t.Errorf("exit after HUP %d, want 129", code)
	}
	// A program that is not there: the shell's 127.
	id = v.create("", &container.Config{Cmd: []string{"nosuchcmd"}}, &container.HostConfig{Init: &yes})
	v.start(id)
	if code := v.wait(id, container.WaitConditionNotRunning); code != 127 {
		t.Errorf("--init nosuchcmd: exit %d, want 127", code)
	}
}
