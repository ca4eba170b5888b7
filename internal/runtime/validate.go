package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/internal/linux/caps"
	"github.com/berth-project/berth/internal/linux/procattr"
	"github.com/berth-project/berth/internal/linux/rlimit"
	"github.com/berth-project/berth/internal/linux/sysctl"
	"github.com/berth-project/berth/internal/runtime/hooks"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsTypes maps the spec's namespace types to clone flags and /proc/PID/ns
// names.
var nsTypes = map[specs.LinuxNamespaceType]struct {
	flag uintptr
	proc string
}{
	specs.PIDNamespace:     {unix.CLONE_NEWPID, "pid"},
	specs.NetworkNamespace: {unix.CLONE_NEWNET, "net"},
	specs.MountNamespace:   {unix.CLONE_NEWNS, "mnt"},
	specs.IPCNamespace:     {unix.CLONE_NEWIPC, "ipc"},
	specs.UTSNamespace:     {unix.CLONE_NEWUTS, "uts"},
	specs.UserNamespace:    {unix.CLONE_NEWUSER, "user"},
	specs.CgroupNamespace:  {unix.CLONE_NEWCGROUP, "cgroup"},
	specs.TimeNamespace:    {unix.CLONE_NEWTIME, "time"},
}

// nsOrder is the order namespaces are joined in: the user namespace first,
// so joins after it are checked against the capabilities it grants.
var nsOrder = []specs.LinuxNamespaceType{
	specs.UserNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace,
	specs.PIDNamespace, specs.CgroupNamespace, specs.TimeNamespace, specs.MountNamespace,
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Validate checks a spec before anything is created, so that bad input
// costs nothing to clean up.
func Validate(spec *specs.Spec, bundle string) error {
	if spec.Root == nil || spec.Root.Path == "" {
		return invalid("config.json: root.path is required")
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil {
		return invalid("rootfs %s: %v", rootfs, err)
	} else if !st.IsDir() {
		return invalid("rootfs %s is not a directory", rootfs)
	}
	if spec.Process == nil {
		return invalid("config.json: process is required")
	}
	if err := validateProcess(spec.Process); err != nil {
		return err
	}
	if spec.Linux == nil {
		return invalid("config.json: linux section is required")
	}
	ns, err := validateNamespaces(spec.Linux)
	if err != nil {
		return err
	}
	for i, m := range spec.Mounts {
		if m.Destination == "" {
			return invalid("mounts[%d]: destination is required", i)
		}
		if !filepath.IsAbs(m.Destination) {
			return invalid("mounts[%d]: destination %q is not an absolute path", i, m.Destination)
		}
		if (len(m.UIDMappings) > 0) != (len(m.GIDMappings) > 0) {
			return invalid("mounts[%d] (%s): uidMappings and gidMappings must be given together", i, m.Destination)
		}
	}
	// The names are set in the container's uts namespace, a new one or
	// one joined by path (a pod's, as runc sets them there too); without
	// one they would be the host's.
	uts := ns[specs.UTSNamespace].new || ns[specs.UTSNamespace].path != ""
	if spec.Hostname != "" && !uts {
		return invalid("hostname %q needs a uts namespace of the container's (new or joined by path): the runtime's is the host's", spec.Hostname)
	}
	if spec.Domainname != "" && !uts {
		return invalid("domainname %q needs a uts namespace of the container's (new or joined by path): the runtime's is the host's", spec.Domainname)
	}
	owned := map[sysctl.Namespace]bool{
		"ipc":     ns[specs.IPCNamespace].new || ns[specs.IPCNamespace].path != "",
		"uts":     uts,
		"network": ns[specs.NetworkNamespace].new || ns[specs.NetworkNamespace].path != "",
	}
	for k, v := range spec.Linux.Sysctl {
		if err := sysctl.Validate(k, v, owned); err != nil {
			return invalid("%v", err)
		}
	}
	if pe := spec.Linux.Personality; pe != nil && pe.Domain != specs.PerLinux && pe.Domain != specs.PerLinux32 {
		return invalid("linux.personality: unknown domain %q", pe.Domain)
	}
	if spec.Linux.RootfsPropagation != "" {
		if _, ok := map[string]bool{"private": true, "rprivate": true, "slave": true, "rslave": true,
			"shared": true, "rshared": true, "unbindable": true, "runbindable": true}[spec.Linux.RootfsPropagation]; !ok {
			return invalid("unknown rootfsPropagation %q", spec.Linux.RootfsPropagation)
		}
	}
	for i, d := range spec.Linux.Devices {
		if !filepath.IsAbs(d.Path) {
			return invalid("linux.devices[%d]: path %q is not absolute", i, d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid("linux.devices[%d] (%s): unknown type %q", i, d.Path, d.Type)
		}
	}
	if spec.Linux.MountLabel != "" || spec.Process.SelinuxLabel != "" {
		if !selinuxEnabled() {
			return invalid("selinux label is set in config.json, but SELinux is not enabled on this host")
		}
	}
	if spec.Process.ApparmorProfile != "" && !apparmorEnabled() {
		return invalid("apparmor profile %q is set in config.json, but AppArmor is not enabled on this host", spec.Process.ApparmorProfile)
	}
	// The seccomp profile is compiled (and so checked) by create itself.
	if spec.Hooks != nil {
		if err := hooks.Validate(spec.Hooks); err != nil {
			return invalid("%v", err)
		}
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return invalid("process.args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return invalid("process.cwd %q must be an absolute path", p.Cwd)
	}
	if err := rlimit.Validate(p.Rlimits); err != nil {
		return invalid("process.rlimits: %v", err)
	}
	if err := procattr.ValidateScheduler(p.Scheduler); err != nil {
		return invalid("process.scheduler: %v", err)
	}
	if err := procattr.ValidateIOPriority(p.IOPriority); err != nil {
		return invalid("process.ioPriority: %v", err)
	}
	if a := p.ExecCPUAffinity; a != nil {
		for _, l := range []string{a.Initial, a.Final} {
			if l == "" {
				continue
			}
			if _, err := procattr.ParseCPUList(l); err != nil {
				return invalid("process.execCPUAffinity: %v", err)
			}
		}
	}
	if p.Capabilities != nil {
		for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted,
			p.Capabilities.Inheritable, p.Capabilities.Ambient} {
			if _, _, err := caps.ParseNames(set, caps.MaxKnown); err != nil {
				return invalid("%v", err)
			}
		}
	}
	return nil
}

type nsInfo struct {
	new  bool
	path string
}

func validateNamespaces(l *specs.Linux) (map[specs.LinuxNamespaceType]nsInfo, error) {
	out := map[specs.LinuxNamespaceType]nsInfo{}
	for _, n := range l.Namespaces {
		t, ok := nsTypes[n.Type]
		if !ok {
			return nil, invalid("unknown namespace type %q", n.Type)
		}
		if _, dup := out[n.Type]; dup {
			return nil, invalid("namespace %q is listed twice", n.Type)
		}
		if n.Path == "" {
			out[n.Type] = nsInfo{new: true}
			continue
		}
		if err := checkNamespacePath(n.Path, t.flag); err != nil {
			return nil, invalid("namespace %s: %v", n.Type, err)
		}
		out[n.Type] = nsInfo{path: n.Path}
	}
	user := out[specs.UserNamespace]
	if user.new {
		if len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0 {
			return nil, invalid("a new user namespace needs uidMappings and gidMappings")
		}
	} else if len(l.UIDMappings)+len(l.GIDMappings) > 0 {
		return nil, invalid("uidMappings and gidMappings need a new user namespace")
	}
	for _, ms := range [][]specs.LinuxIDMapping{l.UIDMappings, l.GIDMappings} {
		if err := validateMappings(ms); err != nil {
			return nil, err
		}
	}
	if len(l.TimeOffsets) > 0 && !out[specs.TimeNamespace].new {
		return nil, invalid("timeOffsets need a new time namespace")
	}
	for clock := range l.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			return nil, invalid("timeOffsets: unknown clock %q (monotonic or boottime)", clock)
		}
	}
	if _, ok := out[specs.MountNamespace]; !ok {
		return nil, invalid("a mount namespace is required (new or joined by path): without one the container's mounts would be made in the host's mount table and outlive it")
	}
	return out, nil
}

func validateMappings(ms []specs.LinuxIDMapping) error {
	for i, m := range ms {
		if m.Size == 0 {
			return invalid("id mapping %d (container %d -> host %d): size is 0", i, m.ContainerID, m.HostID)
		}
		if uint64(m.ContainerID)+uint64(m.Size) > 1<<32 || uint64(m.HostID)+uint64(m.Size) > 1<<32 {
			return invalid("id mapping %d (container %d -> host %d, size %d) overflows 32 bits", i, m.ContainerID, m.HostID, m.Size)
		}
		for j := 0; j < i; j++ {
			o := ms[j]
			if m.ContainerID < o.ContainerID+o.Size && o.ContainerID < m.ContainerID+m.Size {
				return invalid("id mappings %d and %d overlap in the container", j, i)
			}
			if m.HostID < o.HostID+o.Size && o.HostID < m.HostID+m.Size {
				return invalid("id mappings %d and %d overlap on the host", j, i)
			}
		}
	}
	return nil
}

// checkNamespacePath verifies that path is a namespace of the given type.
func checkNamespacePath(path string, flag uintptr) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace: %w", path, err)
	}
	if uintptr(typ) != flag {
		return fmt.Errorf("%s is a namespace of another type", path)
	}
	return nil
}

func selinuxEnabled() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/selinux", &st); err != nil || st.Type != unix.SELINUX_MAGIC {
		return false
	}
	data, err := os.ReadFile("/sys/fs/selinux/enforce")
	return err == nil && len(data) > 0
}

func apparmorEnabled() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(data) > 0 && data[0] == 'Y'
}
