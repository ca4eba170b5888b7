package specconv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// runCgroupParent holds the containers of these tests; removed at the end.
var runCgroupParent = fmt.Sprintf("/berth-test-specconv-%d", os.Getpid())

// runSpec builds a spec with Spec for the busybox fixture (image Cmd: the
// probe's report), runs it with the runtime under test and returns what
// the probe saw.
func runSpec(t *testing.T, name string, edit func(o *Options)) *report.Report {
	t.Helper()
	runtimetest.RequireRoot(t)
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	h.CgroupParent = runCgroupParent
	t.Cleanup(func() { removeCgroupParent(t) })

	img := &dockerspec.DockerOCIImage{}
	img.OS = "linux"
	img.Config.ImageConfig = ocispec.ImageConfig{Cmd: []string{"/bin/probe", "report"}, Env: []string{fixture.DefaultPath}}
	id := fmt.Sprintf("specconv-%s-%d", name, os.Getpid())
	o := &Options{ContainerID: id, Rootfs: b.Rootfs}
	if edit != nil {
		edit(o)
	}
	s, _, err := Spec(img, o, h)
	if err != nil {
		t.Fatalf("Spec: %v", err)
	}
	b.Spec = s
	b.Save(t)
	out, stderr, err := r.Exec("run", "--bundle", b.Dir, id)
	if err != nil {
		t.Fatalf("run %s: %v\nstdout: %s\nstderr: %s", id, err, out, stderr)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("probe report: %v\n%s\nstderr: %s", err, out, stderr)
	}
	if len(rep.Errors) > 0 {
		t.Logf("probe errors: %q", rep.Errors)
	}
	return &rep
}

// removeCgroupParent removes the tests' parent cgroup in every hierarchy
// once it is empty (the runtime removes each container's own).
func removeCgroupParent(t *testing.T) {
	layout, err := cgroups.Detect()
	if err != nil {
		return
	}
	for _, hier := range layout.Hierarchies {
		os.Remove(filepath.Join(hier.Mountpoint, runCgroupParent))
	}
}

// TestRunDefaults runs Spec's default container with berth-runtime and
// checks, from inside, what docker's defaults promise: the 14
// capabilities in bounding, permitted and effective and nothing
// inheritable or ambient, seccomp in filter mode, masked and read-only
// paths, the hostname, the user and the environment.
func TestRunDefaults(t *testing.T) {
	rep := runSpec(t, "defaults", nil)
	want := fixture.DefaultCapabilities()
	c := rep.Capabilities
	if !slices.Equal(c.Bounding, want) || !slices.Equal(c.Permitted, want) || !slices.Equal(c.Effective, want) {
		t.Errorf("capabilities bounding %v permitted %v effective %v, want %v", c.Bounding, c.Permitted, c.Effective, want)
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v, want none", c.Inheritable, c.Ambient)
	}
	if rep.Seccomp != 2 || rep.SeccompFilters == 0 {
		t.Errorf("seccomp mode %d filters %d, want filter mode (2) with Docker's profile", rep.Seccomp, rep.SeccompFilters)
	}
	if rep.NoNewPrivs {
		t.Error("no_new_privs set, docker's default is off")
	}
	for _, p := range fixture.DefaultMaskedPaths() {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if _, ok := rep.Mount(p); !ok {
			t.Errorf("masked path %s: nothing mounted over it", p)
		}
	}
	for _, p := range fixture.DefaultReadonlyPaths() {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if m, ok := rep.Mount(p); !ok || !m.HasOption("ro") {
			t.Errorf("read-only path %s: %+v, want a read-only mount", p, m)
		}
	}
	for dest, ro := range map[string]bool{"/sys": true, "/sys/fs/cgroup": true, "/dev/shm": false, "/proc": false} {
		m, ok := rep.Mount(dest)
		if !ok || m.HasOption("ro") != ro {
			t.Errorf("%s: %+v, want mounted, read-only %v", dest, m, ro)
		}
	}
	if shm, _ := rep.Mount("/dev/shm"); !slices.Contains(shm.SuperOptions, "size=65536k") {
		t.Errorf("/dev/shm super options %v, want 64 MiB", shm.SuperOptions)
	}
	id := fmt.Sprintf("specconv-defaults-%d", os.Getpid())
	if rep.Hostname != id[:12] || rep.UID != 0 || rep.GID != 0 || rep.Cwd != "/" {
		t.Errorf("hostname %q uid %d gid %d cwd %q", rep.Hostname, rep.UID, rep.GID, rep.Cwd)
	}
	for _, e := range []string{fixture.DefaultPath, "HOSTNAME=" + id[:12], "HOME=/root"} {
		if !slices.Contains(rep.Env, e) {
			t.Errorf("env %q lacks %q", rep.Env, e)
		}
	}
	if rep.Namespaces["net"] == 0 || rep.Namespaces["uts"] == 0 {
		t.Errorf("namespaces %v", rep.Namespaces)
	}
	for _, line := range rep.Cgroup {
		if strings.Contains(line, "memory:") && !strings.Contains(line, id) {
			t.Errorf("cgroup %q is not the container's", line)
		}
	}
}

