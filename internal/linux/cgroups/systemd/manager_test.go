package systemd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/linux/cgroups"
)

// fakeBus records the calls and answers as told.
type fakeBus struct {
	calls []string
	props map[string][]sd.Property // method -> last properties

	startErrs   []error // returned by successive StartTransientUnit calls
	setErr      func(props []sd.Property) error
	stopErr     error
	controlPath string
	closed      int
}

func (b *fakeBus) rec(s string) { b.calls = append(b.calls, s) }

func (b *fakeBus) StartTransientUnit(_ context.Context, name string, props []sd.Property) error {
	b.rec("start " + name)
	b.props["start"] = props
	if len(b.startErrs) > 0 {
		err := b.startErrs[0]
		b.startErrs = b.startErrs[1:]
		return err
	}
	return nil
}

func (b *fakeBus) SetUnitProperties(_ context.Context, name string, props []sd.Property) error {
	b.rec("set " + name + " " + propNames(props))
	b.props["set"] = props
	if b.setErr != nil {
		return b.setErr(props)
	}
	return nil
}

func (b *fakeBus) StopUnit(_ context.Context, name string) error {
	b.rec("stop " + name)
	return b.stopErr
}

func (b *fakeBus) ResetFailedUnit(_ context.Context, name string) error {
	b.rec("reset " + name)
	return nil
}

func (b *fakeBus) ControlGroup(_ context.Context, name string) (string, error) {
	b.rec("cgroup " + name)
	return b.controlPath, nil
}

func (b *fakeBus) ActiveState(context.Context, string) (string, error) { return "active", nil }
func (b *fakeBus) Close()                                              { b.closed++ }

func dbusErr(name string) error { return dbus.Error{Name: name, Body: []any{name + " happened"}} }

