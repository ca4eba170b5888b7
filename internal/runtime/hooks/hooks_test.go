package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The test binary doubles as a hook that records what it was given. It is
// recognised by its argv[0] or, when the hook has no args (argv is just the
// path), by an environment variable, since the hook's env is all it gets.
const (
	dumpArgv0 = "berth-hook-dump"
	dumpEnv   = "BERTH_HOOK_DUMP"
)

type dump struct {
	Args  []string
	Env   []string
	State specs.State
}

func TestMain(m *testing.M) {
	out := os.Getenv(dumpEnv)
	if filepath.Base(os.Args[0]) == dumpArgv0 && len(os.Args) > 1 {
		out = os.Args[1]
	}
	if out != "" {
		d := dump{Args: os.Args, Env: os.Environ()}
		in, err := io.ReadAll(os.Stdin)
		if err == nil {
			err = json.Unmarshal(in, &d.State)
		}
		if err == nil {
			b, _ := json.Marshal(d)
			err = os.WriteFile(out, b, 0o600)
		}
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var state = &specs.State{
	Version:     specs.Version,
	ID:          "c1",
	Status:      specs.StateCreating,
	Pid:         4242,
	Bundle:      "/run/bundle",
	Annotations: map[string]string{"a": "b"},
}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func sh(script string) specs.Hook {
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}}
}

func seconds(n int) *int { return &n }

