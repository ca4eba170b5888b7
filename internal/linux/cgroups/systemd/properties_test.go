package systemd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

const mib = 1 << 20

// propMap renders properties as name -> Go value, for comparison.
func propMap(props []sd.Property) map[string]any {
	out := map[string]any{}
	for _, p := range props {
		out[p.Name] = p.Value.Value()
	}
	return out
}

// sig returns the D-Bus signature of each property: systemd checks them,
// and a wrong one fails the whole call.
func sigs(props []sd.Property) map[string]string {
	out := map[string]string{}
	for _, p := range props {
		out[p.Name] = p.Value.Signature().String()
	}
	return out
}

var (
	v2Paths     = map[string]string{"": "/sys/fs/cgroup/system.slice/x.scope"}
	hybridPaths = map[string]string{
		"memory": "/sys/fs/cgroup/memory/system.slice/x.scope", "cpu": "/sys/fs/cgroup/cpu,cpuacct/system.slice/x.scope",
		"cpuacct": "/sys/fs/cgroup/cpu,cpuacct/system.slice/x.scope", "pids": "/sys/fs/cgroup/pids/system.slice/x.scope",
		"blkio": "/sys/fs/cgroup/blkio/system.slice/x.scope", "devices": "/sys/fs/cgroup/devices/system.slice/x.scope",
		"cpuset": "/sys/fs/cgroup/cpuset/system.slice/x.scope", "name=systemd": "/sys/fs/cgroup/systemd/system.slice/x.scope",
		"": "/sys/fs/cgroup/unified/system.slice/x.scope",
	}
)

func noRead(key, file string) (string, error) {
	return "", fmt.Errorf("unexpected read of %s/%s", key, file)
}

func procDevicesFixture() (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(`Character devices:
  1 mem
  4 /dev/vc/0
  4 tty
  5 /dev/tty
 10 misc
136 pts
254 gpiochip

Block devices:
  7 loop
  8 sd
`)), nil
}

func TestResourcePropertiesV2(t *testing.T) {
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](100 * mib), Swap: ptr[int64](300 * mib), Reservation: ptr[int64](50 * mib)},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](42)},
		CPU:     &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0-2,5", Mems: "0"},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](500)},
	}
	props, warnings, err := resourceProperties(r, newHostSides(v2Paths), noRead, procDevicesFixture)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("resourceProperties: %v %v", err, warnings)
	}
	want := map[string]any{
		"MemoryMax":          uint64(100 * mib),
		"MemoryLow":          uint64(50 * mib),
		"MemorySwapMax":      uint64(200 * mib),
		"TasksMax":           uint64(42),
		"CPUWeight":          uint64(100),
		"CPUQuotaPeriodUSec": uint64(100000),
		"CPUQuotaPerSecUSec": uint64(500000),
		"AllowedCPUs":        []byte{0x27},
		"AllowedMemoryNodes": []byte{0x01},
		"IOWeight":           uint64(4950),
	}
	if got := propMap(props); !reflect.DeepEqual(got, want) {
		t.Errorf("properties:\n got %v\nwant %v", got, want)
	}
	for name, s := range sigs(props) {
		want := "t"
		if strings.HasPrefix(name, "Allowed") {
			want = "ay"
		}
		if s != want {
			t.Errorf("%s has signature %s, want %s", name, s, want)
		}
	}
}

func TestResourcePropertiesV1(t *testing.T) {
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](-1), Reservation: ptr[int64](50 * mib)},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](0)},
		CPU:     &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](-1), Cpus: "0"},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](300)},
	}
	props, _, err := resourceProperties(r, newHostSides(hybridPaths), noRead, procDevicesFixture)
	if err != nil {
		t.Fatal(err)
	}
	// v1 names; no MemoryLow (no v1 property), no AllowedCPUs (systemd
	// has cpusets on cgroup2 only).
	want := map[string]any{
		"MemoryLimit":        uint64(infinity),
		"TasksMax":           uint64(infinity),
		"CPUShares":          uint64(512),
		"CPUQuotaPerSecUSec": uint64(infinity),
		"BlockIOWeight":      uint64(300),
	}
	if got := propMap(props); !reflect.DeepEqual(got, want) {
		t.Errorf("properties:\n got %v\nwant %v", got, want)
	}
}