// fakeV2 makes a directory standing for a unit's cgroup2 cgroup.
func fakeV2(t *testing.T, files ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "system.slice", "berth-c1.scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "cgroup.controllers"), "cpuset cpu io memory pids\n")
	write(t, filepath.Join(dir, "cgroup.procs"), "")
	for _, f := range files {
		write(t, filepath.Join(dir, f), "")
	}
	return dir
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func testManager(t *testing.T, dir string) (*manager, *fakeBus) {
	b := &fakeBus{props: map[string][]sd.Property{}, controlPath: "/system.slice/berth-c1.scope"}
	m := newManager("berth-c1.scope", map[string]string{"": dir})
	m.slice, m.cgroup, m.description = "system.slice", "/system.slice/berth-c1.scope", "berth container c1"
	m.dial = func() (bus, error) { return b, nil }
	m.procDevices = procDevicesFixture
	return m, b
}

func TestApplyStartsScope(t *testing.T) {
	m, b := testManager(t, fakeV2(t))
	if err := m.Apply(4242); err != nil {
		t.Fatal(err)
	}
	if want := []string{"start berth-c1.scope", "cgroup berth-c1.scope"}; !reflect.DeepEqual(b.calls, want) {
		t.Errorf("calls %q, want %q", b.calls, want)
	}
	got := propMap(b.props["start"])
	want := map[string]any{
		"Description": "berth container c1", "DefaultDependencies": false,
		"Slice": "system.slice", "Delegate": true, "PIDs": []uint32{4242},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("start properties\n got %v\nwant %v", got, want)
	}
	if s := sigs(b.props["start"]); s["PIDs"] != "au" || s["Delegate"] != "b" || s["Slice"] != "s" {
		t.Errorf("signatures %v", s)
	}
	if b.closed != 1 {
		t.Errorf("connection closed %d times, want 1", b.closed)
	}
	// systemd placed the process: nothing written by hand on cgroup2.
	if s := read(t, filepath.Join(m.paths[""], "cgroup.procs")); s != "" {
		t.Errorf("cgroup.procs written: %q", s)
	}
}

func TestApplySlice(t *testing.T) {
	dir := fakeV2(t)
	m, b := testManager(t, dir)
	m.unit, m.slice = "kubepods-pod1.slice", "kubepods.slice"
	if err := m.Apply(77); err != nil {
		t.Fatal(err)
	}
	got := propMap(b.props["start"])
	if _, ok := got["PIDs"]; ok {
		t.Errorf("slice started with PIDs: %v", got)
	}
	if !reflect.DeepEqual(got["Wants"], []string{"kubepods.slice"}) || got["Delegate"] != nil {
		t.Errorf("slice properties %v", got)
	}
	// systemd takes no PIDs for a slice: written through cgroupfs.
	if s := read(t, filepath.Join(dir, "cgroup.procs")); s != "77" {
		t.Errorf("cgroup.procs = %q, want 77", s)
	}
}

func TestApplyExisting(t *testing.T) {
	// A failed leftover: reset, then the retry starts it.
	m, b := testManager(t, fakeV2(t))
	b.startErrs = []error{dbusErr(errUnitExists)}
	if err := m.Apply(5); err != nil {
		t.Fatal(err)
	}
	if want := []string{"start berth-c1.scope", "reset berth-c1.scope", "start berth-c1.scope", "cgroup berth-c1.scope"}; !reflect.DeepEqual(b.calls, want) {
		t.Errorf("calls %q, want %q", b.calls, want)
	}
	// A live one: refused.
	m, b = testManager(t, fakeV2(t))
	b.startErrs = []error{dbusErr(errUnitExists), dbusErr(errUnitExists)}
	if err := m.Apply(5); !errors.Is(err, os.ErrExist) {
		t.Errorf("Apply on a live unit: %v, want ErrExist", err)
	}
	// Any other failure is reported with the unit.
	m, b = testManager(t, fakeV2(t))
	b.startErrs = []error{dbusErr("org.freedesktop.DBus.Error.AccessDenied")}
	if err := m.Apply(5); err == nil || !strings.Contains(err.Error(), "berth-c1.scope") {
		t.Errorf("Apply: %v, want an error naming the unit", err)
	}
}

func TestApplyPidChecks(t *testing.T) {
	m, b := testManager(t, fakeV2(t))
	for _, pid := range []int{0, -2} {
		if err := m.Apply(pid); err == nil {
			t.Errorf("Apply(%d): no error", pid)
		}
	}
	if err := m.Apply(-1); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Apply(-1) on a scope: %v, want ErrUnsupported", err)
	}
	if len(b.calls) != 0 {
		t.Errorf("systemd called: %q", b.calls)
	}
}

// A Manager from Load joins the running unit through cgroupfs (exec).
func TestLoadApplyJoins(t *testing.T) {
	dir := fakeV2(t)
	m := Load("berth-c1.scope", map[string]string{"": dir}).(*manager)
	m.dial = func() (bus, error) { t.Fatal("Apply of a loaded manager dialled systemd"); return nil, nil }
	if err := m.Apply(99); err != nil {
		t.Fatal(err)
	}
	if s := read(t, filepath.Join(dir, "cgroup.procs")); s != "99" {
		t.Errorf("cgroup.procs = %q, want 99", s)
	}
	if UnitName(m) != "berth-c1.scope" {
		t.Errorf("UnitName = %q", UnitName(m))
	}
	if got := m.Paths(); !reflect.DeepEqual(got, map[string]string{"": dir}) {
		t.Errorf("Paths = %v", got)
	}
}

func TestLoadWithoutUnitIsCgroupfs(t *testing.T) {
	m := Load("", map[string]string{"": "/sys/fs/cgroup/x"})
	if _, ok := m.(*manager); ok || UnitName(m) != "" {
		t.Errorf("Load(\"\", ...) = %T, want the cgroupfs manager", m)
	}
}

