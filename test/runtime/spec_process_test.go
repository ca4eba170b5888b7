package runtime_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if s == nil {
		s = []string{}
	}
	return s
}

func checkCaps(t *testing.T, got report.Capabilities, want specs.LinuxCapabilities) {
	t.Helper()
	sets := []struct {
		name      string
		got, want []string
	}{
		{"bounding", got.Bounding, want.Bounding},
		{"permitted", got.Permitted, want.Permitted},
		{"effective", got.Effective, want.Effective},
		{"inheritable", got.Inheritable, want.Inheritable},
		{"ambient", got.Ambient, want.Ambient},
	}
	for _, s := range sets {
		if !slices.Equal(sorted(s.got), sorted(s.want)) {
			t.Errorf("%s capabilities %q, want %q", s.name, sorted(s.got), sorted(s.want))
		}
	}
}

// TestSpecCapabilitiesDefault: the default set in bounding, permitted and
// effective; inheritable and ambient empty (CVE-2022-29162).
func TestSpecCapabilitiesDefault(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	rep := r.RunProbe(b, specID(t, "caps-default"))
	def := fixture.DefaultCapabilities()
	checkCaps(t, rep.Capabilities, specs.LinuxCapabilities{Bounding: def, Permitted: def, Effective: def})
}

// TestSpecCapabilitiesExact: for a non-root user the five sets after
// execve are exactly the spec's: the ambient set is what carries
// permitted and effective across execve.
func TestSpecCapabilitiesExact(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.User = specs.User{UID: fixture.BerthUID, GID: fixture.BerthGID}
	b.Spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
		Permitted:   []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Effective:   []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Inheritable: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Ambient:     []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
	}
	rep := r.RunProbe(b, specID(t, "caps-exact"))
	checkCaps(t, rep.Capabilities, *b.Spec.Process.Capabilities)
	if rep.UID != fixture.BerthUID || rep.EUID != fixture.BerthUID {
		t.Errorf("uid %d euid %d, want %d", rep.UID, rep.EUID, fixture.BerthUID)
	}
}

// TestSpecCapabilitiesNonRootNoAmbient: without ambient capabilities a
// non-root user ends up with empty permitted and effective sets, whatever
// the spec's permitted set says: execve drops them.
func TestSpecCapabilitiesNonRootNoAmbient(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.User = specs.User{UID: fixture.BerthUID, GID: fixture.BerthGID}
	rep := r.RunProbe(b, specID(t, "caps-noamb"))
	checkCaps(t, rep.Capabilities, specs.LinuxCapabilities{Bounding: fixture.DefaultCapabilities()})
}

// TestSpecCapabilitiesReducedRoot: root gets a reduced bounding set, and
// for root the kernel fills permitted and effective from it at execve;
// nothing above the bounding set is ever held.
func TestSpecCapabilitiesReducedRoot(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	reduced := []string{"CAP_CHOWN", "CAP_KILL", "CAP_SETUID"}
	b.Spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: reduced, Permitted: reduced, Effective: reduced,
	}
	rep := r.RunProbe(b, specID(t, "caps-root"))
	checkCaps(t, rep.Capabilities, specs.LinuxCapabilities{Bounding: reduced, Permitted: reduced, Effective: reduced})
	// CAP_MKNOD is gone: mknod fails.
	if w := specProbeWord(t, r, b, specID(t, "caps-root-mknod"), "mknod", "/tmp/null"); w != "EPERM" {
		t.Errorf("mknod without CAP_MKNOD: %s, want EPERM", w)
	}
}

// TestSpecCapabilitiesNone: no capabilities at all for root: even
// DAC_OVERRIDE is gone.
func TestSpecCapabilitiesNone(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.Capabilities = &specs.LinuxCapabilities{}
	rep := r.RunProbe(b, specID(t, "caps-none"))
	checkCaps(t, rep.Capabilities, specs.LinuxCapabilities{})
	// /home/berth is 0755 berth's: root without CAP_DAC_OVERRIDE cannot
	// write there.
	if w := specProbeWord(t, r, b, specID(t, "caps-none-write"), "open", "/home/berth", "r"); w != "ok" {
		t.Errorf("open /home/berth for reading: %s", w)
	}
	w := specProbeWord(t, r, b, specID(t, "caps-none-dac"), "write", "/home/berth/x", "x")
	if !strings.Contains(w, "permission denied") {
		t.Errorf("write into /home/berth without CAP_DAC_OVERRIDE: %q, want permission denied", w)
	}
}