// A controller on cgroup2 of a hybrid host is not systemd's: no property.
func TestResourcePropertiesHybridV2Controller(t *testing.T) {
	paths := map[string]string{"memory": "/m", "": "/u"}
	props, _, err := resourceProperties(&specs.LinuxResources{
		Pids: &specs.LinuxPids{Limit: ptr[int64](5)},
		CPU:  &specs.LinuxCPU{Shares: ptr[uint64](512)},
	}, newHostSides(paths), noRead, procDevicesFixture)
	if err != nil || len(props) != 0 {
		t.Errorf("got %v, %v; want no properties", propMap(props), err)
	}
}

// Only the fields given become properties, so that an update leaves the
// rest alone.
func TestResourcePropertiesPartial(t *testing.T) {
	for _, tc := range []struct {
		r    *specs.LinuxResources
		want []string
	}{
		{nil, nil},
		{&specs.LinuxResources{}, nil},
		{&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](10)}}, nil},
		{&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](mib)}}, []string{"MemoryMax"}},
		{&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](20000)}}, []string{"CPUQuotaPerSecUSec"}},
		{&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1"}}, []string{"AllowedCPUs"}},
	} {
		props, _, err := resourceProperties(tc.r, newHostSides(v2Paths), noRead, procDevicesFixture)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range props {
			got = append(got, p.Name)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.r, got, tc.want)
		}
	}
}

