package socket

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/berth/berthd.sock": "/run/berth/berthd.sock",
		"/tmp/x/../b.sock":              "/tmp/b.sock",
		"unix:///a//b.sock":             "/a/b.sock",
	} {
		if got, err := ParseHost(in); err != nil || got != want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"tcp://0.0.0.0:2375":   "does not serve the API over TCP",
		"unix://relative.sock": "must be absolute",
		"fd://":                "unsupported scheme",
		"localhost:2375":       "unsupported scheme",
	} {
		if _, err := ParseHost(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHost(%q) err = %v, want %q", in, err, want)
		}
	}
}

func TestListenModeAndStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "api.sock")
	gid := os.Getgid()
	l, err := Listen(path, gid)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != Mode {
		t.Errorf("socket mode %o, want %o", fi.Mode().Perm(), Mode)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid {
		t.Errorf("socket gid %d, want %d", st.Gid, gid)
	}
	// A crashed daemon leaves its socket behind; the next one replaces it.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l, err = Listen(path, gid)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()

	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o600)
	if _, err := Listen(plain, gid); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

func TestGroupID(t *testing.T) {
	if _, err := GroupID("no-such-group-berth-test"); err == nil {
		t.Error("unknown group accepted")
	}
	if gid, err := GroupID("0"); err != nil || gid != 0 {
		t.Errorf("numeric group: %d, %v", gid, err)
	}
	if _, err := GroupID(""); err != nil {
		t.Errorf("default group: %v", err)
	}
}
