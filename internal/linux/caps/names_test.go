package caps

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestNameTableRoundTrip(t *testing.T) {
	all := All()
	if len(all) != unix.CAP_LAST_CAP+1 {
		t.Fatalf("table has %d names, x/sys knows %d capabilities: update names.go", len(all), unix.CAP_LAST_CAP+1)
	}
	for n, name := range all {
		got, ok := Number(name)
		if !ok || got != n {
			t.Errorf("Number(%q) = %d, %v; want %d", name, got, ok, n)
		}
		if Name(n) != name {
			t.Errorf("Name(%d) = %q, want %q", n, Name(n), name)
		}
	}
	// Spot checks against the kernel's numbers as x/sys spells them.
	for name, want := range map[string]int{
		"CAP_CHOWN":              unix.CAP_CHOWN,
		"CAP_SETPCAP":            unix.CAP_SETPCAP,
		"CAP_NET_RAW":            unix.CAP_NET_RAW,
		"CAP_SYS_ADMIN":          unix.CAP_SYS_ADMIN,
		"CAP_SYS_RESOURCE":       unix.CAP_SYS_RESOURCE,
		"CAP_AUDIT_READ":         unix.CAP_AUDIT_READ,
		"CAP_PERFMON":            unix.CAP_PERFMON,
		"CAP_BPF":                unix.CAP_BPF,
		"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
	} {
		if got, _ := Number(name); got != want {
			t.Errorf("Number(%q) = %d, want %d", name, got, want)
		}
	}
	if Name(63) != "cap_63" {
		t.Errorf("Name(63) = %q", Name(63))
	}
	if _, ok := Number("cap_chown"); ok {
		t.Error("lower-case name accepted; the spec spells names in upper case")
	}
}

func TestSet(t *testing.T) {
	var s Set
	s = s.With(unix.CAP_CHOWN).With(unix.CAP_CHECKPOINT_RESTORE).With(64).With(-1)
	// Bit n for capability n, the kernel's layout; numbers outside 0-63
	// change nothing.
	if want := Set(1<<unix.CAP_CHOWN | 1<<unix.CAP_CHECKPOINT_RESTORE); s != want {
		t.Fatalf("set %#x, want %#x", uint64(s), uint64(want))
	}
	if !s.Has(0) || !s.Has(40) || s.Has(1) || s.Has(64) || s.Has(-1) {
		t.Fatalf("Has disagrees with set %#x", uint64(s))
	}
}

func TestParseNames(t *testing.T) {
	s, ignored, err := ParseNames([]string{"CAP_KILL", "CAP_BPF", "CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"}, 38)
	if err != nil {
		t.Fatal(err)
	}
	if want := Set(0).With(unix.CAP_KILL).With(unix.CAP_CHOWN); s != want {
		t.Errorf("set = %#x, want %#x", uint64(s), uint64(want))
	}
	if strings.Join(ignored, " ") != "CAP_BPF CAP_CHECKPOINT_RESTORE" {
		t.Errorf("ignored = %v", ignored)
	}

	for _, bad := range []string{"CAP_FLY", "chown", "cap_chown", "", "CAP_CHOWN "} {
		_, _, err := ParseNames([]string{"CAP_KILL", bad}, 40)
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("ParseNames(%q) error = %v, want one naming it", bad, err)
		}
	}
}

func TestFromSpec(t *testing.T) {
	s, ignored, err := FromSpec(nil, 40)
	if err != nil || s != (Sets{}) || ignored != nil {
		t.Fatalf("FromSpec(nil) = %+v, %v, %v; want empty sets", s, ignored, err)
	}

	c := &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_BPF"},
		Effective:   []string{"CAP_CHOWN"},
		Permitted:   []string{"CAP_CHOWN", "CAP_KILL"},
		Inheritable: []string{"CAP_KILL", "CAP_BPF"},
		Ambient:     []string{"CAP_KILL", "CAP_CHOWN"},
	}
	s, ignored, err = FromSpec(c, 38)
	if err != nil {
		t.Fatal(err)
	}
	want := Sets{
		Bounding:    Set(0).With(unix.CAP_CHOWN).With(unix.CAP_KILL),
		Effective:   Set(0).With(unix.CAP_CHOWN),
		Permitted:   Set(0).With(unix.CAP_CHOWN).With(unix.CAP_KILL),
		Inheritable: Set(0).With(unix.CAP_KILL),
		Ambient:     Set(0).With(unix.CAP_KILL).With(unix.CAP_CHOWN),
	}
	if s != want {
		t.Errorf("sets = %+v, want %+v", s, want)
	}
	if len(ignored) != 1 || ignored[0] != "CAP_BPF" {
		t.Errorf("ignored = %v, want [CAP_BPF] once", ignored)
	}
	c.Ambient = []string{"CAP_NOPE"}
	if _, _, err := FromSpec(c, 40); err == nil || !strings.Contains(err.Error(), "ambient") || !strings.Contains(err.Error(), "CAP_NOPE") {
		t.Errorf("error = %v, want one naming the set and the capability", err)
	}
}

func TestLastCap(t *testing.T) {
	n, err := LastCap()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Skipf("no /proc/sys/kernel/cap_last_cap to compare with: %v", err)
	}
	if want, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != want {
		t.Errorf("LastCap() = %d, want %d", n, want)
	}
}
