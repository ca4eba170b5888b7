package specconv

import (
	"maps"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func nsList(s *specs.Spec) []string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		e := string(n.Type)
		if n.Path != "" {
			e += "=" + n.Path
		}
		out = append(out, e)
	}
	return out
}

func TestNamespaces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		edit     func(o *Options)
		host     func(h *Host)
		want     []string
		hostname string
	}{
		{name: "defaults on a v1 host", want: []string{"mount", "network", "uts", "pid", "ipc"}, hostname: testID[:12]},
		{name: "defaults on a v2 host with time namespaces", host: func(h *Host) { h.CgroupV2, h.TimeNamespace = true, true },
			want: []string{"mount", "network", "uts", "pid", "ipc", "cgroup", "time"}, hostname: testID[:12]},
		{name: "cgroupns host on v2", host: func(h *Host) { h.CgroupV2 = true }, edit: func(o *Options) { o.CgroupnsMode = "host" },
			want: []string{"mount", "network", "uts", "pid", "ipc"}, hostname: testID[:12]},
		{name: "cgroupns private on v1", edit: func(o *Options) { o.CgroupnsMode = "private" },
			want: []string{"mount", "network", "uts", "pid", "ipc", "cgroup"}, hostname: testID[:12]},
		{name: "engine network namespace", edit: func(o *Options) { o.Network.Path = "/run/berth/netns/abc" },
			want: []string{"mount", "network=/run/berth/netns/abc", "uts", "pid", "ipc"}, hostname: testID[:12]},
		{name: "host network takes the host's name", edit: func(o *Options) { o.Network.Mode = NamespaceHost },
			want: []string{"mount", "uts", "pid", "ipc"}, hostname: "the-host"},
		{name: "host uts", edit: func(o *Options) { o.UTS.Mode = NamespaceHost },
			want: []string{"mount", "network", "pid", "ipc"}, hostname: ""},
		{name: "joined pid and ipc, host", edit: func(o *Options) {
			o.PID = Namespace{Mode: NamespaceJoined, Path: "/proc/42/ns/pid"}
			o.IPC = Namespace{Mode: NamespaceHost}
		}, want: []string{"mount", "network", "uts", "pid=/proc/42/ns/pid"}, hostname: testID[:12]},
		{name: "user namespace", edit: func(o *Options) {
			o.UIDMappings = []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
			o.GIDMappings = []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}, want: []string{"mount", "network", "uts", "pid", "ipc", "user"}, hostname: testID[:12]},
		{name: "userns host ignores the mappings", edit: func(o *Options) {
			o.UsernsMode = "host"
			o.UIDMappings = []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
			o.GIDMappings = []IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}, want: []string{"mount", "network", "uts", "pid", "ipc"}, hostname: testID[:12]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost()
			if tc.host != nil {
				tc.host(h)
			}
			s := mustSpec(t, h, tc.edit)
			if got := nsList(s); !slices.Equal(got, tc.want) {
				t.Errorf("namespaces %q, want %q", got, tc.want)
			}
			if s.Hostname != tc.hostname {
				t.Errorf("hostname %q, want %q", s.Hostname, tc.hostname)
			}
			if _, ok := hasNS(s, specs.UserNamespace); ok != (len(s.Linux.UIDMappings) > 0) {
				t.Errorf("user namespace %v with uid mappings %v", ok, s.Linux.UIDMappings)
			}
		})
	}
	for _, tc := range []struct {
		edit func(o *Options)
		err  string
	}{
		{func(o *Options) { o.PID = Namespace{Mode: NamespaceJoined} }, "--pid container"},
		{func(o *Options) { o.UTS = Namespace{Path: "/proc/1/ns/uts"} }, "a private namespace takes no path"},
		{func(o *Options) { o.IPC = Namespace{Mode: NamespaceHost, Path: "/x"} }, "--ipc host takes no path"},
		{func(o *Options) { o.Network = Namespace{Mode: "bridge"} }, `unknown namespace mode "bridge"`},
		{func(o *Options) { o.CgroupnsMode = "shared" }, `--cgroupns "shared"`},
		{func(o *Options) { o.UsernsMode = "keep-id" }, `--userns "keep-id"`},
		{func(o *Options) { o.UIDMappings = []IDMap{{Size: 1}} }, "given together"},
	} {
		_, _, err := trySpec(t, nil, tc.edit)
		wantErr(t, err, tc.err)
	}
}