// TestSpecNoNewPrivileges: noNewPrivileges is set when asked, not
// otherwise.
func TestSpecNoNewPrivileges(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	for _, on := range []bool{true, false} {
		b := fixture.Bundle(t)
		b.Spec.Process.NoNewPrivileges = on
		rep := r.RunProbe(b, specID(t, map[bool]string{true: "nnp-on", false: "nnp-off"}[on]))
		if rep.NoNewPrivs != on {
			t.Errorf("noNewPrivileges %v: the process reports %v", on, rep.NoNewPrivs)
		}
	}
}

// TestSpecUser: uid, gid, additional groups and umask as given; HOME from
// the container's /etc/passwd; the environment exactly as given.
func TestSpecUser(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	umask := uint32(0o027)
	b.Spec.Process.User = specs.User{UID: fixture.BerthUID, GID: fixture.BerthGID,
		AdditionalGids: []uint32{fixture.StaffGID, 4242}, Umask: &umask}
	env := []string{fixture.DefaultPath, "BERTH_A=1", "BERTH_EMPTY=", "BERTH_SPACES=a b  c", "TERM=xterm"}
	b.Spec.Process.Env = env
	rep := r.RunProbe(b, specID(t, "user"))
	if rep.UID != fixture.BerthUID || rep.EUID != fixture.BerthUID || rep.SUID != fixture.BerthUID {
		t.Errorf("uids %d/%d/%d, want %d", rep.UID, rep.EUID, rep.SUID, fixture.BerthUID)
	}
	if rep.GID != fixture.BerthGID || rep.EGID != fixture.BerthGID || rep.SGID != fixture.BerthGID {
		t.Errorf("gids %d/%d/%d, want %d", rep.GID, rep.EGID, rep.SGID, fixture.BerthGID)
	}
	groups := slices.Clone(rep.Groups)
	slices.Sort(groups)
	if !slices.Equal(groups, []int{fixture.StaffGID, 4242}) {
		t.Errorf("groups %v, want exactly [%d 4242]", rep.Groups, fixture.StaffGID)
	}
	if rep.Umask != "0027" {
		t.Errorf("umask %s, want 0027", rep.Umask)
	}
	want := append(slices.Clone(env), "HOME=/home/berth")
	if !slices.Equal(sorted(rep.Env), sorted(want)) {
		t.Errorf("environment %q, want exactly %q", rep.Env, want)
	}
}

// TestSpecUserHome: HOME from the spec wins; a uid without a passwd entry
// gets HOME=/; root gets /root.
func TestSpecUserHome(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	cases := []struct {
		name string
		uid  uint32
		env  []string
		home string
	}{
		{"root", 0, nil, "/root"},
		{"unknown", 4321, nil, "/"},
		{"given", fixture.BerthUID, []string{"HOME=/elsewhere"}, "/elsewhere"},
	}
	for _, c := range cases {
		b := fixture.Bundle(t)
		b.Spec.Process.User = specs.User{UID: c.uid, GID: c.uid}
		b.Spec.Process.Env = append([]string{fixture.DefaultPath}, c.env...)
		rep := r.RunProbe(b, specID(t, "home-"+c.name))
		var homes []string
		for _, e := range rep.Env {
			if v, ok := strings.CutPrefix(e, "HOME="); ok {
				homes = append(homes, v)
			}
		}
		if !slices.Equal(homes, []string{c.home}) {
			t.Errorf("%s: HOME %q, want exactly one, %q", c.name, homes, c.home)
		}
	}
}

// TestSpecUserDefaultGroups: a user without additionalGids has no
// supplementary groups, not root's nor /etc/group's.
func TestSpecUserDefaultGroups(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.User = specs.User{UID: fixture.BerthUID, GID: fixture.BerthGID}
	rep := r.RunProbe(b, specID(t, "groups-none"))
	if len(rep.Groups) != 0 {
		t.Errorf("supplementary groups %v, want none", rep.Groups)
	}
	if rep.Umask != "0022" {
		t.Errorf("umask %s, want the default 0022", rep.Umask)
	}
}

