package runtimeclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogError(t *testing.T) {
	log := `{"level":"info","msg":"starting","time":"2024-01-01T00:00:00Z"}
{"level":"error","msg":"first","time":"2024-01-01T00:00:00Z"}
not json at all
{"msg":"error opening file ` + "`/run/crun/x/status`" + `: No such file or directory","level":"error","time":"2024-01-01T00:00:00.1Z"}
{"level":"warning","msg":"later warning"}
`
	if got := logError([]byte(log)); !strings.HasPrefix(got, "error opening file") {
		t.Errorf("logError = %q, want crun's last error", got)
	}
	if got := logError([]byte(`{"level":"warning","msg":"w"}`)); got != "" {
		t.Errorf("logError of warnings only = %q", got)
	}
}

func TestClassify(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "exists"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := &Runtime{Root: root}
	cases := []struct {
		op, id, msg string
		want        error
	}{
		{"kill", "gone", "anything", ErrNotExist},
		{"kill", "exists", "container not running", ErrNotRunning},
		{"kill", "exists", "kill: container is not running: exists", ErrNotRunning},
		{"start", "exists", "exec: no such file", nil},
		{"create", "gone", "bundle config.json does not exist", nil},
		{"create", "exists", "container with id exists already", ErrExist},
		{"create", "exists", "create: container already exists: exists", ErrExist},
	}
	for _, c := range cases {
		if got := r.classify(c.op, c.id, c.msg); got != c.want {
			t.Errorf("classify(%s %s %q) = %v, want %v", c.op, c.id, c.msg, got, c.want)
		}
	}
	// Without a root the messages decide.
	r = &Runtime{}
	if got := r.classify("state", "x", "container does not exist"); got != ErrNotExist {
		t.Errorf("without root: %v", got)
	}
}

// A runtime that cannot be started is an *Error with status -1, wrapping
// the cause.
func TestMissingBinary(t *testing.T) {
	r := &Runtime{Path: filepath.Join(t.TempDir(), "no-runtime")}
	err := r.Start(context.Background(), "x")
	var e *Error
	if !errors.As(err, &e) || e.Status != -1 || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("start with a missing binary: %#v", err)
	}
}

// The command line, log parsing and classification, against a stand-in
// runtime that records its arguments and fails like runc.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "fake-runtime")
	argsFile := filepath.Join(dir, "args")
	body := `#!/bin/sh
echo "$@" > ` + argsFile + `
while [ $# -gt 0 ]; do
  case "$1" in --log) log="$2"; shift;; esac
  shift
done
echo '{"level":"error","msg":"container not running","time":"2024-01-01T00:00:00Z"}' >> "$log"
echo 'runc-style stderr' >&2
exit 1
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "c1"), 0o700)
	r := &Runtime{Path: script, Root: root, SystemdCgroup: true}
	err := r.Kill(context.Background(), "c1", 9, true)
	var e *Error
	if !errors.As(err, &e) || e.Msg != "container not running" || e.Status != 1 || e.Op != "kill" || !errors.Is(err, ErrNotRunning) {
		t.Errorf("kill: %#v", err)
	}
	if want := "runtime kill c1: container not running"; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	args, _ := os.ReadFile(argsFile)
	fields := strings.Fields(string(args))
	if len(fields) != 11 || fields[0] != "--root" || fields[1] != root || fields[2] != "--systemd-cgroup" ||
		fields[3] != "--log" || !strings.HasPrefix(fields[4], "/proc/") || fields[5] != "--log-format" || fields[6] != "json" ||
		strings.Join(fields[7:], " ") != "kill --all c1 9" {
		t.Errorf("command line %q", args)
	}
}
