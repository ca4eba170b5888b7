package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/linux/caps"
	"github.com/berth-project/berth/internal/linux/procattr"
	"github.com/berth-project/berth/internal/linux/rlimit"
	"github.com/berth-project/berth/internal/linux/rootfs"
	"github.com/berth-project/berth/internal/linux/seccomp"
	"github.com/berth-project/berth/internal/linux/sysctl"
	"github.com/berth-project/berth/internal/runtime/hooks"
	"github.com/berth-project/berth/internal/runtime/initstage"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// stageInput is what the container-side stage's plan is made from: the
// spec and what the runtime learnt while starting the process.
type stageInput struct {
	id, bundle, rootfs string
	spec               *specs.Spec
	process            *specs.Process
	exec               bool
	noPivot            bool
	noNewKeyring       bool
	preserveFDs        int
	newNS              []specs.LinuxNamespaceType
	// userNS: the process is in a user namespace other than the host's
	// (made, joined, or the runtime's own).
	userNS  bool
	cgroup  rootfs.CgroupView
	console bool
	// pid is the init's host pid; nsPid the init's pid as the container
	// sees it (for the hooks the stage runs).
	pid, nsPid int
	seccomp    *seccomp.Encoded
	// idmapFDs holds, by index in the spec's mounts, the stage's
	// descriptor of the user namespace made for that mount's own mappings.
	idmapFDs map[int]int
	// warn receives what the container does without (nil: dropped).
	warn func(string)
}

func (in *stageInput) hasNS(t specs.LinuxNamespaceType) bool {
	for _, n := range in.newNS {
		if n == t {
			return true
		}
	}
	return false
}

// stepError is a failure while planning, named by the step the init would
// have failed in.
func stepError(step string, err error) error {
	return fmt.Errorf("container init: %w", &stepErr{step, err})
}

type stepErr struct {
	step string
	err  error
}

func (e *stepErr) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepErr) Unwrap() error { return e.err }

// initPlan is the plan of a container's init: everything from the new
// namespaces to the user's program, in the order the stage runs it.
func initPlan(in *stageInput) ([]byte, error) {
	spec := in.spec
	p := initstage.New()
	if in.hasNS(specs.CgroupNamespace) {
		p.NewCgroupNS("new cgroup namespace")
	}
	if spec.Process.OOMScoreAdj != nil {
		p.OOMScoreAdj("set oom_score_adj", strconv.Itoa(*spec.Process.OOMScoreAdj))
	}
	// The container has a mount namespace (validate requires one): a new
	// one, or one joined by path, where the root, mounts and paths are
	// set up all the same (as runc does): root.path is the container's
	// root either way.
	if err := planRootfs(p, in); err != nil {
		return nil, err
	}
	if spec.Hostname != "" {
		p.Hostname("set hostname", spec.Hostname)
	}
	if spec.Domainname != "" {
		p.Domainname("set domainname", spec.Domainname)
	}
	if in.console {
		p.Terminal("set up terminal")
	} else {
		p.NewSession("new session")
	}
	if !in.noNewKeyring {
		p.JoinKeyring("join session keyring", "_ses."+in.id)
	}
	proc, err := planProcess(in)
	if err != nil {
		return nil, err
	}
	p.Process("prepare process", proc)
	p.WaitStart("open exec fifo")
	if h := spec.Hooks; h != nil {
		if err := planHooks(p, in, hooks.StartContainer, h.StartContainer, specs.StateCreated); err != nil {
			return nil, err
		}
	}
	p.Exec("exec")
	return p.Bytes(), nil
}

// execPlan is the plan of a process joining a running container, whose
// namespaces the nsenter constructor has joined already.
func execPlan(in *stageInput) ([]byte, error) {
	p := initstage.New()
	if a := in.process.ExecCPUAffinity; a != nil && a.Initial != "" {
		mask, err := procattr.CPUMask(a.Initial)
		if err != nil {
			return nil, stepError("exec CPU affinity", err)
		}
		p.Affinity("exec CPU affinity", mask)
	}
	if in.process.Terminal {
		p.ExecConsole("console", consoleSize(in.process))
	}
	proc, err := planProcess(in)
	if err != nil {
		return nil, err
	}
	p.Process("prepare process", proc)
	p.Ready("ready")
	p.Exec("exec")
	return p.Bytes(), nil
}

