package cgroups

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestInnerPath(t *testing.T) {
	ok := []struct{ path, id, want string }{
		{"/a/b", "c1", "/a/b"},
		{"/a//b/./", "c1", "/a/b"},
		{"/a/../b", "c1", "/b"},
		{"a/b", "c1", "a/b"},
		{"./a/x/../b", "c1", "a/b"},
		{"", "c1", "c1"},
		{"docker:abc", "c1", "docker:abc"},     // two parts: a plain name
		{"/x.slice:a:b", "c1", "/x.slice:a:b"}, // has a slash: a plain path
		{"foo:bar:baz", "c1", "foo:bar:baz"},   // not a slice: a plain name
	}
	for _, tt := range ok {
		got, err := innerPath(tt.path, tt.id)
		if err != nil || got != tt.want {
			t.Errorf("innerPath(%q, %q) = %q, %v; want %q", tt.path, tt.id, got, err, tt.want)
		}
	}
	bad := []struct{ path, id string }{
		{"/..", "c1"},
		{"/../etc", "c1"},
		{"/a/../../b", "c1"},
		{"../x", "c1"},
		{"a/../../x", "c1"},
		{"/", "c1"},
		{"/a/..", "c1"},
		{".", "c1"},
		{"a/..", "c1"},
		{"/a\x00b", "c1"},
		{"", ""},
		{"", ".."},
		{"", "a/b"},
	}
	for _, tt := range bad {
		if got, err := innerPath(tt.path, tt.id); err == nil {
			t.Errorf("innerPath(%q, %q) = %q, want an error", tt.path, tt.id, got)
		}
	}
}

func TestSystemdPathUnsupported(t *testing.T) {
	for _, p := range []string{"system.slice:docker:abc", ":runc:abc", "machine.slice:libpod:x"} {
		if _, err := innerPath(p, "c1"); !errors.Is(err, ErrSystemdUnsupported) {
			t.Errorf("innerPath(%q): got %v, want ErrSystemdUnsupported", p, err)
		}
		if _, err := New(p, "c1", false); !errors.Is(err, ErrSystemdUnsupported) {
			t.Errorf("New(%q): got %v, want ErrSystemdUnsupported", p, err)
		}
	}
	_, err := New("/a", "c1", true)
	if !errors.Is(err, ErrSystemdUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("New(systemd=true): got %v, want ErrSystemdUnsupported", err)
	}
}

