package initstage

import "encoding/binary"

// The plan's header; plan.c checks both. The version changes with any
// change of an operation's layout.
const (
	planMagic   = 0x4e4c5042 // "BPLN"
	planVersion = 1
)

// Operation codes, plan.c's OP_* enum.
const (
	opCgroupNS uint32 = iota + 1
	opOOM
	opRoot
	opMount
	opBind
	opRemount
	opDevice
	opSymlink
	opConsole
	opHooksSync
	opHook
	opSysctl
	opMask
	opReadonly
	opMkdir
	opPivot
	opMoveRoot
	opFinishRoot
	opHostname
	opDomainname
	opTTY
	opSetsid
	opKeyring
	opProcess
	opExecConsole
	opAffinity
	opReady
	opFIFO
	opFinalize
)

// Resolve modes of mount targets, stage.h's enum resolve_mode.
const (
	// ResolveExpand follows the image's symlinks confined to the rootfs and
	// creates the target (a directory, or for binds a file when the source
	// is one) where they lead.
	ResolveExpand uint32 = iota
	// ResolveNoSymlinks refuses any symlink on the way (proc, sysfs, cgroup
	// hierarchies), creating missing directories.
	ResolveNoSymlinks
	// ResolveExisting opens an existing target, symlinks followed inside
	// the rootfs.
	ResolveExisting
)

// IDMapOwnUserNS asks a bind for the id mapping of the container's own
// user namespace.
const IDMapOwnUserNS = -2

// Plan is the stage's program, built by the runtime in the order the
// stage runs it. Every operation carries the step it belongs to and a
// prefix for its errors, which the runtime reports as "step: prefix: what
// failed".
type Plan struct {
	b []byte
}

// New starts a plan.
func New() *Plan {
	p := &Plan{b: make([]byte, 0, 4096)}
	p.u32(planMagic)
	p.u32(planVersion)
	return p
}

// Bytes is the encoded plan, one sync-socket frame's body.
func (p *Plan) Bytes() []byte { return p.b }

func (p *Plan) u32(v uint32) { p.b = binary.LittleEndian.AppendUint32(p.b, v) }
func (p *Plan) u64(v uint64) { p.b = binary.LittleEndian.AppendUint64(p.b, v) }

func (p *Plan) flag(v bool) {
	if v {
		p.u32(1)
	} else {
		p.u32(0)
	}
}

// optU32 and optU64 append an optional value: whether it is set, then the
// value (0 when it is not).
func (p *Plan) optU32(v *uint32) {
	p.flag(v != nil)
	if v == nil {
		p.u32(0)
	} else {
		p.u32(*v)
	}
}

func (p *Plan) optU64(v *uint64) {
	p.flag(v != nil)
	if v == nil {
		p.u64(0)
	} else {
		p.u64(*v)
	}
}

// raw appends data with zeros up to a multiple of 8 bytes; the stage
// reads it in place and skips the padding.
func (p *Plan) raw(data []byte) {
	p.b = append(p.b, data...)
	for n := len(data); n%8 != 0; n++ {
		p.b = append(p.b, 0)
	}
}

// str appends a string as its length, its bytes and a NUL; the stage
// refuses a string with a NUL inside, which no path or value may hold.
func (p *Plan) str(s string) {
	p.u32(uint32(len(s)))
	p.raw(append([]byte(s), 0))
}

func (p *Plan) strs(ss []string) {
	p.u32(uint32(len(ss)))
	for _, s := range ss {
		p.str(s)
	}
}

func (p *Plan) u64s(vs []uint64) {
	p.u32(uint32(len(vs)))
	for _, v := range vs {
		p.u64(v)
	}
}

func (p *Plan) op(code uint32, step, what string) {
	p.u32(code)
	p.str(step)
	p.str(what)
}

// NewCgroupNS makes the cgroup namespace, once the init sits in its cgroup.
func (p *Plan) NewCgroupNS(step string) { p.op(opCgroupNS, step, "") }

// OOMScoreAdj writes /proc/self/oom_score_adj.
func (p *Plan) OOMScoreAdj(step, value string) {
	p.op(opOOM, step, "")
	p.str(value)
}

// PrepareRoot sets the propagation of / (0: MS_SLAVE|MS_REC), binds rootfs
// onto itself and opens it: the root every later target is resolved in.
func (p *Plan) PrepareRoot(step string, propagation uint64, rootfs string) {
	p.op(opRoot, step, "")
	p.u64(propagation)
	p.str(rootfs)
}

// Mount is a filesystem mount(2) beneath the root.
type Mount struct {
	Source, FSType, Data, Dest string
	Flags                      uint64
	Resolve, MkdirMode         uint32
	// Magic is the statfs type the new mount must have (0: any).
	Magic          uint64
	RecSet, RecClr uint64
	Propagation    []uint64
}

