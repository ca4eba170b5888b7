package specconv

import (
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/berth-project/berth/internal/linux/sysctl"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// namespaces lists the container's namespaces in docker's order: mount,
// network, uts, pid, ipc, then cgroup (private by default on cgroup v2
// hosts only, as docker), user (with the engine's mappings) and time
// (SECURITY.md, where the kernel and runtime have it).
func namespaces(o *Options, h *Host) ([]specs.LinuxNamespace, error) {
	out := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for _, n := range []struct {
		typ  specs.LinuxNamespaceType
		flag string
		ns   Namespace
	}{
		{specs.NetworkNamespace, "--network", o.Network},
		{specs.UTSNamespace, "--uts", o.UTS},
		{specs.PIDNamespace, "--pid", o.PID},
		{specs.IPCNamespace, "--ipc", o.IPC},
	} {
		switch n.ns.Mode {
		case NamespacePrivate:
			if n.ns.Path != "" && n.typ != specs.NetworkNamespace {
				return nil, invalid("%s: a private namespace takes no path (%q)", n.flag, n.ns.Path)
			}
			if n.ns.Path != "" && !path.IsAbs(n.ns.Path) {
				return nil, invalid("%s: namespace path %q is not absolute", n.flag, n.ns.Path)
			}
			out = append(out, specs.LinuxNamespace{Type: n.typ, Path: n.ns.Path})
		case NamespaceHost:
			if n.ns.Path != "" {
				return nil, invalid("%s host takes no path (%q)", n.flag, n.ns.Path)
			}
		case NamespaceJoined:
			if !path.IsAbs(n.ns.Path) {
				return nil, invalid("%s container: the other container's namespace path %q is not absolute", n.flag, n.ns.Path)
			}
			out = append(out, specs.LinuxNamespace{Type: n.typ, Path: n.ns.Path})
		default:
			return nil, invalid("%s: unknown namespace mode %q", n.flag, n.ns.Mode)
		}
	}
	switch o.CgroupnsMode {
	case "":
		if h.CgroupV2 {
			out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	case "private":
		out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	case "host":
	default:
		return nil, invalid("--cgroupns %q: want private or host", o.CgroupnsMode)
	}
	if userns(o) {
		out = append(out, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	if h.TimeNamespace {
		out = append(out, specs.LinuxNamespace{Type: specs.TimeNamespace})
	}
	return out, nil
}

// userns tells whether the container gets a user namespace.
func userns(o *Options) bool { return o.UsernsMode == "" && len(o.UIDMappings) > 0 }

func idMappings(o *Options) (uids, gids []specs.LinuxIDMapping, err error) {
	switch o.UsernsMode {
	case "", "host":
	default:
		return nil, nil, invalid("--userns %q: only \"host\" is supported", o.UsernsMode)
	}
	if (len(o.UIDMappings) > 0) != (len(o.GIDMappings) > 0) {
		return nil, nil, invalid("user namespace: uid and gid mappings must be given together")
	}
	if !userns(o) {
		return nil, nil, nil
	}
	conv := func(m []IDMap) []specs.LinuxIDMapping {
		var out []specs.LinuxIDMapping
		for _, e := range m {
			out = append(out, specs.LinuxIDMapping{ContainerID: e.ContainerID, HostID: e.HostID, Size: e.Size})
		}
		return out
	}
	return conv(o.UIDMappings), conv(o.GIDMappings), nil
}

// sysctls validates --sysctl as docker does, against the namespaces the
// container owns (never the host's, never another container's), and adds
// docker's default network sysctls to a network namespace of its own.
func sysctls(o *Options, h *Host) (map[string]string, error) {
	owner := map[sysctl.Namespace]NamespaceMode{
		"ipc": o.IPC.Mode, "uts": o.UTS.Mode, "network": o.Network.Mode,
	}
	owned := map[sysctl.Namespace]bool{}
	for ns, mode := range owner {
		owned[ns] = mode == NamespacePrivate
	}
	out := map[string]string{}
	if o.Network.Mode == NamespacePrivate {
		for k, v := range h.DefaultSysctls {
			// ping sockets for every group need a gid range the user
			// namespace maps, which docker does not try to compute.
			if k == "net.ipv4.ping_group_range" && userns(o) {
				continue
			}
			out[k] = v
		}
	}
	keys := make([]string, 0, len(o.Sysctls))
	for k := range o.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := o.Sysctls[k]
		ns, err := sysctl.Owner(k)
		if err != nil {
			return nil, invalid("--sysctl %s: %v", k, err)
		}
		if ns == "uts" {
			return nil, invalid("--sysctl %s is not allowed: use --hostname or --domainname", k)
		}
		if !owned[ns] {
			whose := "the host's"
			if owner[ns] == NamespaceJoined {
				whose = "another container's"
			}
			return nil, invalid("--sysctl %s is not allowed: the container shares %s %s namespace", k, whose, ns)
		}
		if err := sysctl.Validate(k, v, owned); err != nil {
			return nil, invalid("--sysctl %s: %v", k, err)
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// cgroupsPath names the container's cgroup: PARENT/ID for cgroupfs,
// "PARENT:berth:ID" for systemd, PARENT being --cgroup-parent or the
// engine's.
func cgroupsPath(o *Options, h *Host) (string, error) {
	parent := o.CgroupParent
	if parent == "" {
		parent = h.CgroupParent
	}
	if h.SystemdCgroup {
		if parent == "" {
			parent = "system.slice"
		}
		if !strings.HasSuffix(parent, ".slice") || strings.ContainsAny(parent, "/:\x00") {
			return "", invalid("--cgroup-parent %q: for the systemd cgroup driver it must be a slice named like \"xxx.slice\"", parent)
		}
		return parent + ":berth:" + o.ContainerID, nil
	}
	if parent == "" {
		parent = "/berth"
	}
	if strings.ContainsRune(parent, 0) || slices.Contains(strings.Split(parent, "/"), "..") {
		return "", invalid("--cgroup-parent %q: must not contain \"..\"", parent)
	}
	return path.Join(parent, o.ContainerID), nil
}