func mustLayout(t *testing.T, mountinfo string, unifiedControllers ...string) Layout {
	t.Helper()
	l, err := parseMountinfo(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	for i := range l.Hierarchies {
		if l.Hierarchies[i].Unified {
			l.Hierarchies[i].Controllers = unifiedControllers
		}
	}
	return l
}

func TestResolvePaths(t *testing.T) {
	hybrid := mustLayout(t, hybridMountinfo, "hugetlb")
	hybridOwn := map[string]string{
		"cpu": "/", "cpuacct": "/", "cpuset": "/", "memory": "/process_api/940a", "devices": "/",
		"freezer": "/", "blkio": "/", "pids": "/", "name=systemd": "/", "": "/",
	}
	tests := []struct {
		name  string
		l     Layout
		inner string
		own   map[string]string
		want  map[string]string
	}{
		{"hybrid absolute", hybrid, "/berth/c1", nil, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/berth/c1", "cpuacct": "/sys/fs/cgroup/cpuacct/berth/c1",
			"cpuset": "/sys/fs/cgroup/cpuset/berth/c1", "memory": "/sys/fs/cgroup/memory/berth/c1",
			"devices": "/sys/fs/cgroup/devices/berth/c1", "freezer": "/sys/fs/cgroup/freezer/berth/c1",
			"blkio": "/sys/fs/cgroup/blkio/berth/c1", "pids": "/sys/fs/cgroup/pids/berth/c1",
			"name=systemd": "/sys/fs/cgroup/systemd/berth/c1", "": "/sys/fs/cgroup/unified/berth/c1",
		}},
		{"hybrid relative, runtime in a nested memory cgroup", hybrid, "c1", hybridOwn, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/c1", "cpuacct": "/sys/fs/cgroup/cpuacct/c1",
			"cpuset": "/sys/fs/cgroup/cpuset/c1", "memory": "/sys/fs/cgroup/memory/process_api/940a/c1",
			"devices": "/sys/fs/cgroup/devices/c1", "freezer": "/sys/fs/cgroup/freezer/c1",
			"blkio": "/sys/fs/cgroup/blkio/c1", "pids": "/sys/fs/cgroup/pids/c1",
			"name=systemd": "/sys/fs/cgroup/systemd/c1", "": "/sys/fs/cgroup/unified/c1",
		}},
		{"legacy co-mounted absolute", mustLayout(t, legacyMountinfo), "/c1", nil, map[string]string{
			"name=systemd": "/sys/fs/cgroup/systemd/c1",
			"cpu":          "/sys/fs/cgroup/cpu,cpuacct/c1", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c1",
			"net_cls": "/sys/fs/cgroup/net_cls,net_prio/c1", "net_prio": "/sys/fs/cgroup/net_cls,net_prio/c1",
			"cpuset": "/sys/fs/cgroup/cpuset/c1", "memory": "/sys/fs/cgroup/memory/c1",
			"freezer": "/sys/fs/cgroup/freezer/c1",
		}},
		// cgroup2 starts from the parent of the runtime's own cgroup.
		{"unified relative", mustLayout(t, unifiedMountinfo), "a/c1",
			map[string]string{"": "/user.slice/user-0.slice/session-1.scope"},
			map[string]string{"": "/sys/fs/cgroup/user.slice/user-0.slice/a/c1"}},
		{"unified relative from root", mustLayout(t, unifiedMountinfo), "c1",
			map[string]string{"": "/"}, map[string]string{"": "/sys/fs/cgroup/c1"}},
		{"nested mount root absolute", mustLayout(t, nestedMountinfo), "/c1", nil, map[string]string{
			"memory": "/sys/fs/cgroup/memory/c1", "pids": "/sys/fs/cgroup/pids/c1"}},
		{"nested mount root relative", mustLayout(t, nestedMountinfo), "c1",
			map[string]string{"memory": "/docker/abc/sub", "pids": "/docker/abc"}, map[string]string{
				"memory": "/sys/fs/cgroup/memory/sub/c1", "pids": "/sys/fs/cgroup/pids/c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolvePaths(tt.l, tt.inner, tt.own)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestResolvePathsOwnOutsideMount(t *testing.T) {
	// A shared-PID-namespace setup can show the runtime a cgroup outside
	// the subtree its mounts expose; joining it would escape the mount.
	l := mustLayout(t, nestedMountinfo)
	_, err := resolvePaths(l, "c1", map[string]string{"memory": "/other", "pids": "/docker/abc"})
	if err == nil {
		t.Fatal("resolvePaths accepted an own cgroup outside the mount root")
	}
	_, err = resolvePaths(l, "c1", map[string]string{"pids": "/docker/abc"})
	if err == nil {
		t.Fatal("resolvePaths accepted a hierarchy missing from /proc/self/cgroup")
	}
}

func TestLoadPaths(t *testing.T) {
	in := map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct/c1", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c1", "": "/sys/fs/cgroup/unified/c1"}
	m := Load(in)
	in["cpu"] = "changed"
	got := m.Paths()
	if got["cpu"] != "/sys/fs/cgroup/cpu,cpuacct/c1" {
		t.Errorf("Load kept a reference to the caller's map: %v", got)
	}
	got["cpu"] = "changed"
	if m.Paths()["cpu"] == "changed" {
		t.Error("Paths returned the manager's own map")
	}
	if d := m.(*manager).dirs(); len(d) != 2 {
		t.Errorf("dirs() = %v, want the co-mounted directory once", d)
	}
	if p := m.(*manager).primary(); p != "/sys/fs/cgroup/cpu,cpuacct/c1" {
		t.Errorf("primary() = %q, want the v1 directory", p)
	}
}