// Set tells systemd first, then writes the exact values through cgroupfs.
func TestSetPropertiesThenFiles(t *testing.T) {
	dir := fakeV2(t, "memory.max", "memory.swap.max", "memory.low", "pids.max", "cpu.max", "cpu.weight")
	m, b := testManager(t, dir)
	warnings, err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mib)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](12345), Period: ptr[uint64](100000)},
	})
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Set: %v %v", err, warnings)
	}
	if want := []string{"set berth-c1.scope CPUQuotaPerSecUSec, CPUQuotaPeriodUSec, CPUWeight, MemoryMax, TasksMax"}; !reflect.DeepEqual(b.calls, want) {
		t.Errorf("calls %q, want %q", b.calls, want)
	}
	for file, want := range map[string]string{
		"memory.max": "67108864", "pids.max": "42", "cpu.weight": "100",
		// Exact, though systemd was told 130 ms/s.
		"cpu.max": "12345 100000",
	} {
		if got := read(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// Nothing systemd knows: no D-Bus call at all.
	b.calls = nil
	if _, err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](10)}}); err != nil {
		t.Fatal(err)
	}
	if len(b.calls) != 0 {
		t.Errorf("calls %q, want none", b.calls)
	}
}

// A systemd that does not know a property: the others still go, one by
// one, and the limit still reaches the file.
func TestSetUnknownProperty(t *testing.T) {
	dir := fakeV2(t, "pids.max", "cpuset.cpus")
	m, b := testManager(t, dir)
	b.setErr = func(props []sd.Property) error {
		for _, p := range props {
			if p.Name == "AllowedCPUs" {
				return dbus.Error{Name: errReadOnly, Body: []any{"Cannot set property AllowedCPUs, or unknown property."}}
			}
		}
		return nil
	}
	warnings, err := m.Set(&specs.LinuxResources{
		Pids: &specs.LinuxPids{Limit: ptr[int64](7)},
		CPU:  &specs.LinuxCPU{Cpus: "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "AllowedCPUs") {
		t.Errorf("warnings %q, want one about AllowedCPUs", warnings)
	}
	if want := []string{
		"set berth-c1.scope AllowedCPUs, TasksMax", "set berth-c1.scope TasksMax", "set berth-c1.scope AllowedCPUs",
	}; !reflect.DeepEqual(b.calls, want) {
		t.Errorf("calls %q, want %q", b.calls, want)
	}
	if got := read(t, filepath.Join(dir, "cpuset.cpus")); got != "0" {
		t.Errorf("cpuset.cpus = %q, want 0", got)
	}
	// Any other refusal fails Set before cgroupfs is written.
	b.setErr = func([]sd.Property) error { return dbusErr("org.freedesktop.DBus.Error.AccessDenied") }
	if _, err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](9)}}); err == nil {
		t.Error("Set: no error")
	}
	if got := read(t, filepath.Join(dir, "pids.max")); got != "7" {
		t.Errorf("pids.max = %q after a refused Set, want 7", got)
	}
}

// memory.checkBeforeUpdate: the usage check runs on cgroupfs before
// systemd hears of the limit.
func TestSetCheckBeforeUpdate(t *testing.T) {
	dir := fakeV2(t, "memory.max", "memory.swap.max")
	write(t, filepath.Join(dir, "memory.current"), strconv.Itoa(100*mib))
	m, b := testManager(t, dir)
	_, err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](50 * mib), CheckBeforeUpdate: ptr(true)}})
	if err == nil || !strings.Contains(err.Error(), "checkBeforeUpdate") {
		t.Fatalf("Set: %v, want the usage check to refuse", err)
	}
	if len(b.calls) != 0 {
		t.Errorf("systemd told before the check: %q", b.calls)
	}
	if _, err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](200 * mib), CheckBeforeUpdate: ptr(true)}}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "memory.max")); got != strconv.Itoa(200*mib) {
		t.Errorf("memory.max = %q", got)
	}
	if want := []string{"set berth-c1.scope MemoryMax"}; !reflect.DeepEqual(b.calls, want) {
		t.Errorf("calls %q, want %q", b.calls, want)
	}
}

