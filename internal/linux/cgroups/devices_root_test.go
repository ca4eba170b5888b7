package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// openProbe opens /dev/zero and /dev/null for reading and prints the
// errno of each (0 for success): "zero 1 null 0" is EPERM for /dev/zero.
const openProbe = `exec perl -e 'for my $d ("zero", "null") { my $e = open(my $f, "<", "/dev/$d") ? 0 : $!+0; print "$d $e " } print "\n"'`

func denyAllBut(extra ...specs.LinuxDeviceCgroup) []specs.LinuxDeviceCgroup {
	return append([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"}, // /dev/null
	}, extra...)
}

var allowZero = specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"}

func requirePerl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("needs perl to report open's errno")
	}
}

// The v1 devices controller: deny all, allow /dev/null; /dev/zero fails
// with EPERM inside the cgroup. An update repeating the rules writes
// nothing (it would fail with a child cgroup present); a change applies.
func TestDevicesV1(t *testing.T) {
	requireRoot(t)
	requirePerl(t)
	m, _ := newTestManager(t, "c1")
	dir := m.Paths()["devices"]
	if dir == "" {
		t.Skip("no v1 devices controller on this host")
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Set(&specs.LinuxResources{Devices: denyAllBut()}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readFile(filepath.Join(dir, "devices.list")); got != "c 1:3 rwm" {
		t.Errorf("devices.list = %q, want only /dev/null", got)
	}
	if got := runIn(t, m, openProbe); got != "zero 1 null 0" {
		t.Errorf("probe: %q, want /dev/zero EPERM and /dev/null allowed", got)
	}

	// The kernel refuses "a" (deny all) once the cgroup has children, so
	// an update that rewrote unchanged rules would fail here.
	child := filepath.Join(dir, "child")
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Set(&specs.LinuxResources{Devices: denyAllBut()}); err != nil {
		t.Errorf("update with the same rules: %v", err)
	}
	if _, err := m.Set(&specs.LinuxResources{Devices: denyAllBut(allowZero)}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("update with new rules under a child cgroup: got %v, want the kernel's EINVAL", err)
	}
	if err := unix.Rmdir(child); err != nil {
		t.Fatal(err)
	}
	// The child goes offline asynchronously after rmdir; until then the
	// kernel still counts it.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := m.Set(&specs.LinuxResources{Devices: denyAllBut(allowZero)})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINVAL) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if got := runIn(t, m, openProbe); got != "zero 0 null 0" {
		t.Errorf("probe after allowing /dev/zero: %q", got)
	}

	warnings, err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Access: "rwm"},
		{Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rwm"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "no effect on cgroup v1") {
		t.Errorf("a deny inside a wildcard allow: warnings %q", warnings)
	}
}

// The eBPF device program on a cgroup2 directory. On a hybrid host the
// devices controller is on v1, but the kernel runs cgroup2 device
// programs for every task of the cgroup2 cgroup all the same: the v1
// controller here allows everything, and the program alone decides.
func TestDevicesEBPF(t *testing.T) {
	requireRoot(t)
	requirePerl(t)
	m, _ := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	u := onlyUnified(t, m)
	dir := u.Paths()[""]
	if _, err := u.Set(&specs.LinuxResources{Devices: denyAllBut()}); err != nil {
		t.Fatal(err)
	}
	if d := m.Paths()["devices"]; d != "" {
		if got, _ := readFile(filepath.Join(d, "devices.list")); got != "a *:* rwm" {
			t.Fatalf("v1 devices.list = %q: the v1 controller must stay out of this test", got)
		}
	}
	if got := runIn(t, m, openProbe); got != "zero 1 null 0" {
		t.Errorf("probe: %q, want /dev/zero EPERM and /dev/null allowed", got)
	}
	if n := attachedCount(t, dir); n != 1 {
		t.Errorf("%d device programs attached, want 1", n)
	}

	// An update replaces the program rather than adding one.
	if _, err := u.Set(&specs.LinuxResources{Devices: denyAllBut(allowZero)}); err != nil {
		t.Fatal(err)
	}
	if got := runIn(t, m, openProbe); got != "zero 0 null 0" {
		t.Errorf("probe after allowing /dev/zero: %q", got)
	}
	if n := attachedCount(t, dir); n != 1 {
		t.Errorf("%d device programs attached after the update, want 1", n)
	}

	// Last rule wins, bit by bit: write to /dev/null denied after it was
	// allowed, read still allowed.
	if _, err := u.Set(&specs.LinuxResources{Devices: denyAllBut(specs.LinuxDeviceCgroup{
		Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "w",
	})}); err != nil {
		t.Fatal(err)
	}
	probeRW := `exec perl -e 'for my $m ("<", ">") { my $e = open(my $f, $m, "/dev/null") ? 0 : $!+0; print "$m$e " } print "\n"'`
	if got := runIn(t, m, probeRW); got != "<0 >1" {
		t.Errorf("probe of /dev/null read and write: %q, want read allowed, write EPERM", got)
	}
}

func attachedCount(t *testing.T, dir string) int {
	t.Helper()
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cg)
	fds, err := attachedDevicePrograms(cg)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(fds)
	return len(fds)
}

// A program the verifier refuses comes back with the verifier's reason.
func TestLoadDeviceProgramVerifierLog(t *testing.T) {
	requireRoot(t)
	fd, err := loadDeviceProgram([]bpfInsn{insn(opExit, 0, 0, 0, 0)}) // r0 never set
	if err == nil {
		unix.Close(fd)
		t.Fatal("the verifier accepted a program returning an unset r0")
	}
	if !strings.Contains(err.Error(), "verifier:") || !strings.Contains(err.Error(), "R0") {
		t.Errorf("error without the verifier's reason: %v", err)
	}
}
