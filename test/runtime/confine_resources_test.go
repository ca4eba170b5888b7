package runtime_test

// linux.resources as the cgroup files show them: after create, and after
// `update` through runc's flags, a JSON file (-r FILE) and stdin (-r -).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

const confineMiB = 1 << 20

// confineSetResources puts want into the spec's resources (devices kept).
func confineSetResources(s *specs.Spec, want confineLimits) {
	mem, swap, quota, pids := want.Memory, want.Swap, want.Quota, want.Pids
	shares, period := want.Shares, want.Period
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem, Swap: &swap}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period, Cpus: want.Cpus}
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	if want.BlkioWeightSet {
		w := want.BlkioWeight
		s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
}

// TestConfineResources: every resource is in the cgroup files after create
// and after each way of updating it; an update changes only what it names.
func TestConfineResources(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	host := confineHostCPUs(t)
	first := strconv.Itoa(confineFirstCPU(t, host))
	want := confineLimits{
		Memory: 64 * confineMiB, Swap: 128 * confineMiB,
		Shares: 512, Quota: 50000, Period: 100000,
		Cpus: first, Pids: 50,
	}
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "sleep", "100"),
		fixture.WithSpec(func(s *specs.Spec) { confineSetResources(s, want) }))
	confineStart(t, r, b, id)
	cg := confineCgroupOf(t, id)
	cg.check("after create", want)

	// Flags: memory and swap up (runc's order of writes matters on v1:
	// memsw first when growing), a longer period, every CPU.
	confineMust(t, r, "update", "--memory", "96m", "--memory-swap", strconv.Itoa(192*confineMiB),
		"--cpu-shares", "768", "--cpu-quota", "30000", "--cpu-period", "200000",
		"--cpuset-cpus", host, "--pids-limit", "40", id)
	want = confineLimits{Memory: 96 * confineMiB, Swap: 192 * confineMiB, Shares: 768, Quota: 30000, Period: 200000,
		Cpus: host, Pids: 40}
	cg.check("after update with flags", want)

	// A JSON file: memory and swap down to the same value (no swap), a
	// shorter period, one CPU again.
	_, _, blkioOK := cg.blkioWeight()
	res := map[string]any{
		"memory": map[string]any{"limit": 48 * confineMiB, "swap": 48 * confineMiB},
		"cpu":    map[string]any{"shares": 256, "quota": 20000, "period": 50000, "cpus": first},
		"pids":   map[string]any{"limit": 30},
	}
	if blkioOK {
		res["blockIO"] = map[string]any{"weight": 300}
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "resources.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	confineMust(t, r, "update", "-r", file, id)
	want = confineLimits{Memory: 48 * confineMiB, Swap: 48 * confineMiB, Shares: 256, Quota: 20000, Period: 50000,
		Cpus: first, Pids: 30, BlkioWeight: 300, BlkioWeightSet: blkioOK}
	cg.check("after update -r "+file, want)

	// Stdin, one field: the rest stays as it was.
	cmd := r.Command("update", "-r", "-", id)
	cmd.Stdin = strings.NewReader(`{"pids": {"limit": 20}}`)
	if out := confineRunCmd(t, cmd, "", "", 30*time.Second); out.Code != 0 {
		t.Fatalf("update -r -: %s", out)
	}
	want.Pids = 20
	cg.check("after update -r - (pids only)", want)

	// A flag alone, -1 for unlimited pids.
	if blkioOK {
		confineMust(t, r, "update", "--blkio-weight", "700", id)
		want.BlkioWeight = 700
	}
	confineMust(t, r, "update", "--pids-limit", "-1", id)
	if got := cg.read("pids", "pids.max", "pids.max"); got != "max" {
		t.Errorf("pids.max after --pids-limit -1: %s, want max", got)
	}
	want.Pids = 0 // not compared below
	cg.checkBlkio(t, "after --blkio-weight", want)
	if !blkioOK {
		t.Logf("blkio weight not checked: the host has no blkio/io weight file")
	}

	// The state keeps what update set, and a second start of the cycle
	// (kill, delete) cleans the cgroup.
	confineMust(t, r, "kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	confineMust(t, r, "delete", id)
	confineNoLeftovers(t, r, id)
}

// checkBlkio checks only the blkio weight of want.
func (c *confineCgroup) checkBlkio(t testing.TB, what string, want confineLimits) {
	t.Helper()
	if !want.BlkioWeightSet {
		return
	}
	file, got, ok := c.blkioWeight()
	if !ok {
		t.Errorf("%s: no blkio weight file", what)
		return
	}
	if ws := c.blkioWant(file, want.BlkioWeight); got != ws[0] {
		t.Errorf("%s: %s = %d, want %d", what, file, got, ws[0])
	}
}

// TestConfineResourcesBlkioAtCreate: a blkio weight in the spec is in the
// cgroup after create, where the host has a weight file at all.
func TestConfineResourcesBlkioAtCreate(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	// Find out with a container that asks for no weight.
	probeID := confineID(t)
	pb := confineBundle(t, probeID, fixture.WithArgs("/bin/probe", "sleep", "100"))
	confineCreate(t, r, pb, probeID)
	_, _, ok := confineCgroupOf(t, probeID).blkioWeight()
	confineMust(t, r, "delete", "--force", probeID)
	if !ok {
		t.Skip("the host has no blkio/io weight file (neither CFQ nor BFQ group scheduling)")
	}
	id := confineID(t)
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "sleep", "100"), fixture.WithSpec(func(s *specs.Spec) {
		w := uint16(250)
		s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}))
	confineCreate(t, r, b, id)
	confineCgroupOf(t, id).checkBlkio(t, "after create", confineLimits{BlkioWeight: 250, BlkioWeightSet: true})
}

