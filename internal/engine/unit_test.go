package engine

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestDetachKeys(t *testing.T) {
	keys, err := parseDetachKeys("")
	if err != nil || !bytes.Equal(keys, []byte{16, 17}) {
		t.Fatalf("default keys %v %v", keys, err)
	}
	if k, err := parseDetachKeys("ctrl-a,x,ctrl-@,ctrl-["); err != nil || !bytes.Equal(k, []byte{1, 'x', 0, 27}) {
		t.Errorf("keys %v %v", k, err)
	}
	for _, bad := range []string{"ctrl-", "ctrl-ab", "xy", "ctrl-1"} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, c := range []struct {
		in, out  string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},
		{"a\x10b", "a\x10b", false},      // a partial sequence is passed on
		{"a\x10\x10\x11", "a\x10", true}, // the second ctrl-p starts over
		{"tail\x10", "tail\x10", false},  // held back, then flushed at EOF
	} {
		detached := false
		r := &detachReader{r: &oneByte{strings.NewReader(c.in)}, keys: keys, onDetach: func() { detached = true }}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != c.out || detached != c.detached {
			t.Errorf("%q: read %q detached=%v err=%v, want %q detached=%v", c.in, got, detached, err, c.out, c.detached)
		}
	}
}

// oneByte reads one byte at a time, splitting every sequence.
type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestParsePS(t *testing.T) {
	out := []byte("UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n" +
		"root         42       1  0 10:01 ?        00:00:00 sleep 1000\n" +
		"root         43       1  0 10:01 ?        00:00:00 sh -c echo hi there\n")
	r, err := parsePS(out, []int{42, 43})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Titles) != 8 || len(r.Processes) != 2 {
		t.Fatalf("top %+v", r)
	}
	if r.Processes[1][7] != "sh -c echo hi there" || r.Processes[0][1] != "42" {
		t.Errorf("rows %q", r.Processes)
	}
	if _, err := parsePS([]byte("USER COMMAND\nroot x\n"), nil); err == nil {
		t.Error("ps output without PID accepted")
	}
}

func TestParseTimestamp(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 500000000),
		"2024-01-02T03:04:05Z": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		got, err := parseTimestamp(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q = %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := parseTimestamp("yesterday", now); err == nil {
		t.Error("nonsense accepted")
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	old := hostResolvConf
	t.Cleanup(func() { hostResolvConf = old })
	hostResolvConf = filepath.Join(dir, "resolv.conf")
	os.WriteFile(hostResolvConf, []byte("# comment\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nsearch example.org\noptions ndots:2\n"), 0o644)
	got, err := resolvContent(&container.HostConfig{NetworkMode: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "nameserver 10.0.0.2\nsearch example.org\noptions ndots:2\n" {
		t.Errorf("resolv.conf %q", got)
	}
	got, _ = resolvContent(&container.HostConfig{NetworkMode: "host"})
	if !strings.Contains(string(got), "nameserver 127.0.0.1") {
		t.Errorf("host network lost the local server: %q", got)
	}
	os.WriteFile(hostResolvConf, []byte("nameserver 127.0.0.53\n"), 0o644)
	got, _ = resolvContent(&container.HostConfig{NetworkMode: "bridge", DNSSearch: []string{"a.b"}})
	if !strings.HasPrefix(string(got), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n") || !strings.Contains(string(got), "search a.b\n") {
		t.Errorf("fallback servers: %q", got)
	}
	got, _ = resolvContent(&container.HostConfig{DNS: []netip.Addr{netip.MustParseAddr("1.1.1.1")}, DNSOptions: []string{"rotate"}})
	if string(got) != "nameserver 1.1.1.1\noptions rotate\n" {
		t.Errorf("--dns: %q", got)
	}
}

func TestHosts(t *testing.T) {
	got, err := hostsContent(&container.HostConfig{NetworkMode: "bridge", ExtraHosts: []string{"db:10.0.0.5", "v6:::1", "eq=192.168.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.0.0.5\tdb\n", "::1\tv6\n", "192.168.0.1\teq\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("hosts %q lacks %q", got, want)
		}
	}
	for _, bad := range []string{"nocolon", "x:not-an-ip", ":1.2.3.4"} {
		if _, err := hostsContent(&container.HostConfig{ExtraHosts: []string{bad}}); err == nil {
			t.Errorf("--add-host %q accepted", bad)
		}
	}
}

func TestBindModes(t *testing.T) {
	for _, c := range []struct {
		mode   string
		bind   bool
		ok, rw bool
	}{
		{"", true, true, true},
		{"ro", true, true, false},
		{"ro,rshared", true, true, false},
		{"z,rw", false, true, true},
		{"nocopy", false, true, true},
		{"nocopy", true, false, false},
		{"rshared", false, false, false},
		{"ro,rw", true, false, false},
		{"bogus", true, false, false},
	} {
		m, err := parseMode("spec", c.mode, c.bind)
		if (err == nil) != c.ok || (c.ok && m.rw != c.rw) {
			t.Errorf("mode %q bind=%v: %+v %v", c.mode, c.bind, m, err)
		}
	}
}

func TestGeneratedNames(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		n := generateName(func(n string) bool { return seen[n] })
		if seen[n] || !validName.MatchString(n) {
			t.Fatalf("name %q repeated or invalid", n)
		}
		seen[n] = true
	}
	// With every short name taken, names still come.
	taken := func(n string) bool {
		return !strings.Contains(strings.TrimLeft(n, "/abcdefghijklmnopqrstuvwxyz_"), "_") && len(n) < 40
	}
	if n := generateName(taken); taken(n) {
		t.Errorf("name %q is taken", n)
	}
	if !slices.Equal([]string{"/ab"}, []string{mustNormalize(t, "ab")}) {
		t.Error("normalize")
	}
}

func mustNormalize(t *testing.T, s string) string {
	n, err := normalizeName(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