func consoleSize(p *specs.Process) *initstage.Size {
	if p.ConsoleSize == nil {
		return nil
	}
	return &initstage.Size{Rows: uint16(p.ConsoleSize.Height), Cols: uint16(p.ConsoleSize.Width)}
}

// planRootfs plans the container's filesystem up to the switch of root.
func planRootfs(p *initstage.Plan, in *stageInput) error {
	spec := in.spec
	prop, err := rootfs.Propagation(spec.Linux.RootfsPropagation)
	if err != nil {
		return stepError("rootfs propagation", err)
	}
	// Shared propagation is applied after pivot_root, which refuses a
	// shared new root or parent.
	early, late := uint64(prop), uint64(0)
	if prop&(unix.MS_SHARED|unix.MS_UNBINDABLE) != 0 {
		early, late = 0, uint64(prop)
	}
	p.PrepareRoot("prepare rootfs", early, in.rootfs)

	devBound, ptsMounted := false, false
	for i, m := range spec.Mounts {
		if err := planMount(p, in, i, m); err != nil {
			return stepError("mount", fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err))
		}
		switch cleanPath(m.Destination) {
		case "/dev":
			if m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
				devBound = true
			}
		case "/dev/pts":
			ptsMounted = true
		}
	}
	if !devBound {
		if err := planDevices(p, in, spec.Linux.Devices); err != nil {
			return err
		}
		for _, l := range [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
			{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}} {
			p.DevSymlink("create /dev links", l[0], l[1], false)
		}
		if ptsMounted {
			p.DevSymlink("create /dev links", "pts/ptmx", "ptmx", true)
		}
	}
	if in.console {
		p.Console("console", consoleSize(in.process))
	}
	if h := spec.Hooks; h != nil {
		if len(h.Prestart)+len(h.CreateRuntime) > 0 {
			p.HooksSync("createRuntime hooks")
		}
		if err := planHooks(p, in, hooks.CreateContainer, h.CreateContainer, specs.StateCreating); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(spec.Linux.Sysctl))
	for k := range spec.Linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.Sysctl("sysctl", "set sysctl "+k, sysctl.Path(k), spec.Linux.Sysctl[k])
	}
	for _, m := range spec.Linux.MaskedPaths {
		p.Mask("masked paths", "mask "+m, m)
	}
	for _, r := range spec.Linux.ReadonlyPaths {
		p.Readonly("read-only paths", "make "+r+" read-only", r)
	}
	p.MkdirInRoot("working directory", in.process.Cwd)
	if in.noPivot {
		p.MoveRoot("switch root")
	} else {
		p.PivotRoot("switch root")
	}
	if spec.Root.Readonly || late != 0 {
		p.FinishRoot("finish root", spec.Root.Readonly, late)
	}
	return nil
}