// TestConfineResourcesUnlimited: -1 is "no limit" in the spec, written as
// the kernel's unlimited value.
func TestConfineResourcesUnlimited(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "sleep", "100"), fixture.WithSpec(func(s *specs.Spec) {
		limit, pids := int64(-1), int64(-1)
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	}))
	confineCreate(t, r, b, id)
	cg := confineCgroupOf(t, id)
	if got := cg.read("pids", "pids.max", "pids.max"); got != "max" {
		t.Errorf("pids.max = %s, want max", got)
	}
	got := cg.read("memory", "memory.limit_in_bytes", "memory.max")
	if cg.v2 && got != "max" {
		t.Errorf("memory.max = %s, want max", got)
	}
	if !cg.v2 {
		// v1 shows the page-rounded LONG_MAX.
		if v, err := strconv.ParseInt(got, 10, 64); err != nil || v < 1<<62 {
			t.Errorf("memory.limit_in_bytes = %s, want unlimited", got)
		}
	}
	// And a limit set later can be lifted again.
	confineMust(t, r, "update", "--memory", "64m", "--pids-limit", "10", id)
	if got := cg.read("pids", "pids.max", "pids.max"); got != "10" {
		t.Errorf("pids.max after update = %s, want 10", got)
	}
	confineMust(t, r, "update", "--pids-limit", "-1", id)
	if got := cg.read("pids", "pids.max", "pids.max"); got != "max" {
		t.Errorf("pids.max after --pids-limit -1 = %s, want max", got)
	}
}

// TestConfineResourcesUnified: linux.resources.unified writes cgroup2 files
// as given: pids.max on a cgroup2 host, a hugetlb limit on a hybrid host
// whose cgroup2 side has the hugetlb controller.
func TestConfineResourcesUnified(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	mnt, ok := confineMounts(t)[""]
	if !ok {
		t.Skip("no cgroup2 hierarchy")
	}
	key, value := "pids.max", "7"
	if !confineV2(t) {
		ctrls, _ := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
		if !slices.Contains(strings.Fields(string(ctrls)), "hugetlb") {
			t.Skip("the cgroup2 side of this hybrid host has no controller to write")
		}
		key, value = "hugetlb.2MB.max", strconv.Itoa(4*confineMiB)
	}
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "sleep", "100"), fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.Resources.Unified = map[string]string{key: value}
	}))
	confineCreate(t, r, b, id)
	p := filepath.Join(mnt, confineCgroupDir(id), key)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if got := strings.TrimSpace(string(data)); got != value {
		t.Errorf("%s = %s, want %s", p, got, value)
	}
}