// TestRunUser runs as the fixture's user "berth": the ids and groups come
// from the image's /etc/passwd and /etc/group, and a non-root process
// keeps only the bounding set, as under docker.
func TestRunUser(t *testing.T) {
	rep := runSpec(t, "user", func(o *Options) { o.User = "berth"; o.GroupAdd = []string{"tty"} })
	if rep.UID != fixture.BerthUID || rep.GID != fixture.BerthGID {
		t.Errorf("uid %d gid %d, want %d %d", rep.UID, rep.GID, fixture.BerthUID, fixture.BerthGID)
	}
	groups := slices.Clone(rep.Groups)
	slices.Sort(groups)
	if want := []int{5, fixture.StaffGID, fixture.BerthGID}; !slices.Equal(groups, want) {
		t.Errorf("groups %v, want %v", groups, want)
	}
	if !slices.Contains(rep.Env, "HOME=/home/berth") {
		t.Errorf("env %q lacks HOME=/home/berth", rep.Env)
	}
	if len(rep.Capabilities.Effective) != 0 || !slices.Equal(rep.Capabilities.Bounding, fixture.DefaultCapabilities()) {
		t.Errorf("capabilities %+v, want the defaults in bounding only", rep.Capabilities)
	}
}

// TestRunPrivileged: every capability the engine holds, no seccomp, no
// masked paths, /sys writable.
func TestRunPrivileged(t *testing.T) {
	rep := runSpec(t, "privileged", func(o *Options) { o.Privileged = true })
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(h.Capabilities)
	slices.Sort(want)
	if !slices.Equal(rep.Capabilities.Bounding, want) || !slices.Equal(rep.Capabilities.Effective, want) {
		t.Errorf("capabilities %+v, want %v", rep.Capabilities, want)
	}
	if rep.Seccomp != 0 {
		t.Errorf("seccomp mode %d, want none", rep.Seccomp)
	}
	if _, ok := rep.Mount("/proc/kcore"); ok {
		t.Error("/proc/kcore masked in a privileged container")
	}
	if m, ok := rep.Mount("/sys"); !ok || m.HasOption("ro") {
		t.Errorf("/sys %+v, want writable", m)
	}
}

// TestRunOptions: cap-drop ALL, a read-only rootfs with a tmpfs, and
// seccomp=unconfined, all in one container.
func TestRunOptions(t *testing.T) {
	rep := runSpec(t, "options", func(o *Options) {
		o.CapDrop, o.CapAdd = []string{"ALL"}, []string{"KILL"}
		o.ReadonlyRootfs = true
		o.Tmpfs = map[string]string{"/scratch": "size=1m"}
		o.SecurityOpt = []string{"seccomp=unconfined", "no-new-privileges"}
		o.Hostname = "opts"
	})
	if !slices.Equal(rep.Capabilities.Bounding, []string{"CAP_KILL"}) {
		t.Errorf("bounding %v, want only CAP_KILL", rep.Capabilities.Bounding)
	}
	if rep.Seccomp != 0 || !rep.NoNewPrivs || rep.Hostname != "opts" {
		t.Errorf("seccomp %d nnp %v hostname %q", rep.Seccomp, rep.NoNewPrivs, rep.Hostname)
	}
	if m, ok := rep.Mount("/"); !ok || !m.HasOption("ro") {
		t.Errorf("/ %+v, want read-only", m)
	}
	if m, ok := rep.Mount("/scratch"); !ok || m.FSType != "tmpfs" || !m.HasOption("noexec") || m.HasOption("ro") {
		t.Errorf("/scratch %+v, want a writable noexec tmpfs", m)
	}
}