// planMount plans the spec's mount number i.
func planMount(p *initstage.Plan, in *stageInput, i int, m specs.Mount) error {
	if !filepath.IsAbs(m.Destination) {
		return errors.New("destination must be an absolute path")
	}
	what := fmt.Sprintf("mount %s (%s) on %s", m.Source, m.Type, m.Destination)
	o := rootfs.ParseOptions(m.Options)
	if m.Type == "bind" {
		o.Bind = true
	}
	props := make([]uint64, len(o.Propagation))
	for j, v := range o.Propagation {
		props[j] = uint64(v)
	}
	switch {
	case o.Bind:
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(in.bundle, src)
		}
		set, clr := rootfs.Attrs(o.Flags)
		for f, a := range map[uintptr]uint64{unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
			unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC} {
			if o.ClearFlags&f != 0 {
				clr |= a
			}
		}
		b := initstage.Bind{Source: src, Dest: m.Destination, Resolve: initstage.ResolveExpand,
			Recursive: o.Recursive, AttrSet: set, AttrClr: clr, RecSet: o.RecAttrSet, RecClr: o.RecAttrClr,
			IDMapFD: -1, Propagation: props}
		if o.IDMap || len(m.UIDMappings)+len(m.GIDMappings) > 0 {
			switch {
			case len(m.UIDMappings)+len(m.GIDMappings) > 0:
				fd, ok := in.idmapFDs[i]
				if !ok {
					return errors.New("no user namespace was made for the mount's id mappings")
				}
				b.IDMapFD = int32(fd)
			case in.userNS:
				b.IDMapFD = initstage.IDMapOwnUserNS
			default:
				return errors.New("idmap without mappings needs a user namespace")
			}
			b.IDMapRecursive = o.RecursiveIDMap || o.Recursive
		}
		p.Bind("mount", what, b)
	case o.Flags&unix.MS_REMOUNT != 0:
		p.Remount("mount", what, m.Destination, m.Type, o.Data, uint64(o.Flags), initstage.ResolveExisting)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		return planCgroupMount(p, in, what, m, o)
	default:
		if len(m.UIDMappings)+len(m.GIDMappings) > 0 || o.IDMap {
			return errors.New("idmapped mounts are only supported for bind mounts")
		}
		mnt := initstage.Mount{Source: m.Source, FSType: m.Type, Data: o.Data, Dest: m.Destination,
			Flags: uint64(o.Flags), Resolve: initstage.ResolveExpand, MkdirMode: 0o755,
			RecSet: o.RecAttrSet, RecClr: o.RecAttrClr, Propagation: props}
		// proc and sysfs may not be reached through any symlink: a /proc
		// that leads elsewhere would put the real procfs where masks do not
		// apply. And the new mount must be what it says.
		switch m.Type {
		case "proc":
			mnt.Resolve, mnt.MkdirMode, mnt.Magic = initstage.ResolveNoSymlinks, 0o555, unix.PROC_SUPER_MAGIC
		case "sysfs":
			mnt.Resolve, mnt.MkdirMode, mnt.Magic = initstage.ResolveNoSymlinks, 0o555, unix.SYSFS_MAGIC
		}
		p.Mount("mount", what, mnt)
	}
	return nil
}

// planCgroupMount plans a "cgroup" mount: the host's single cgroup2
// hierarchy, or a tmpfs with a directory per hierarchy (v1 and hybrid
// hosts). With a cgroup namespace each hierarchy is mounted afresh (its
// root is the container's cgroup); without one, the container's own
// directory of each is bound.
func planCgroupMount(p *initstage.Plan, in *stageInput, what string, m specs.Mount, o rootfs.Options) error {
	hs := in.cgroup.Hierarchies
	if len(hs) == 0 {
		return errors.New("no cgroup hierarchies on the host")
	}
	hierarchy := func(dest string, h rootfs.CgroupHierarchy) error {
		if in.cgroup.Namespaced {
			fstype, data := "cgroup", h.Options
			if h.Unified {
				fstype, data = "cgroup2", ""
			}
			p.Mount("mount", what, initstage.Mount{Source: fstype, FSType: fstype, Data: data, Dest: dest,
				Flags: uint64(o.Flags), Resolve: initstage.ResolveNoSymlinks, MkdirMode: 0o755})
			return nil
		}
		if h.HostPath == "" {
			return fmt.Errorf("no cgroup directory for hierarchy %q", h.Name)
		}
		set, _ := rootfs.Attrs(o.Flags)
		p.Bind("mount", what, initstage.Bind{Source: h.HostPath, Dest: dest, Resolve: initstage.ResolveNoSymlinks,
			AttrSet: set, IDMapFD: -1})
		return nil
	}
	if len(hs) == 1 && hs[0].Unified && hs[0].Name == "" {
		return hierarchy(m.Destination, hs[0])
	}
	tmpfsFlags := uint64(o.Flags &^ unix.MS_RDONLY)
	p.Mount("mount", what, initstage.Mount{Source: "tmpfs", FSType: "tmpfs", Data: "mode=755", Dest: m.Destination,
		Flags: tmpfsFlags, Resolve: initstage.ResolveExpand, MkdirMode: 0o755})
	for _, h := range hs {
		if err := hierarchy(path.Join(m.Destination, h.Name), h); err != nil {
			return err
		}
	}
	if o.Flags&unix.MS_RDONLY != 0 {
		p.Remount("mount", what+": remount cgroup tmpfs read-only", m.Destination, "", "",
			unix.MS_REMOUNT|unix.MS_BIND|tmpfsFlags|unix.MS_RDONLY, initstage.ResolveNoSymlinks)
	}
	return nil
}