func (p *Plan) Mount(step, what string, m Mount) {
	p.op(opMount, step, what)
	p.str(m.Source)
	p.str(m.FSType)
	p.str(m.Data)
	p.str(m.Dest)
	p.u64(m.Flags)
	p.u32(m.Resolve)
	p.u32(m.MkdirMode)
	p.u64(m.Magic)
	p.u64(m.RecSet)
	p.u64(m.RecClr)
	p.u64s(m.Propagation)
}

// Bind clones Source (a host path) and attaches it at Dest.
type Bind struct {
	Source, Dest     string
	Resolve          uint32
	Recursive        bool
	AttrSet, AttrClr uint64
	RecSet, RecClr   uint64
	// IDMapFD is the stage's descriptor of the user namespace whose
	// mapping the mount gets, IDMapOwnUserNS, or -1 for none.
	IDMapFD        int32
	IDMapRecursive bool
	Propagation    []uint64
}

func (p *Plan) Bind(step, what string, b Bind) {
	p.op(opBind, step, what)
	p.str(b.Source)
	p.str(b.Dest)
	p.u32(b.Resolve)
	p.flag(b.Recursive)
	p.u64(b.AttrSet)
	p.u64(b.AttrClr)
	p.u64(b.RecSet)
	p.u64(b.RecClr)
	p.u32(uint32(b.IDMapFD))
	p.flag(b.IDMapRecursive)
	p.u64s(b.Propagation)
}

// Remount changes the flags of an existing mount.
func (p *Plan) Remount(step, what, dest, fstype, data string, flags uint64, resolve uint32) {
	p.op(opRemount, step, what)
	p.str(dest)
	p.str(fstype)
	p.str(data)
	p.u64(flags)
	p.u32(resolve)
}

// Device makes a device node (or binds the host's, in a user namespace).
type Device struct {
	Path                     string
	Type, Mode, Major, Minor uint32
	UID, GID                 int64 // -1: unchanged
	Bind                     bool
}

func (p *Plan) Device(step, what string, d Device) {
	p.op(opDevice, step, what)
	p.str(d.Path)
	p.u32(d.Type)
	p.u32(d.Mode)
	p.u32(d.Major)
	p.u32(d.Minor)
	p.u64(uint64(d.UID))
	p.u64(uint64(d.GID))
	p.flag(d.Bind)
}

// DevSymlink makes /dev/<name> a link to target.
func (p *Plan) DevSymlink(step, target, name string, replace bool) {
	p.op(opSymlink, step, "")
	p.str(target)
	p.str(name)
	p.flag(replace)
}

// Size is a terminal's size.
type Size struct{ Rows, Cols uint16 }

func (p *Plan) size(s *Size) {
	if s == nil {
		p.u32(0)
		p.u32(0)
		p.u32(0)
		return
	}
	p.u32(1)
	p.u32(uint32(s.Rows))
	p.u32(uint32(s.Cols))
}

// Console makes the container's pty, binds its slave over /dev/console and
// sends its master to the console socket.
func (p *Plan) Console(step string, size *Size) {
	p.op(opConsole, step, "")
	p.size(size)
}

// HooksSync lets the runtime run its create hooks while the stage waits.
func (p *Plan) HooksSync(step string) { p.op(opHooksSync, step, "") }

// Hook runs a hook from inside the container's namespaces.
type Hook struct {
	Path      string
	Args, Env []string
	TimeoutMS int64
	State     []byte
	// Name says which hook it is in errors ("createContainer hook #0 (/x)").
	Name string
}

func (p *Plan) Hook(step string, h Hook) {
	p.op(opHook, step, "")
	p.str(h.Path)
	p.strs(h.Args)
	p.strs(h.Env)
	p.u64(uint64(h.TimeoutMS))
	p.str(string(h.State))
	p.str(h.Name)
}

// Sysctl writes /proc/sys/<keyPath> of the container's procfs.
func (p *Plan) Sysctl(step, what, keyPath, value string) {
	p.op(opSysctl, step, what)
	p.str(keyPath)
	p.str(value)
}

func (p *Plan) Mask(step, what, path string) {
	p.op(opMask, step, what)
	p.str(path)
}

func (p *Plan) Readonly(step, what, path string) {
	p.op(opReadonly, step, what)
	p.str(path)
}

// MkdirInRoot creates a directory (and its parents) inside the root.
func (p *Plan) MkdirInRoot(step, path string) {
	p.op(opMkdir, step, "")
	p.str(path)
}

func (p *Plan) PivotRoot(step string) { p.op(opPivot, step, "") }
func (p *Plan) MoveRoot(step string)  { p.op(opMoveRoot, step, "") }

// FinishRoot makes / read-only and applies a propagation pivot_root
// refuses before.
func (p *Plan) FinishRoot(step string, readonly bool, propagation uint64) {
	p.op(opFinishRoot, step, "")
	p.flag(readonly)
	p.u64(propagation)
}