func readDump(t *testing.T, path string) dump {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestArgvEnvAndState(t *testing.T) {
	dir := t.TempDir()
	exe := self(t)
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	hooks := []specs.Hook{
		// args[0] is argv[0], not the path; no env means an empty one.
		{Path: exe, Args: []string{dumpArgv0, first, "extra arg"}},
		// No args: argv is [path]; env is exactly what the hook says.
		{Path: exe, Env: []string{dumpEnv + "=" + second, "A=1", "B=two words"}},
	}
	os.Setenv("BERTH_RUNTIME_SECRET", "must not reach hooks")
	defer os.Unsetenv("BERTH_RUNTIME_SECRET")

	if err := Run(context.Background(), CreateRuntime, hooks, state); err != nil {
		t.Fatal(err)
	}
	d := readDump(t, first)
	if want := []string{dumpArgv0, first, "extra arg"}; !reflect.DeepEqual(d.Args, want) {
		t.Errorf("argv = %q, want %q", d.Args, want)
	}
	if len(d.Env) != 0 {
		t.Errorf("env = %q, want empty", d.Env)
	}
	if !reflect.DeepEqual(d.State, *state) {
		t.Errorf("state on stdin = %+v, want %+v", d.State, *state)
	}
	d = readDump(t, second)
	if want := []string{exe}; !reflect.DeepEqual(d.Args, want) {
		t.Errorf("argv = %q, want %q", d.Args, want)
	}
	if want := hooks[1].Env; !reflect.DeepEqual(d.Env, want) {
		t.Errorf("env = %q, want %q", d.Env, want)
	}
	if !reflect.DeepEqual(d.State, *state) {
		t.Errorf("state on stdin = %+v, want %+v", d.State, *state)
	}
}

func TestOrderAndStopAtFirstFailure(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	hooks := []specs.Hook{
		sh("echo one >> " + log),
		sh("echo two >> " + log),
		sh("echo three >> " + log + "; echo some output; echo boom >&2; exit 3"),
		sh("echo four >> " + log),
	}
	err := Run(context.Background(), Poststart, hooks, state)
	want := "poststart hook #2 (/bin/sh): exit status 3: some output\nboom"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	b, _ := os.ReadFile(log)
	if got := string(b); got != "one\ntwo\nthree\n" {
		t.Errorf("hooks ran as %q, want one, two, three and no more", got)
	}
}

func TestOutputBounded(t *testing.T) {
	err := Run(context.Background(), Poststop, []specs.Hook{
		sh(`i=0; while [ $i -lt 2000 ]; do echo "line $i of noise"; i=$((i+1)); done >&2; echo last words >&2; exit 1`),
	}, state)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if len(msg) > outputLimit+200 || !strings.HasSuffix(msg, "last words") || !strings.Contains(msg, ": ...") {
		t.Errorf("error of %d bytes, want at most ~%d ending in the last output and marked as cut: %.200q", len(msg), outputLimit, msg)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := sh("sleep 30 & echo $! > " + pidFile + "; wait")
	h.Timeout = seconds(1)
	start := time.Now()
	err := Run(context.Background(), CreateRuntime, []specs.Hook{h}, state)
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "createRuntime hook #0 (/bin/sh): timed out after 1s") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want a timeout after 1s", err)
	}
	// The sleep holds the output pipe: had only the shell been killed, Run
	// would also have waited waitDelay for it.
	if elapsed > 1900*time.Millisecond {
		t.Errorf("Run took %v for a 1s timeout", elapsed)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !gone(pid, 2*time.Second) {
		t.Errorf("the hook's child sleep (pid %d) outlived the timeout", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// gone waits for pid to exit (or become a zombie awaiting its new parent).
func gone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Run(ctx, Prestart, []specs.Hook{sh("sleep 30")}, state)
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out after") {
		t.Errorf("error = %v, want the context's own error", err)
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Errorf("Run took %v after the context ended", time.Since(start))
	}
}

func TestDaemonHoldingOutputDoesNotFailHook(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The background sleep leaves its own group and keeps stdout open.
	start := time.Now()
	err := Run(context.Background(), CreateRuntime, []specs.Hook{
		sh("setsid sleep 5 & echo $! > " + pidFile + "; exit 0"),
	}, state)
	if err != nil {
		t.Errorf("error = %v, want success", err)
	}
	if d := time.Since(start); d > waitDelay+time.Second {
		t.Errorf("Run took %v, want about waitDelay (%v)", d, waitDelay)
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestValidation(t *testing.T) {
	ran := filepath.Join(t.TempDir(), "ran")
	hooks := []specs.Hook{sh("touch " + ran), {Path: "bin/true"}}
	err := Run(context.Background(), StartContainer, hooks, state)
	if err == nil || !strings.Contains(err.Error(), `startContainer hook #1: path "bin/true" is not absolute`) {
		t.Errorf("error = %v", err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("a hook ran although a later one was invalid")
	}
	if err := Run(context.Background(), Poststop, []specs.Hook{sh("true")}, nil); err == nil {
		t.Error("nil state accepted")
	}
	if err := Run(context.Background(), Poststop, nil, nil); err != nil {
		t.Errorf("no hooks: %v", err)
	}
	if err := Run(context.Background(), Poststop, []specs.Hook{{Path: "/nonexistent/hook"}}, state); err == nil || !strings.Contains(err.Error(), "poststop hook #0 (/nonexistent/hook)") {
		t.Errorf("missing binary: error = %v", err)
	}

	if err := Validate(nil); err != nil {
		t.Errorf("Validate(nil) = %v", err)
	}
	ok := &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: seconds(5)}}, Poststop: []specs.Hook{{Path: "/bin/true"}}}
	if err := Validate(ok); err != nil {
		t.Errorf("Validate = %v", err)
	}
	for _, c := range []struct {
		h    *specs.Hooks
		want string
	}{
		{&specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}, {Path: "true"}}}, `hooks.poststop[1]: path "true" is not absolute`},
		{&specs.Hooks{Prestart: []specs.Hook{{Path: ""}}}, `hooks.prestart[0]: path "" is not absolute`},
		{&specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true", Timeout: seconds(0)}}}, `hooks.createContainer[0]: timeout 0 is not positive`},
		{&specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true", Timeout: seconds(-1)}}}, `hooks.startContainer[0]: timeout -1 is not positive`},
	} {
		err := Validate(c.h)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Validate = %v, want EINVAL containing %q", err, c.want)
		}
	}
}

func TestTail(t *testing.T) {
	var tl tail
	tl.Write([]byte("hello "))
	tl.Write([]byte("world\n"))
	if got := tl.String(); got != "hello world" {
		t.Errorf("String() = %q", got)
	}
	big := strings.Repeat("x", outputLimit-3) + "end"
	tl.Write([]byte(big))
	if got := tl.String(); got != "..."+big {
		t.Errorf("after a big write: %d bytes, truncated marker %v", len(got), strings.HasPrefix(got, "..."))
	}
	tl.Write([]byte("!"))
	if got := tl.String(); !strings.HasSuffix(got, "end!") || len(got) != outputLimit+3 {
		t.Errorf("after a small write: %d bytes ending %q", len(got), got[len(got)-5:])
	}
}