// planDevices plans the spec's devices and the default ones it does not
// name itself.
func planDevices(p *initstage.Plan, in *stageInput, devs []specs.LinuxDevice) error {
	seen := map[string]bool{}
	all := make([]specs.LinuxDevice, 0, len(devs)+len(rootfs.DefaultDevices))
	for _, d := range devs {
		seen[filepath.Clean(d.Path)] = true
		all = append(all, d)
	}
	for _, d := range rootfs.DefaultDevices {
		if !seen[d.Path] {
			all = append(all, d)
		}
	}
	for _, d := range all {
		what := "create device " + d.Path
		if !filepath.IsAbs(d.Path) {
			return stepError("create devices", fmt.Errorf("%s: device path must be absolute", what))
		}
		typ, err := rootfs.DevType(d.Type)
		if err != nil {
			return stepError("create devices", fmt.Errorf("%s: %w", what, err))
		}
		mode := uint32(0o666)
		if d.FileMode != nil {
			mode = uint32(d.FileMode.Perm())
		}
		dev := initstage.Device{Path: d.Path, Type: typ, Mode: mode, Major: uint32(d.Major), Minor: uint32(d.Minor),
			UID: -1, GID: -1, Bind: in.userNS && typ != unix.S_IFIFO}
		if d.UID != nil {
			dev.UID = int64(*d.UID)
		}
		if d.GID != nil {
			dev.GID = int64(*d.GID)
		}
		p.Device("create devices", what, dev)
	}
	return nil
}

// planHooks plans hooks the stage runs itself, in the container's
// namespaces, with the state as the container sees it.
func planHooks(p *initstage.Plan, in *stageInput, kind string, hs []specs.Hook, status specs.ContainerState) error {
	if len(hs) == 0 {
		return nil
	}
	st := &specs.State{Version: specs.Version, ID: in.id, Status: status, Pid: in.nsPid,
		Bundle: in.bundle, Annotations: in.spec.Annotations}
	state, err := json.Marshal(st)
	if err != nil {
		return stepError(kind+" hooks", err)
	}
	for i, h := range hs {
		// Validate (hooks.Validate) has checked path and timeout.
		name := fmt.Sprintf("%s hook #%d (%s)", kind, i, h.Path)
		args := h.Args
		if len(args) == 0 {
			args = []string{h.Path}
		}
		var timeout int64
		if h.Timeout != nil {
			timeout = int64(*h.Timeout) * 1000
		}
		p.Hook(kind+" hooks", initstage.Hook{Path: h.Path, Args: args, Env: h.Env, TimeoutMS: timeout, State: state, Name: name})
	}
	return nil
}