func TestSysctls(t *testing.T) {
	t.Parallel()
	h := testHost()
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		want map[string]string
		err  []string
	}{
		{name: "docker's defaults", want: h.DefaultSysctls},
		{name: "user values win", edit: func(o *Options) {
			o.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "net/ipv4/ip_forward": "1"}
		}, want: map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "1024",
			"kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "net/ipv4/ip_forward": "1"}},
		{name: "no net defaults with the host's network", edit: func(o *Options) { o.Network.Mode = NamespaceHost }, want: nil},
		{name: "no ping range in a user namespace", edit: func(o *Options) {
			o.UIDMappings, o.GIDMappings = []IDMap{{Size: 1}}, []IDMap{{Size: 1}}
		}, want: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}},
		{name: "net with host network", edit: func(o *Options) {
			o.Network.Mode = NamespaceHost
			o.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, err: []string{"--sysctl net.ipv4.ip_forward is not allowed", "host's network namespace"}},
		{name: "net in another container's namespace", edit: func(o *Options) {
			o.Network = Namespace{Mode: NamespaceJoined, Path: "/proc/9/ns/net"}
			o.Sysctls = map[string]string{"net.core.somaxconn": "1"}
		}, err: []string{"net.core.somaxconn", "another container's network namespace"}},
		{name: "ipc with host ipc", edit: func(o *Options) {
			o.IPC.Mode = NamespaceHost
			o.Sysctls = map[string]string{"kernel.msgmax": "1"}
		}, err: []string{"kernel.msgmax", "host's ipc"}},
		{name: "not namespaced", edit: func(o *Options) { o.Sysctls = map[string]string{"kernel.core_pattern": "|/evil"} },
			err: []string{"kernel.core_pattern", "not namespaced"}},
		{name: "vm", edit: func(o *Options) { o.Sysctls = map[string]string{"vm.overcommit_memory": "1"} }, err: []string{"vm.overcommit_memory"}},
		{name: "hostname", edit: func(o *Options) { o.Sysctls = map[string]string{"kernel.hostname": "x"} }, err: []string{"--hostname"}},
		{name: "smuggled value", edit: func(o *Options) { o.Sysctls = map[string]string{"kernel.shmmax": "1\nkernel.core_pattern=x"} },
			err: []string{"kernel.shmmax", "newline"}},
		{name: "climbing name", edit: func(o *Options) { o.Sysctls = map[string]string{"net/../kernel/core_pattern": "x"} },
			err: []string{"net/../kernel/core_pattern"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, err := trySpec(t, h, tc.edit)
			if tc.err != nil {
				wantErr(t, err, tc.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(s.Linux.Sysctl, tc.want) {
				t.Errorf("sysctls %v, want %v", s.Linux.Sysctl, tc.want)
			}
		})
	}
}

func TestCgroupsPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		systemd bool
		parent  string
		want    string
		err     string
	}{
		{want: "/berth/" + testID},
		{parent: "/custom/sub", want: "/custom/sub/" + testID},
		{parent: "relative", want: "relative/" + testID},
		{parent: "/a/../../etc", err: "must not contain"},
		{systemd: true, want: "system.slice:berth:" + testID},
		{systemd: true, parent: "my.slice", want: "my.slice:berth:" + testID},
		{systemd: true, parent: "/my", err: `"xxx.slice"`},
	} {
		h := testHost()
		h.SystemdCgroup = tc.systemd
		if tc.systemd {
			h.CgroupParent = ""
		}
		s, _, err := trySpec(t, h, func(o *Options) { o.CgroupParent = tc.parent })
		if tc.err != "" {
			wantErr(t, err, tc.err)
			continue
		}
		if err != nil || s.Linux.CgroupsPath != tc.want {
			t.Errorf("systemd %v parent %q: %v; got %q want %q", tc.systemd, tc.parent, err, s.Linux.CgroupsPath, tc.want)
		}
	}
}
