package cgroups

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The mount table of the berth build machines: v1 controllers, one per
// hierarchy, a named systemd hierarchy, cgroup2 at /sys/fs/cgroup/unified.
const hybridMountinfo = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// A systemd v1 host (Debian 10, RHEL 7): co-mounted controllers, optional
// fields, mount flags among the super options.
const legacyMountinfo = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
30 26 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
31 26 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,net_cls,net_prio
32 26 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuset,clone_children
33 26 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
34 26 0:32 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,freezer
`

const unifiedMountinfo = `24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 24 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

// Inside a container without a cgroup namespace: the hierarchies are bind
// mounts of the container's own subtree, and one is mounted twice.
const nestedMountinfo = `700 650 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
701 650 0:32 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
702 650 0:31 /docker/abc /mnt/other\040memory ro - cgroup cgroup rw,memory
`

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Layout
	}{
		{"hybrid", hybridMountinfo, Layout{Mode: Hybrid, Hierarchies: []Hierarchy{
			{Mountpoint: "/sys/fs/cgroup/cpu", Root: "/", Controllers: []string{"cpu"}},
			{Mountpoint: "/sys/fs/cgroup/cpuacct", Root: "/", Controllers: []string{"cpuacct"}},
			{Mountpoint: "/sys/fs/cgroup/cpuset", Root: "/", Controllers: []string{"cpuset"}},
			{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", Controllers: []string{"memory"}},
			{Mountpoint: "/sys/fs/cgroup/devices", Root: "/", Controllers: []string{"devices"}},
			{Mountpoint: "/sys/fs/cgroup/freezer", Root: "/", Controllers: []string{"freezer"}},
			{Mountpoint: "/sys/fs/cgroup/blkio", Root: "/", Controllers: []string{"blkio"}},
			{Mountpoint: "/sys/fs/cgroup/pids", Root: "/", Controllers: []string{"pids"}},
			{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", Controllers: []string{"name=systemd"}},
			{Mountpoint: "/sys/fs/cgroup/unified", Root: "/", Unified: true},
		}}},
		{"legacy co-mounted", legacyMountinfo, Layout{Mode: Legacy, Hierarchies: []Hierarchy{
			{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", Controllers: []string{"name=systemd"}},
			{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", Controllers: []string{"cpu", "cpuacct"}},
			{Mountpoint: "/sys/fs/cgroup/net_cls,net_prio", Root: "/", Controllers: []string{"net_cls", "net_prio"}},
			{Mountpoint: "/sys/fs/cgroup/cpuset", Root: "/", Controllers: []string{"cpuset"}},
			{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", Controllers: []string{"memory"}},
			{Mountpoint: "/sys/fs/cgroup/freezer", Root: "/", Controllers: []string{"freezer"}},
		}}},
		{"unified", unifiedMountinfo, Layout{Mode: Unified, Hierarchies: []Hierarchy{
			{Mountpoint: "/sys/fs/cgroup", Root: "/", Unified: true},
		}}},
		{"nested, bind-mounted twice", nestedMountinfo, Layout{Mode: Legacy, Hierarchies: []Hierarchy{
			{Mountpoint: "/sys/fs/cgroup/memory", Root: "/docker/abc", Controllers: []string{"memory"}},
			{Mountpoint: "/sys/fs/cgroup/pids", Root: "/docker/abc", Controllers: []string{"pids"}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseMountinfoNoCgroups(t *testing.T) {
	_, err := parseMountinfo(strings.NewReader("22 1 253:1 / / rw - ext4 /dev/vda rw\n"))
	if !errors.Is(err, errNoCgroups) {
		t.Fatalf("got %v, want errNoCgroups", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/a\040b`:   "/mnt/a b",
		`/x\134y`:       `/x\y`,
		`/plain`:        "/plain",
		`/trailing\04`:  `/trailing\04`,
		`/not\9octal12`: `/not\9octal12`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLayoutHierarchyOf(t *testing.T) {
	l, err := parseMountinfo(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	l.Hierarchies[len(l.Hierarchies)-1].Controllers = []string{"hugetlb"}
	for c, want := range map[string]string{
		"memory":       "/sys/fs/cgroup/memory",
		"name=systemd": "/sys/fs/cgroup/systemd",
		"hugetlb":      "/sys/fs/cgroup/unified",
	} {
		h, ok := l.HierarchyOf(c)
		if !ok || h.Mountpoint != want {
			t.Errorf("HierarchyOf(%q) = %v, %v; want %s", c, h.Mountpoint, ok, want)
		}
	}
	if _, ok := l.HierarchyOf("rdma"); ok {
		t.Error("HierarchyOf(rdma) found a hierarchy on a host without it")
	}
	if u, ok := l.Unified(); !ok || u.Mountpoint != "/sys/fs/cgroup/unified" {
		t.Errorf("Unified() = %v, %v", u, ok)
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"hybrid, nested memory cgroup", `9:name=systemd:/
8:pids:/
4:memory:/process_api/940aeb18
1:cpu:/
0::/
`, map[string]string{"name=systemd": "/", "pids": "/", "memory": "/process_api/940aeb18", "cpu": "/", "": "/"}},
		{"co-mounted", "3:cpu,cpuacct:/docker/x\n2:net_cls,net_prio:/\n", map[string]string{
			"cpu": "/docker/x", "cpuacct": "/docker/x", "net_cls": "/", "net_prio": "/"}},
		{"unified, colon in path", "0::/user.slice/a:b.scope\n", map[string]string{"": "/user.slice/a:b.scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcCgroup(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := parseProcCgroup(strings.NewReader("garbage\n")); err == nil {
		t.Error("parseProcCgroup accepted a line without colons")
	}
}

// Detect and ProcessCgroups on the machine running the test: whatever the
// layout, the hierarchies Detect finds are exactly those of /proc/self/cgroup.
func TestDetectMatchesSelf(t *testing.T) {
	l, err := Detect()
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	own, err := ProcessCgroups(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l.Hierarchies {
		key := ""
		if !h.Unified {
			key = h.Controllers[0]
		}
		if _, ok := own[key]; !ok {
			t.Errorf("hierarchy %s (%q) missing from /proc/self/cgroup %v", h.Mountpoint, key, own)
		}
	}
}