// TestSpecCwd: the process starts in cwd, which is created when the image
// lacks it.
func TestSpecCwd(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	for _, cwd := range []string{"/home/berth", "/does/not/exist/yet"} {
		b := fixture.Bundle(t)
		b.Spec.Process.Cwd = cwd
		rep := r.RunProbe(b, specID(t, "cwd-"+strings.ReplaceAll(strings.Trim(cwd, "/"), "/", "-")))
		if rep.Cwd != cwd {
			t.Errorf("cwd %q, want %q", rep.Cwd, cwd)
		}
	}
}

// TestSpecRlimits: each limit the spec lists is set, soft and hard.
func TestSpecRlimits(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
		{Type: "RLIMIT_MSGQUEUE", Soft: 4096, Hard: 8192},
	}
	rep := r.RunProbe(b, specID(t, "rlimits"))
	for _, l := range b.Spec.Process.Rlimits {
		got, ok := rep.Rlimits[l.Type]
		if !ok {
			t.Errorf("%s: not reported", l.Type)
			continue
		}
		if got.Soft != int64(l.Soft) || got.Hard != int64(l.Hard) {
			t.Errorf("%s: %d/%d, want %d/%d", l.Type, got.Soft, got.Hard, l.Soft, l.Hard)
		}
	}
}

// TestSpecRlimitAboveHard: raising RLIMIT_NOFILE above the host's hard
// limit needs CAP_SYS_RESOURCE; without it create fails, naming the limit.
func TestSpecRlimitAboveHard(t *testing.T) {
	t.Parallel()
	const capSysResource = 24
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	want := uint64(1048576)
	if want <= cur.Max {
		want = cur.Max + 1
	}
	if specHasCap(t, capSysResource) && want <= nrOpen(t) {
		t.Skip("the test process has CAP_SYS_RESOURCE: raising the hard limit is allowed")
	}
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: want, Hard: want}}
	id := specID(t, "rlimit-high")
	out, stderr, err := specRun(t, r, b, id, "/bin/probe", "exit", "0")
	if err == nil {
		t.Fatalf("run with RLIMIT_NOFILE %d above the hard limit %d succeeded: %s", want, cur.Max, out)
	}
	if !strings.Contains(stderr, "RLIMIT_NOFILE") {
		t.Errorf("error does not name RLIMIT_NOFILE: %s", stderr)
	}
	t.Logf("error: %s", strings.TrimSpace(stderr))
	specNoLeftovers(t, r, id)
}

func nrOpen(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	data, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 1 << 20
	}
	for _, c := range strings.TrimSpace(string(data)) {
		n = n*10 + uint64(c-'0')
	}
	return n
}

// TestSpecOOMScoreAdj: the process's oom_score_adj is the spec's.
func TestSpecOOMScoreAdj(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	adj := 500
	b.Spec.Process.OOMScoreAdj = &adj
	rep := r.RunProbe(b, specID(t, "oom"))
	if rep.OOMScoreAdj != adj {
		t.Errorf("oom_score_adj %d, want %d", rep.OOMScoreAdj, adj)
	}
	// Unset, it is inherited from the runtime: not the 500 above.
	b2 := fixture.Bundle(t)
	own := strings.TrimSpace(specReadString(t, "/proc/self/oom_score_adj"))
	rep2 := r.RunProbe(b2, specID(t, "oom-unset"))
	if got := rep2.OOMScoreAdj; own != "500" && got == adj {
		t.Errorf("oom_score_adj %d without one in the spec", got)
	}
}

// TestSpecSysctl: a network sysctl is set in the container's own network
// namespace; the host's value does not change.
func TestSpecSysctl(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	const key = "/proc/sys/net/ipv4/ip_forward"
	hostBefore := specReadString(t, key)
	want := "1"
	if strings.TrimSpace(hostBefore) == "1" {
		want = "0"
	}
	b.Spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": want, "kernel.shm_rmid_forced": "1"}
	if got := strings.TrimSpace(specCat(t, r, b, specID(t, "sysctl-net"), key)); got != want {
		t.Errorf("ip_forward in the container: %q, want %q", got, want)
	}
	if got := strings.TrimSpace(specCat(t, r, b, specID(t, "sysctl-ipc"), "/proc/sys/kernel/shm_rmid_forced")); got != "1" {
		t.Errorf("kernel.shm_rmid_forced in the container: %q, want 1", got)
	}
	if after := specReadString(t, key); after != hostBefore {
		t.Errorf("host ip_forward changed from %q to %q", hostBefore, after)
	}
}

