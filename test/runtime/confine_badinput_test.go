package runtime_test

// Bad resources and seccomp profiles: each is a clear error, and a failed
// create leaves nothing (no container in list, no state directory, no
// cgroup directory on any hierarchy); a failed update leaves the limits as
// they were.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// TestConfineBadCreate: create refuses bad resources and profiles.
func TestConfineBadCreate(t *testing.T) {
	t.Parallel()
	v2 := confineV2(t)
	// On a hybrid host linux.resources.unified goes to the cgroup2
	// hierarchy, which has none of the v1 controllers: memory.max does
	// not exist there. On cgroup2 it does, so take a made-up file.
	unifiedKey := "memory.max"
	if v2 {
		unifiedKey = "bogus.file"
	}
	outside := confineOutsideCPUs()
	for _, tc := range []struct {
		name  string
		edit  func(*specs.Spec)
		wants []string
	}{
		{"negative-memory", func(s *specs.Spec) {
			v := int64(-2)
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &v}
		}, []string{"memory", "-2"}},
		{"negative-swap", func(s *specs.Spec) {
			l, v := int64(64*confineMiB), int64(-5)
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &l, Swap: &v}
		}, []string{"swap"}},
		{"swap-below-memory", func(s *specs.Spec) {
			l, v := int64(64*confineMiB), int64(32*confineMiB)
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &l, Swap: &v}
		}, []string{"swap"}},
		{"unknown-unified-key", func(s *specs.Spec) {
			s.Linux.Resources.Unified = map[string]string{unifiedKey: "1"}
		}, []string{unifiedKey}},
		{"unified-reserved-key", func(s *specs.Spec) {
			s.Linux.Resources.Unified = map[string]string{"cgroup.procs": "1"}
		}, []string{"cgroup.procs"}},
		{"unified-path-key", func(s *specs.Spec) {
			s.Linux.Resources.Unified = map[string]string{"../memory.max": "1"}
		}, []string{"../memory.max"}},
		{"cpuset-outside-host", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: outside}
		}, []string{"cpuset", outside}},
		{"cpuset-garbage", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "zero"}
		}, []string{"cpuset", "zero"}},
		{"seccomp-unknown-action", func(s *specs.Spec) {
			s.Linux.Seccomp = confineMkdirProfile("SCMP_ACT_BOGUS", nil)
		}, []string{"SCMP_ACT_BOGUS"}},
		{"seccomp-unknown-default-action", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}
		}, []string{"SCMP_ACT_NOPE"}},
		{"seccomp-unknown-operator", func(s *specs.Spec) {
			s.Linux.Seccomp = confineMkdirProfile(specs.ActErrno, nil)
			s.Linux.Seccomp.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: "SCMP_CMP_BOGUS"}}
		}, []string{"SCMP_CMP_BOGUS"}},
		{"seccomp-unknown-arch", func(s *specs.Spec) {
			s.Linux.Seccomp = confineMkdirProfile(specs.ActErrno, nil)
			s.Linux.Seccomp.Architectures = []specs.Arch{"SCMP_ARCH_BOGUS"}
		}, []string{"SCMP_ARCH_BOGUS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			id := confineID(t)
			b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "exit", "0"), fixture.WithSpec(tc.edit))
			_, res := confineTryCreate(t, r, b, id)
			confineFails(t, "create with "+tc.name, res, tc.wants...)
			confineNoLeftovers(t, r, id)
			// run takes the same path.
			res = confineExec(t, r, "run", "--bundle", b.Dir, id)
			confineFails(t, "run with "+tc.name, res, tc.wants...)
			confineNoLeftovers(t, r, id)
		})
	}
}

// TestConfineBadUpdate: update refuses bad values, through flags and
// through -r, and the container keeps its limits.
func TestConfineBadUpdate(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	host := confineHostCPUs(t)
	first := strconv.Itoa(confineFirstCPU(t, host))
	want := confineLimits{Memory: 64 * confineMiB, Swap: 64 * confineMiB, Shares: 512, Quota: 50000, Period: 100000,
		Cpus: first, Pids: 50}
	b := confineBundle(t, id, fixture.WithArgs("/bin/probe", "sleep", "100"),
		fixture.WithSpec(func(s *specs.Spec) { confineSetResources(s, want) }))
	confineStart(t, r, b, id)
	cg := confineCgroupOf(t, id)
	cg.check("after create", want)

	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"memory-abc", []string{"--memory", "abc"}, []string{"abc"}},
		{"memory-negative", []string{"--memory", "-5"}, []string{"-5"}},
		{"pids-abc", []string{"--pids-limit", "ten"}, []string{"ten"}},
		{"cpuset-outside-host", []string{"--cpuset-cpus", confineOutsideCPUs()}, []string{"cpuset", confineOutsideCPUs()}},
		{"swap-below-memory", []string{"--memory-swap", strconv.Itoa(32 * confineMiB)}, []string{"swap"}},
		{"file-not-json", []string{"-r", file("bad.json", "{memory")}, []string{"bad.json"}},
		{"file-negative-memory", []string{"-r", file("neg.json", `{"memory": {"limit": -2}}`)}, []string{"memory", "-2"}},
		{"file-unknown-field", []string{"-r", file("unknown.json", `{"memroy": {"limit": 1}}`)}, []string{"memroy"}},
		{"file-missing", []string{"-r", filepath.Join(dir, "missing.json")}, []string{"missing.json"}},
	} {
		res := confineExec(t, r, append(append([]string{"update"}, tc.args...), id)...)
		confineFails(t, "update "+strings.Join(tc.args, " "), res, tc.wants...)
		cg.check("after the refused update "+tc.name, want)
	}
	// A stopped or missing container cannot be updated.
	confineFails(t, "update of a missing container", confineExec(t, r, "update", "--pids-limit", "5", id+"-missing"), id+"-missing")
	confineMust(t, r, "kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	confineFails(t, "update of a stopped container", confineExec(t, r, "update", "--pids-limit", "5", id), "stopped")
}

// confineOutsideCPUs is a cpuset beyond the host's CPUs: "0-127", or a
// wider one on a host that has a CPU 127.
func confineOutsideCPUs() string {
	if _, err := os.Stat("/sys/devices/system/cpu/cpu127"); err == nil {
		return "0-8191"
	}
	return "0-127"
}