// The conversions agree with the cgroupfs manager's, checked on what it
// writes.
func TestConversionsAgreeWithCgroupfs(t *testing.T) {
	dir := fakeV2(t, "cpu.weight", "io.weight")
	fs := cgroups.Load(map[string]string{"": dir})
	for s := uint64(2); s <= 262144; s = s*3/2 + 1 {
		if _, err := fs.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &s}}); err != nil {
			t.Fatal(err)
		}
		if got, want := read(t, filepath.Join(dir, "cpu.weight")), strconv.FormatUint(sharesToWeight(s), 10); got != want {
			t.Errorf("shares %d: cgroupfs wrote cpu.weight %s, systemd would get %s", s, got, want)
		}
	}
	for w := uint16(10); w <= 1000; w += 33 {
		if _, err := fs.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: &w}}); err != nil {
			t.Fatal(err)
		}
		if got, want := read(t, filepath.Join(dir, "io.weight")), strconv.FormatUint(blkioToIOWeight(uint64(w)), 10); !strings.HasSuffix(got, want) {
			t.Errorf("blkio weight %d: cgroupfs wrote io.weight %s, systemd would get %s", w, got, want)
		}
	}
}

func TestDestroy(t *testing.T) {
	dir := fakeV2(t)
	m, b := testManager(t, dir)
	// Busy: nothing is stopped, EBUSY.
	write(t, filepath.Join(dir, "cgroup.procs"), "123\n")
	if err := m.Destroy(); !errors.Is(err, unix.EBUSY) {
		t.Errorf("Destroy of a busy unit: %v, want EBUSY", err)
	}
	if len(b.calls) != 0 {
		t.Errorf("calls %q on a busy unit, want none", b.calls)
	}
	// Empty: stop, reset, then the directories. The fake directory holds
	// plain files, which rmdir cannot remove: the error shows cgroupfs
	// was reached.
	write(t, filepath.Join(dir, "cgroup.procs"), "")
	b.stopErr = dbusErr(errNoSuchUnit)
	err := m.Destroy()
	if want := []string{"stop berth-c1.scope", "reset berth-c1.scope"}; !reflect.DeepEqual(b.calls, want) {
		t.Errorf("calls %q, want %q", b.calls, want)
	}
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Destroy: %v, want the cgroupfs removal of %s to be tried", err, dir)
	}
	// A refused stop is an error, and the directories stay.
	b.calls, b.stopErr = nil, dbusErr("org.freedesktop.DBus.Error.AccessDenied")
	if err := m.Destroy(); err == nil || !strings.Contains(err.Error(), "stop systemd unit") {
		t.Errorf("Destroy: %v, want the stop's error", err)
	}
}

// Without systemd reachable at delete, the directories are still removed.
func TestDestroyWithoutSystemd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	m := Load("berth-c1.scope", map[string]string{"": dir}).(*manager)
	m.dial = func() (bus, error) { return nil, cgroups.ErrSystemdUnsupported }
	if err := m.Destroy(); err != nil {
		t.Errorf("Destroy: %v", err)
	}
}

func TestNewWithoutSystemd(t *testing.T) {
	old := bootedDir
	bootedDir = filepath.Join(t.TempDir(), "no-such-dir")
	t.Cleanup(func() { bootedDir = old })
	for _, tc := range []struct {
		path    string
		systemd bool
	}{{"system.slice:berth:c1", true}, {"", true}, {"system.slice:berth:c1", false}, {":berth:c1", false}} {
		_, err := New(tc.path, "c1", tc.systemd)
		if !errors.Is(err, cgroups.ErrSystemdUnsupported) || !errors.Is(err, errors.ErrUnsupported) ||
			!strings.Contains(err.Error(), "not PID 1") {
			t.Errorf("New(%q, %v): %v, want ErrSystemdUnsupported saying systemd is not PID 1", tc.path, tc.systemd, err)
		}
	}
	// An invalid path is reported as such, systemd or not.
	if _, err := New("/not/a/systemd/path", "c1", true); !errors.Is(err, errInvalid) {
		t.Errorf("New(/not/a/systemd/path, systemd): %v, want an invalid path error", err)
	}
}