// TestSpecSysctlRefused: a sysctl no namespace isolates, or one of a
// namespace the container shares with the host, is refused at create and
// the host's value stays; a value cannot smuggle a second key
// (CVE-2022-0811 class).
func TestSpecSysctlRefused(t *testing.T) {
	t.Parallel()
	corePattern := specReadString(t, "/proc/sys/kernel/core_pattern")
	ipForward := specReadString(t, "/proc/sys/net/ipv4/ip_forward")
	cases := []struct {
		name    string
		sysctl  map[string]string
		noNet   bool
		mention string
	}{
		{"core-pattern", map[string]string{"kernel.core_pattern": "|/bin/false"}, false, "kernel.core_pattern"},
		{"core-pattern-slashes", map[string]string{"kernel/core_pattern": "|/bin/false"}, false, "core_pattern"},
		{"net-without-netns", map[string]string{"net.ipv4.ip_forward": "1"}, true, "net.ipv4.ip_forward"},
		{"escape", map[string]string{"net/../kernel/core_pattern": "|/bin/false"}, false, "core_pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			b := fixture.Bundle(t)
			b.Spec.Linux.Sysctl = c.sysctl
			if c.noNet {
				b.Spec.Linux.Namespaces = slices.DeleteFunc(b.Spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
					return n.Type == specs.NetworkNamespace
				})
			}
			id := specID(t, "sysctl-"+c.name)
			out, stderr, err := specRun(t, r, b, id, "/bin/probe", "exit", "0")
			if err == nil {
				t.Errorf("run with sysctl %v succeeded: %s", c.sysctl, out)
			} else if !strings.Contains(stderr, c.mention) {
				t.Errorf("error does not name %s: %s", c.mention, stderr)
			}
			specNoLeftovers(t, r, id)
		})
	}
	// A value with a second key in it: either refused or written as one
	// value; the host's core_pattern never changes.
	t.Run("smuggle", func(t *testing.T) {
		t.Parallel()
		r := runtimetest.New(t)
		b := fixture.Bundle(t)
		b.Spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1\nkernel.core_pattern=|/bin/false"}
		specRun(t, r, b, specID(t, "sysctl-smuggle"), "/bin/probe", "exit", "0")
	})
	t.Cleanup(func() {
		if after := specReadString(t, "/proc/sys/kernel/core_pattern"); after != corePattern {
			t.Errorf("host core_pattern changed from %q to %q", corePattern, after)
		}
		if after := specReadString(t, "/proc/sys/net/ipv4/ip_forward"); after != ipForward {
			t.Errorf("host ip_forward changed from %q to %q", ipForward, after)
		}
	})
}

// TestSpecHostnameDomainname: hostname and domainname as given, in the
// container's own uts namespace; a hostname without one (the host's) is
// refused. TestSpecNamespacesJoinByPath sets one in a joined namespace.
func TestSpecHostnameDomainname(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Hostname = "berth-spec-host"
	b.Spec.Domainname = "spec.berth.test"
	hostName, _ := os.Hostname()
	rep := r.RunProbe(b, specID(t, "uts"))
	if rep.Hostname != "berth-spec-host" || rep.Domainname != "spec.berth.test" {
		t.Errorf("hostname %q domainname %q, want berth-spec-host and spec.berth.test", rep.Hostname, rep.Domainname)
	}
	if now, _ := os.Hostname(); now != hostName {
		t.Errorf("the host's name changed from %q to %q", hostName, now)
	}

	b2 := fixture.Bundle(t)
	b2.Spec.Linux.Namespaces = slices.DeleteFunc(b2.Spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return n.Type == specs.UTSNamespace
	})
	id := specID(t, "uts-shared")
	if out, _, err := specRun(t, r, b2, id, "/bin/probe", "exit", "0"); err == nil {
		t.Errorf("hostname without a uts namespace accepted: %s", out)
	}
	if now, _ := os.Hostname(); now != hostName {
		t.Errorf("the host's name changed from %q to %q", hostName, now)
	}
	specNoLeftovers(t, r, id)
}