// planProcess resolves everything about the user's program the runtime
// can: capability sets, rlimits, process attributes, the seccomp filter.
func planProcess(in *stageInput) (*initstage.Process, error) {
	p := in.process
	out := &initstage.Process{
		Cwd: p.Cwd, Args: p.Args, Env: p.Env, NeedHome: !hasEnv(p.Env, "HOME"),
		UID: p.User.UID, GID: p.User.GID, Groups: p.User.AdditionalGids, Umask: p.User.Umask,
		NoNewPrivs: p.NoNewPrivileges, PreserveFDs: uint32(in.preserveFDs),
	}
	last, err := caps.LastCap()
	if err != nil {
		return nil, stepError("capabilities", err)
	}
	sets, ignored, err := caps.FromSpec(p.Capabilities, last)
	if err != nil {
		return nil, stepError("capabilities", err)
	}
	if in.warn != nil {
		for _, name := range ignored {
			in.warn(fmt.Sprintf("capability %s is unknown to this kernel: ignored", name))
		}
		// The kernel raises an ambient capability only if it is both
		// permitted and inheritable; the stage skips the others.
		if skip := sets.Ambient &^ (sets.Permitted & sets.Inheritable); skip != 0 {
			var names []string
			for n := 0; n < 64; n++ {
				if skip.Has(n) {
					names = append(names, caps.Name(n))
				}
			}
			in.warn(fmt.Sprintf("ambient capabilities %s are not both permitted and inheritable: not raised", strings.Join(names, ", ")))
		}
	}
	out.Bounding, out.Effective, out.Inheritable = uint64(sets.Bounding), uint64(sets.Effective), uint64(sets.Inheritable)
	out.Permitted, out.Ambient = uint64(sets.Permitted), uint64(sets.Ambient)
	for _, r := range p.Rlimits {
		res, err := rlimit.Parse(r.Type)
		if err != nil {
			return nil, stepError("set rlimits", err)
		}
		out.Rlimits = append(out.Rlimits, initstage.Rlimit{Resource: uint32(res), Soft: r.Soft, Hard: r.Hard, Name: r.Type})
	}
	if err := planSeccomp(out, in); err != nil {
		return nil, stepError("seccomp", err)
	}
	if l := in.spec.Linux; l != nil {
		if l.Personality != nil {
			v, err := procattr.PersonalityValue(l.Personality)
			if err != nil {
				return nil, stepError("personality", err)
			}
			out.Personality = &v
		}
		if l.MemoryPolicy != nil {
			mode, mask, maxnode, err := procattr.MemoryPolicyArgs(l.MemoryPolicy)
			if err != nil {
				return nil, stepError("memory policy", err)
			}
			out.MemoryPolicy, out.NodeMask, out.MaxNode = &mode, mask, maxnode
		}
	}
	if p.IOPriority != nil {
		v, err := procattr.IOPriorityValue(p.IOPriority)
		if err != nil {
			return nil, stepError("ioPriority", err)
		}
		out.IOPriority = &v
	}
	if p.Scheduler != nil {
		attr, err := procattr.SchedAttr(p.Scheduler)
		if err != nil {
			return nil, stepError("scheduler", err)
		}
		out.SchedAttr = attr
	}
	if in.exec && p.ExecCPUAffinity != nil && p.ExecCPUAffinity.Final != "" {
		mask, err := procattr.CPUMask(p.ExecCPUAffinity.Final)
		if err != nil {
			return nil, stepError("exec CPU affinity", err)
		}
		out.Affinity = mask
	}
	return out, nil
}

// planSeccomp adds the compiled filter and, for a notifying one, the
// state its listener receives.
func planSeccomp(out *initstage.Process, in *stageInput) error {
	enc := in.seccomp
	if enc == nil {
		return nil
	}
	if len(enc.Prog) == 0 || len(enc.Prog) > 0xffff {
		return errors.New("empty or oversized program")
	}
	prog := make([]byte, 0, 8*len(enc.Prog))
	for _, ins := range enc.Prog {
		prog = binary.LittleEndian.AppendUint16(prog, ins.Code)
		prog = append(prog, ins.Jt, ins.Jf)
		prog = binary.LittleEndian.AppendUint32(prog, ins.K)
	}
	out.Seccomp, out.SeccompFlags, out.SeccompNotify = prog, uint64(enc.Flags), enc.Notify
	if !enc.Notify {
		return nil
	}
	st := specs.State{Version: specs.Version, ID: in.id, Status: specs.StateCreated,
		Pid: in.pid, Bundle: in.bundle, Annotations: in.spec.Annotations}
	if in.exec {
		st.Status = specs.StateRunning
	}
	meta := ""
	if in.spec.Linux != nil && in.spec.Linux.Seccomp != nil {
		meta = in.spec.Linux.Seccomp.ListenerMetadata
	}
	state, err := seccomp.ProcessState(st, in.pid, meta)
	if err != nil {
		return err
	}
	out.SeccompState = state
	return nil
}

// nsPid is pid as its innermost pid namespace sees it (the last NSpid
// field of its status), for the state of the hooks the init runs.
func nsPid(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" {
			return strconv.Atoi(f[len(f)-1])
		}
	}
	return pid, nil
}

func cleanPath(p string) string {
	return path.Clean("/" + p)
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// inUserNS reports whether the runtime itself runs in a user namespace
// other than the initial one (rootless, or nested in a container's): then
// the stage cannot mknod and binds the host's device nodes instead.
func inUserNS() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}