func TestSwapMax(t *testing.T) {
	for _, tc := range []struct {
		limit, swap *int64
		want        uint64
		ok          bool
	}{
		{ptr[int64](100), ptr[int64](300), 200, true},
		{ptr[int64](100), ptr[int64](100), 0, true},
		{ptr[int64](-1), nil, infinity, true},
		{ptr[int64](100), ptr[int64](-1), infinity, true},
		{ptr[int64](100), nil, 0, false},
		{nil, ptr[int64](300), 0, false},             // needs a limit: Set refuses
		{ptr[int64](300), ptr[int64](100), 0, false}, // below the limit: Set refuses
	} {
		got, ok := swapMax(&specs.LinuxMemory{Limit: tc.limit, Swap: tc.swap})
		if got != tc.want || ok != tc.ok {
			t.Errorf("swapMax(%v, %v) = %d, %v; want %d, %v", tc.limit, tc.swap, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCPUQuota(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      specs.LinuxCPU
		side   controllerSide
		read   map[string]string
		want   map[string]any
		errHas string
	}{
		{"exact", specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000)}, sideV2, nil,
			map[string]any{"CPUQuotaPeriodUSec": uint64(100000), "CPUQuotaPerSecUSec": uint64(500000)}, ""},
		{"default period", specs.LinuxCPU{Quota: ptr[int64](150000)}, sideV2, nil,
			map[string]any{"CPUQuotaPerSecUSec": uint64(1500000)}, ""},
		// 12345 µs per 100 ms is 123450 µs/s: rounded up to whole
		// percents, which is what systemd keeps across a daemon-reload.
		{"rounded up", specs.LinuxCPU{Quota: ptr[int64](12345)}, sideV2, nil,
			map[string]any{"CPUQuotaPerSecUSec": uint64(130000)}, ""},
		{"unlimited", specs.LinuxCPU{Quota: ptr[int64](-1)}, sideV1, nil,
			map[string]any{"CPUQuotaPerSecUSec": uint64(infinity)}, ""},
		{"period alone, v2", specs.LinuxCPU{Period: ptr[uint64](50000)}, sideV2, map[string]string{"/cpu.max": "20000 100000"},
			map[string]any{"CPUQuotaPeriodUSec": uint64(50000), "CPUQuotaPerSecUSec": uint64(400000)}, ""},
		{"period alone, no quota", specs.LinuxCPU{Period: ptr[uint64](50000)}, sideV2, map[string]string{"/cpu.max": "max 100000"},
			map[string]any{"CPUQuotaPeriodUSec": uint64(50000)}, ""},
		{"period alone, v1", specs.LinuxCPU{Period: ptr[uint64](200000)}, sideV1,
			map[string]string{"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"},
			map[string]any{"CPUQuotaPeriodUSec": uint64(200000), "CPUQuotaPerSecUSec": uint64(500000)}, ""},
		{"period alone, unreadable", specs.LinuxCPU{Period: ptr[uint64](200000)}, sideV1, nil, nil, "current quota"},
	} {
		read := func(key, file string) (string, error) {
			if v, ok := tc.read[key+"/"+file]; ok {
				return v, nil
			}
			return "", os.ErrNotExist
		}
		props, err := cpuQuota(&tc.c, tc.side, read)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: got %v, want error with %q", tc.name, err, tc.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := propMap(props); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The conversions must equal the cgroupfs manager's, or systemd and the
// cgroupfs write disagree on the file. The reference values are those of
// the cgroups package's tests and of runc.
func TestConversions(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 100, 262144: 10000, 512: 59, 2048: 174} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint64]uint64{10: 1, 500: 4950, 1000: 10000, 5: 1} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestCPUListBits(t *testing.T) {
	for in, want := range map[string][]byte{
		"0":       {0x01},
		"0-3":     {0x0f},
		"1,3":     {0x0a},
		"0-2,5":   {0x27},
		"8":       {0x00, 0x01},
		"7-9":     {0x80, 0x03},
		" 0 , 2 ": {0x05},
		"0-1,1-2": {0x07},
	} {
		got, err := cpuListBits(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("cpuListBits(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "3-1", "1-", "-1", "99999"} {
		if got, err := cpuListBits(in); err == nil {
			t.Errorf("cpuListBits(%q) = %x, want an error", in, got)
		}
	}
}

func dev(allow bool, typ string, major, minor int64, acc string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: acc}
	if major != -2 {
		d.Major = &major
	}
	if minor != -2 {
		d.Minor = &minor
	}
	return d
}

func TestDeviceProperties(t *testing.T) {
	const any = -2 // field absent
	for _, tc := range []struct {
		name     string
		rules    []specs.LinuxDeviceCgroup
		policy   string
		allow    []deviceAllow
		warnings int
	}{
		{
			// What docker and the runtime produce: deny all, then the
			// defaults and the "mknod anything" rules.
			name: "docker defaults",
			rules: []specs.LinuxDeviceCgroup{
				dev(false, "a", any, any, "rwm"),
				dev(true, "c", -1, -1, "m"), dev(true, "b", -1, -1, "m"),
				dev(true, "c", 1, 3, "rwm"), dev(true, "c", 1, 5, "rwm"),
				dev(true, "c", 136, -1, "rwm"), dev(true, "c", 5, 2, "rwm"),
				dev(true, "c", 10, 200, "rwm"),
				dev(true, "c", 1, 3, "rwm"), // the runtime's own, again
			},
			policy: "strict",
			allow: []deviceAllow{
				{"char-*", "m"}, {"block-*", "m"}, {"/dev/char/1:3", "rwm"}, {"/dev/char/1:5", "rwm"},
				{"char-pts", "rwm"}, {"/dev/char/5:2", "rwm"}, {"/dev/char/10:200", "rwm"},
			},
		},
		{
			name:   "rules before the last deny-all decide nothing",
			rules:  []specs.LinuxDeviceCgroup{dev(true, "c", 1, 9, "rw"), dev(false, "", any, any, ""), dev(true, "b", 8, 0, "wr")},
			policy: "strict",
			allow:  []deviceAllow{{"/dev/block/8:0", "rw"}},
		},
		{
			name:   "deny rules after it are dropped (cgroupfs enforces them)",
			rules:  []specs.LinuxDeviceCgroup{dev(false, "a", any, any, "rwm"), dev(true, "c", 1, -1, "rwm"), dev(false, "c", 1, 9, "rwm")},
			policy: "strict",
			allow:  []deviceAllow{{"char-mem", "rwm"}},
		},
		{
			name:   "type a names both kinds",
			rules:  []specs.LinuxDeviceCgroup{dev(false, "a", any, any, "rwm"), dev(true, "a", 7, 1, "r"), dev(true, "a", 4, -1, "r")},
			policy: "strict",
			allow:  []deviceAllow{{"/dev/char/7:1", "r"}, {"/dev/block/7:1", "r"}, {"char-tty", "r"}, {"block-*", "r"}},
			// major 4 has no block name
			warnings: 1,
		},
		{
			name:     "unknown major: the kind's wildcard",
			rules:    []specs.LinuxDeviceCgroup{dev(false, "a", any, any, "rwm"), dev(true, "c", 999, -1, "rw")},
			policy:   "strict",
			allow:    []deviceAllow{{"char-*", "rw"}},
			warnings: 1,
		},
		{
			name:   "allow all",
			rules:  []specs.LinuxDeviceCgroup{dev(false, "a", any, any, "rwm"), dev(true, "a", any, any, "")},
			policy: "auto",
			allow:  []deviceAllow{},
		},
		{
			name:   "no deny-all: allow rules are still the bound",
			rules:  []specs.LinuxDeviceCgroup{dev(true, "c", 1, 3, "rwm")},
			policy: "strict",
			allow:  []deviceAllow{{"/dev/char/1:3", "rwm"}},
		},
		{
			name:   "deny everything",
			rules:  []specs.LinuxDeviceCgroup{dev(false, "a", any, any, "rwm")},
			policy: "strict",
			allow:  []deviceAllow{},
		},
	} {
		props, warnings, err := deviceProperties(tc.rules, procDevicesFixture)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := propMap(props)
		if got["DevicePolicy"] != tc.policy || !reflect.DeepEqual(got["DeviceAllow"], tc.allow) {
			t.Errorf("%s:\n got %v %v\nwant %v %v", tc.name, got["DevicePolicy"], got["DeviceAllow"], tc.policy, tc.allow)
		}
		if len(warnings) != tc.warnings {
			t.Errorf("%s: warnings %q, want %d", tc.name, warnings, tc.warnings)
		}
		if s := sigs(props)["DeviceAllow"]; s != "a(ss)" {
			t.Errorf("%s: DeviceAllow signature %s, want a(ss)", tc.name, s)
		}
	}
	if _, _, err := deviceProperties([]specs.LinuxDeviceCgroup{dev(true, "c", 1, 3, "rwx")}, procDevicesFixture); err == nil {
		t.Error("access rwx: no error")
	}
	if _, _, err := deviceProperties([]specs.LinuxDeviceCgroup{dev(true, "p", 1, 3, "r")}, procDevicesFixture); err == nil {
		t.Error("type p: no error")
	}
	// /proc/devices unreadable: every named major widens to the wildcard.
	props, _, err := deviceProperties([]specs.LinuxDeviceCgroup{dev(true, "c", 136, -1, "rw")},
		func() (io.ReadCloser, error) { return nil, errors.New("no") })
	if err != nil || !reflect.DeepEqual(propMap(props)["DeviceAllow"], []deviceAllow{{"char-*", "rw"}}) {
		t.Errorf("unreadable /proc/devices: %v, %v", propMap(props), err)
	}
}

// Device properties only where systemd manages devices: the v1
// controller or a unified host.
func TestDevicePropertiesWhere(t *testing.T) {
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{dev(false, "a", -2, -2, "rwm")}}
	for _, tc := range []struct {
		paths map[string]string
		want  bool
	}{
		{v2Paths, true},
		{hybridPaths, true},
		{map[string]string{"memory": "/m", "": "/u"}, false},
	} {
		props, _, err := resourceProperties(r, newHostSides(tc.paths), noRead, procDevicesFixture)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := propMap(props)["DevicePolicy"]; got != tc.want {
			t.Errorf("paths %v: DevicePolicy present %v, want %v", tc.paths, got, tc.want)
		}
	}
}