func (p *Plan) Hostname(step, name string) {
	p.op(opHostname, step, "")
	p.str(name)
}

func (p *Plan) Domainname(step, name string) {
	p.op(opDomainname, step, "")
	p.str(name)
}

// Terminal makes the console's slave the controlling terminal and stdio.
func (p *Plan) Terminal(step string) { p.op(opTTY, step, "") }

// NewSession starts a session without a terminal.
func (p *Plan) NewSession(step string) { p.op(opSetsid, step, "") }

// JoinKeyring gives the process a session keyring of its own.
func (p *Plan) JoinKeyring(step, name string) {
	p.op(opKeyring, step, "")
	p.str(name)
}

// Rlimit is one resource limit.
type Rlimit struct {
	Resource   uint32
	Soft, Hard uint64
	Name       string
}

// Process is the user's program and everything the stage applies to it.
type Process struct {
	Cwd        string
	Args, Env  []string
	NeedHome   bool
	UID, GID   uint32
	Groups     []uint32
	Umask      *uint32
	NoNewPrivs bool
	// Capability sets, as bit masks.
	Bounding, Effective, Inheritable, Permitted, Ambient uint64
	Rlimits                                              []Rlimit
	// Seccomp is the compiled filter (struct sock_filter array, 8 bytes
	// each), empty for none.
	Seccomp      []byte
	SeccompFlags uint64
	// SeccompNotify: send the listener descriptor and SeccompState to the
	// seccomp agent's connection.
	SeccompNotify bool
	SeccompState  []byte
	Personality   *uint64
	IOPriority    *uint32
	// SchedAttr is a struct sched_attr for sched_setattr, empty for none.
	SchedAttr []byte
	// MemoryPolicy: mode|flags, the node mask and its size in bits.
	MemoryPolicy *uint32
	NodeMask     []uint64
	MaxNode      uint64
	// Affinity is the CPU mask set right before execve, empty for none.
	Affinity    []uint64
	PreserveFDs uint32
}

// Process resolves the program (working directory, rlimits, PATH, HOME).
func (p *Plan) Process(step string, proc *Process) {
	p.op(opProcess, step, "")
	p.str(proc.Cwd)
	p.strs(proc.Args)
	p.strs(proc.Env)
	p.flag(proc.NeedHome)
	p.u32(proc.UID)
	p.u32(proc.GID)
	groups := make([]uint64, len(proc.Groups))
	for i, g := range proc.Groups {
		groups[i] = uint64(g)
	}
	p.u64s(groups)
	p.optU32(proc.Umask)
	p.flag(proc.NoNewPrivs)
	p.u32(1) // capabilities are always set: no spec sets means none
	p.u64(proc.Bounding)
	p.u64(proc.Effective)
	p.u64(proc.Inheritable)
	p.u64(proc.Permitted)
	p.u64(proc.Ambient)
	p.u32(uint32(len(proc.Rlimits)))
	for _, r := range proc.Rlimits {
		p.u32(r.Resource)
		p.u64(r.Soft)
		p.u64(r.Hard)
		p.str(r.Name)
	}
	p.u32(uint32(len(proc.Seccomp) / 8))
	p.raw(proc.Seccomp)
	p.u64(proc.SeccompFlags)
	p.flag(proc.SeccompNotify)
	p.u32(uint32(len(proc.SeccompState)))
	p.raw(proc.SeccompState)
	p.optU64(proc.Personality)
	p.optU32(proc.IOPriority)
	p.u32(uint32(len(proc.SchedAttr)))
	p.raw(proc.SchedAttr)
	p.optU32(proc.MemoryPolicy)
	p.u64(proc.MaxNode)
	p.u64s(proc.NodeMask)
	p.u64s(proc.Affinity)
	p.u32(proc.PreserveFDs)
}

// ExecConsole makes an exec'd process's pty from the container's
// /dev/ptmx, sends the master and makes the slave its terminal.
func (p *Plan) ExecConsole(step string, size *Size) {
	p.op(opExecConsole, step, "")
	p.size(size)
}

// Affinity sets the CPU affinity now (an exec's initial one).
func (p *Plan) Affinity(step string, mask []uint64) {
	p.op(opAffinity, step, "")
	p.u64s(mask)
}

// Ready tells the runtime an exec'd process is ready.
func (p *Plan) Ready(step string) { p.op(opReady, step, "") }

// WaitStart reports the init ready and blocks on the exec fifo until
// `start`; errors from here on go into the fifo.
func (p *Plan) WaitStart(step string) { p.op(opFIFO, step, "") }

// Exec drops privileges and executes the program; it must be last.
func (p *Plan) Exec(step string) { p.op(opFinalize, step, "") }
