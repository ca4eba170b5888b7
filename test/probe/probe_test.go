package main

import (
	"io"
	"os"
	"slices"
	"testing"

	"github.com/berth-project/berth/test/probe/report"
)

func TestCapSet(t *testing.T) {
	got, err := capSet("00000000a80425fb")
	if err != nil {
		t.Fatal(err)
	}
	// Docker's default set, as a kernel prints it.
	want := []string{
		"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
		"CAP_FSETID", "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE",
		"CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
		"CAP_SETUID", "CAP_SYS_CHROOT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("capSet = %v, want %v", got, want)
	}
	got, err = capSet("8000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"CAP_63", "CAP_CHOWN"}) {
		t.Errorf("capSet with an unknown bit = %v", got)
	}
	if got, _ := capSet("0000000000000000"); got == nil || len(got) != 0 {
		t.Errorf("empty set = %#v, want empty non-nil", got)
	}
	if _, err := capSet("zz"); err == nil {
		t.Error("capSet accepted a bad mask")
	}
}

func TestParseMountinfo(t *testing.T) {
	data := []byte("36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n" +
		"40 36 0:5 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n")
	ms, err := parseMountinfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("got %d mounts, want 2", len(ms))
	}
	m := ms[0]
	if m.ID != 36 || m.ParentID != 35 || m.Major != 98 || m.Minor != 0 || m.Root != "/mnt1" ||
		m.MountPoint != "/mnt 2" || m.FSType != "ext3" || m.Source != "/dev/root" {
		t.Errorf("first mount = %+v", m)
	}
	if !slices.Equal(m.Options, []string{"rw", "noatime"}) ||
		!slices.Equal(m.Propagation, []string{"master:1", "shared:7"}) ||
		!slices.Equal(m.SuperOptions, []string{"rw", "errors=continue"}) {
		t.Errorf("first mount options = %+v", m)
	}
	if len(ms[1].Propagation) != 0 || ms[1].Propagation == nil {
		t.Errorf("private mount propagation = %#v, want empty non-nil", ms[1].Propagation)
	}
	if !ms[1].HasOption("nosuid") || ms[1].HasOption("ro") {
		t.Errorf("HasOption wrong for %v", ms[1].Options)
	}
	if _, err := parseMountinfo([]byte("1 2 3\n")); err == nil {
		t.Error("short line accepted")
	}
	if _, err := parseMountinfo([]byte("1 2 0:1 / / rw a b c d e\n")); err == nil {
		t.Error("line without separator accepted")
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:    "/a b",
		`\134`:       `\`,
		`/x\011\012`: "/x\t\n",
		`/trail\04`:  `/trail\04`,
		`/not\89`:    `/not\89`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatFields(t *testing.T) {
	f, err := statFields([]byte("42 (a) b) c) S 1 42 42 34816 42 4194560"))
	if err != nil {
		t.Fatal(err)
	}
	if f[1] != "1" || f[4] != "34816" {
		t.Errorf("fields = %v", f)
	}
	// 34816 = 0x8800: major 136 (pts), minor 0.
	if maj, min := ttyDevice(34816); maj != 136 || min != 0 {
		t.Errorf("ttyDevice(34816) = %d:%d, want 136:0", maj, min)
	}
	// Minor 300 spills into bits 20-31.
	nr := uint64(136<<8 | (300 & 0xff) | (300&^0xff)<<12)
	if maj, min := ttyDevice(nr); maj != 136 || min != 300 {
		t.Errorf("ttyDevice(%#x) = %d:%d, want 136:300", nr, maj, min)
	}
}

func TestParseLimitsNofile(t *testing.T) {
	data := []byte("Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max cpu time              unlimited            unlimited            seconds   \n" +
		"Max open files            1024                 unlimited            files     \n")
	soft, hard, err := parseLimitsNofile(data)
	if err != nil {
		t.Fatal(err)
	}
	if soft != 1024 || limitValue(hard) != report.Unlimited {
		t.Errorf("got %d/%d", soft, hard)
	}
	if _, _, err := parseLimitsNofile([]byte("nothing\n")); err == nil {
		t.Error("missing line accepted")
	}
}

func TestParseStatus(t *testing.T) {
	st := parseStatus([]byte("Name:\tprobe\nUmask:\t0022\nNoNewPrivs:\t1\nSeccomp:\t2\n"))
	if st["Umask"] != "0022" || st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
		t.Errorf("parseStatus = %v", st)
	}
}

func TestRunArguments(t *testing.T) {
	stderr = io.Discard
	defer func() { stderr = os.Stderr }()
	if got := run([]string{"exit", "7"}); got != 7 {
		t.Errorf("exit 7 returned %d", got)
	}
	for _, args := range [][]string{
		{"nonsense"}, {"exit"}, {"exit", "300"}, {"sleep", "-1"}, {"open", "/", "x"},
		{"hook"}, {"fork", "-2"}, {"report", "extra"},
	} {
		if got := run(args); got != 2 {
			t.Errorf("run(%q) = %d, want 2 (usage)", args, got)
		}
	}
}

// TestGather runs the collection in the test process itself and checks it
// against what the process knows through other calls.
func TestGather(t *testing.T) {
	r := gather()
	if len(r.Errors) > 0 {
		t.Errorf("errors: %v", r.Errors)
	}
	host, _ := os.Hostname()
	if r.PID != os.Getpid() || r.PPID != os.Getppid() || r.UID != os.Getuid() || r.EGID != os.Getegid() || r.Hostname != host {
		t.Errorf("ids or hostname wrong: %+v", r)
	}
	if len(r.Mounts) == 0 {
		t.Error("no mounts")
	}
	if _, ok := r.Mount("/"); !ok {
		t.Error("no / mount")
	}
	if r.Namespaces["mnt"] == 0 || r.Namespaces["pid"] == 0 {
		t.Errorf("namespaces = %v", r.Namespaces)
	}
	for _, k := range report.NamespaceKinds {
		if _, ok := r.Namespaces[k]; !ok {
			t.Errorf("namespace %s missing from map", k)
		}
	}
	if len(r.Rlimits) != len(rlimitNames) {
		t.Errorf("got %d rlimits, want %d", len(r.Rlimits), len(rlimitNames))
	}
	if exe, _ := os.Executable(); r.Exe != exe {
		t.Errorf("exe = %q, want %q", r.Exe, exe)
	}
	if len(r.Umask) != 4 {
		t.Errorf("umask = %q", r.Umask)
	}
	if len(r.FDs) == 0 {
		t.Error("no descriptors")
	}
}