func TestNewBootedWithoutSockets(t *testing.T) {
	oldB, oldP, oldS := bootedDir, privateSocket, systemBusSocket
	tmp := t.TempDir()
	bootedDir, privateSocket, systemBusSocket = tmp, filepath.Join(tmp, "private"), filepath.Join(tmp, "bus")
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	t.Cleanup(func() { bootedDir, privateSocket, systemBusSocket = oldB, oldP, oldS })
	_, err := New("system.slice:berth:c1", "c1", true)
	if !errors.Is(err, cgroups.ErrSystemdUnsupported) || !strings.Contains(err.Error(), "D-Bus") {
		t.Errorf("New: %v, want ErrSystemdUnsupported about D-Bus", err)
	}
	if _, err := dialBus(); !errors.Is(err, cgroups.ErrSystemdUnsupported) {
		t.Errorf("dialBus: %v, want ErrSystemdUnsupported", err)
	}
}

// Without systemd asked for, New is the cgroupfs driver's.
func TestNewCgroupfs(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip("no /proc")
	}
	m, err := New("/berth-test/x", "x", false)
	if err != nil {
		t.Skipf("no cgroup filesystem: %v", err)
	}
	if _, ok := m.(*manager); ok || UnitName(m) != "" {
		t.Errorf("New without systemd = %T, want cgroupfs", m)
	}
}

func TestPathsFor(t *testing.T) {
	l := cgroups.Layout{Mode: cgroups.Hybrid, Hierarchies: []cgroups.Hierarchy{
		{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", Controllers: []string{"memory"}},
		{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", Controllers: []string{"cpu", "cpuacct"}},
		{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", Controllers: []string{"name=systemd"}},
		{Mountpoint: "/sys/fs/cgroup/unified", Root: "/", Unified: true},
	}}
	got, err := pathsFor(l, "/system.slice/berth-c1.scope")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory":       "/sys/fs/cgroup/memory/system.slice/berth-c1.scope",
		"cpu":          "/sys/fs/cgroup/cpu,cpuacct/system.slice/berth-c1.scope",
		"cpuacct":      "/sys/fs/cgroup/cpu,cpuacct/system.slice/berth-c1.scope",
		"name=systemd": "/sys/fs/cgroup/systemd/system.slice/berth-c1.scope",
		"":             "/sys/fs/cgroup/unified/system.slice/berth-c1.scope",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pathsFor:\n got %v\nwant %v", got, want)
	}
	// A mount showing a subtree: the unit must be inside it.
	l = cgroups.Layout{Mode: cgroups.Unified, Hierarchies: []cgroups.Hierarchy{{Mountpoint: "/sys/fs/cgroup", Root: "/system.slice", Unified: true}}}
	if got, err := pathsFor(l, "/system.slice/berth-c1.scope"); err != nil || got[""] != "/sys/fs/cgroup/berth-c1.scope" {
		t.Errorf("pathsFor in a subtree: %v, %v", got, err)
	}
	if _, err := pathsFor(l, "/machine.slice/x.scope"); err == nil {
		t.Error("pathsFor outside the subtree: no error")
	}
}

func TestIsUnknownProperty(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{dbus.Error{Name: errReadOnly}, true},
		{&dbus.Error{Name: errReadOnly}, true},
		{dbus.Error{Name: errInvalidArgs, Body: []any{"Unknown property Foo"}}, true},
		{dbus.Error{Name: errInvalidArgs, Body: []any{"Invalid value for Foo"}}, false},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied"}, false},
		{errors.New("Cannot set property X, or unknown property."), false},
	} {
		if got := isUnknownProperty(tc.err); got != tc.want {
			t.Errorf("isUnknownProperty(%#v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
