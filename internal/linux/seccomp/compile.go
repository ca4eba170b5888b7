//go:build cgo

package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// maxArgs is the number of syscall arguments seccomp can see.
const maxArgs = 6

// maxErrno is the largest errno the kernel returns for SECCOMP_RET_ERRNO;
// it silently clamps larger data to it.
const maxErrno = 4095

// binaryTreeAbove is the number of syscall names above which libseccomp is
// asked for a binary search tree instead of a linear chain. libseccomp up to
// 2.5.4 generates a broken tree for an empty rule set, and a short chain is
// as fast as a tree; Docker's profile has hundreds of names.
const binaryTreeAbove = 32

var actions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	specs.ActKill:        libseccomp.ActKillThread,
	specs.ActKillThread:  libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess,
	specs.ActTrap:        libseccomp.ActTrap,
	specs.ActErrno:       libseccomp.ActErrno,
	specs.ActTrace:       libseccomp.ActTrace,
	specs.ActAllow:       libseccomp.ActAllow,
	specs.ActLog:         libseccomp.ActLog,
	specs.ActNotify:      libseccomp.ActNotify,
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

var arches = map[specs.Arch]libseccomp.ScmpArch{
	specs.ArchX86:         libseccomp.ArchX86,
	specs.ArchX86_64:      libseccomp.ArchAMD64,
	specs.ArchX32:         libseccomp.ArchX32,
	specs.ArchARM:         libseccomp.ArchARM,
	specs.ArchAARCH64:     libseccomp.ArchARM64,
	specs.ArchMIPS:        libseccomp.ArchMIPS,
	specs.ArchMIPS64:      libseccomp.ArchMIPS64,
	specs.ArchMIPS64N32:   libseccomp.ArchMIPS64N32,
	specs.ArchMIPSEL:      libseccomp.ArchMIPSEL,
	specs.ArchMIPSEL64:    libseccomp.ArchMIPSEL64,
	specs.ArchMIPSEL64N32: libseccomp.ArchMIPSEL64N32,
	specs.ArchPPC:         libseccomp.ArchPPC,
	specs.ArchPPC64:       libseccomp.ArchPPC64,
	specs.ArchPPC64LE:     libseccomp.ArchPPC64LE,
	specs.ArchS390:        libseccomp.ArchS390,
	specs.ArchS390X:       libseccomp.ArchS390X,
	specs.ArchPARISC:      libseccomp.ArchPARISC,
	specs.ArchPARISC64:    libseccomp.ArchPARISC64,
	specs.ArchRISCV64:     libseccomp.ArchRISCV64,
	specs.ArchLOONGARCH64: libseccomp.ArchLOONGARCH64,
	specs.ArchM68K:        libseccomp.ArchM68K,
	specs.ArchSH:          libseccomp.ArchSH,
	specs.ArchSHEB:        libseccomp.ArchSHEB,
}

// rule is one validated entry of the spec's syscalls list.
type rule struct {
	names  []string
	action libseccomp.ScmpAction
	conds  [][]libseccomp.ScmpCondition // each inner list is one libseccomp rule
}

// Compile validates s and builds its BPF program with libseccomp. Syscall
// names libseccomp does not know are skipped; every other problem is an
// error naming the offending value. Compile has no effect on the calling
// thread and may run in any process on the same kernel as the stage that
// loads the program.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if s == nil {
		return nil, errors.New("compile seccomp filter: no seccomp section")
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp defaultAction: %w", err)
	}
	if s.DefaultAction == specs.ActNotify {
		return nil, errors.New("seccomp defaultAction: SCMP_ACT_NOTIFY cannot be the default action: the init's own syscalls would wait for an agent that has no listener yet")
	}
	archs := make([]libseccomp.ScmpArch, 0, len(s.Architectures))
	for _, a := range s.Architectures {
		sa, ok := arches[a]
		if !ok {
			return nil, fmt.Errorf("seccomp architectures: unknown architecture %q", a)
		}
		archs = append(archs, sa)
	}
	rules := make([]rule, 0, len(s.Syscalls))
	notify := false
	names := 0
	for i, sc := range s.Syscalls {
		r, err := compileRule(sc)
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d]: %w", i, err)
		}
		if r.action == def {
			continue
		}
		if sc.Action == specs.ActNotify {
			notify = true
		}
		names += len(r.names)
		rules = append(rules, r)
	}
	if notify && s.ListenerPath == "" {
		return nil, errors.New("seccomp: SCMP_ACT_NOTIFY needs a listenerPath to send the listener to")
	}
	flags, err := filterFlags(s.Flags, notify)
	if err != nil {
		return nil, fmt.Errorf("seccomp flags: %w", err)
	}

	ctx, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("create seccomp filter: %w", err)
	}
	defer ctx.Release()
	for i, a := range archs {
		if err := ctx.AddArch(a); err != nil {
			if !archKnown(a) {
				return nil, fmt.Errorf("seccomp architectures: %s is not supported by libseccomp %s: %w", s.Architectures[i], Version(), err)
			}
			// EDOM: libseccomp keeps one byte order per filter, and
			// the native architecture is always in it.
			return nil, fmt.Errorf("seccomp architectures: add %s next to the native architecture: %w", s.Architectures[i], err)
		}
	}
	if names > binaryTreeAbove {
		// Only an optimisation: an older libseccomp without it still
		// generates a correct (linear) program.
		_ = ctx.SetOptimize(2)
	}
	for i, r := range rules {
		if err := addRule(ctx, r); err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d]: %w", i, err)
		}
	}
	prog, err := export(ctx)
	if err != nil {
		return nil, err
	}
	return &Filter{prog: prog, flags: flags, notify: notify}, nil
}

// action resolves a spec action and its errnoRet.
func action(name specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	a, ok := actions[name]
	if !ok {
		return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", name)
	}
	switch a {
	case libseccomp.ActErrno, libseccomp.ActTrace:
		ret := uint(unix.EPERM)
		if errnoRet != nil {
			ret = *errnoRet
		}
		// ERRNO data is an errno the kernel clamps to 4095; TRACE data is
		// 16 bits handed to the tracer. Refuse what would be changed.
		if limit := uint(maxErrno); a == libseccomp.ActErrno && ret > limit {
			return libseccomp.ActInvalid, fmt.Errorf("%s: errnoRet %d is above %d", name, ret, limit)
		}
		if ret > 0xffff {
			return libseccomp.ActInvalid, fmt.Errorf("%s: errnoRet %d does not fit in 16 bits", name, ret)
		}
		return a.SetReturnCode(int16(uint16(ret))), nil
	}
	if errnoRet != nil {
		return libseccomp.ActInvalid, fmt.Errorf("%s takes no errnoRet (got %d)", name, *errnoRet)
	}
	return a, nil
}

// compileRule validates one syscalls entry and builds its conditions.
func compileRule(sc specs.LinuxSyscall) (rule, error) {
	act, err := action(sc.Action, sc.ErrnoRet)
	if err != nil {
		return rule{}, err
	}
	r := rule{action: act}
	for _, name := range sc.Names {
		if name == "" {
			return rule{}, errors.New("empty syscall name")
		}
		if sc.Action == specs.ActNotify && name == "sendmsg" {
			return rule{}, errors.New("SCMP_ACT_NOTIFY cannot be used for sendmsg: the init sends the listener to the agent with it")
		}
	}
	var counts [maxArgs]int
	conds := make([]libseccomp.ScmpCondition, 0, len(sc.Args))
	for _, arg := range sc.Args {
		op, ok := operators[arg.Op]
		if !ok {
			return rule{}, fmt.Errorf("unknown operator %q", arg.Op)
		}
		if arg.Index >= maxArgs {
			return rule{}, fmt.Errorf("argument index %d: syscalls have %d arguments", arg.Index, maxArgs)
		}
		values := []uint64{arg.Value}
		if op == libseccomp.CompareMaskedEqual {
			// libseccomp reads (arg & first) == second, runc passes
			// value then valueTwo: value is the mask.
			values = append(values, arg.ValueTwo)
		}
		c, err := libseccomp.MakeCondition(arg.Index, op, values...)
		if err != nil {
			return rule{}, fmt.Errorf("argument %d %s: %w", arg.Index, arg.Op, err)
		}
		counts[arg.Index]++
		conds = append(conds, c)
	}
	repeated := false
	for _, n := range counts {
		repeated = repeated || n > 1
	}
	r.names = sc.Names
	switch {
	case len(conds) == 0:
		r.conds = [][]libseccomp.ScmpCondition{nil}
	case repeated:
		// libseccomp refuses two conditions on one argument in a rule;
		// runc then adds one rule per condition, so they are ORed, and
		// profiles are written for that (see doc.go).
		for _, c := range conds {
			r.conds = append(r.conds, []libseccomp.ScmpCondition{c})
		}
	default:
		r.conds = [][]libseccomp.ScmpCondition{conds}
	}
	return r, nil
}

// addRule adds r to ctx for each of its names libseccomp knows.
func addRule(ctx *libseccomp.ScmpFilter, r rule) error {
	for _, name := range r.names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			// Newer than this libseccomp (or misspelt): runc skips it too,
			// since profiles list syscalls of kernels yet to come.
			continue
		}
		for _, conds := range r.conds {
			if len(conds) == 0 {
				err = ctx.AddRule(nr, r.action)
			} else {
				err = ctx.AddRuleConditional(nr, r.action, conds)
			}
			if err != nil {
				return fmt.Errorf("add rule for syscall %s: %w", name, err)
			}
		}
	}
	return nil
}

// export has libseccomp generate the BPF program and decodes it. libseccomp
// 2.5 can only write it to a descriptor; a memfd takes any size without a
// reader on the other end.
func export(ctx *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", os.NewSyscallError("memfd_create", err))
	}
	f := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer f.Close()
	if err := ctx.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	return decodeBPF(raw)
}

// decodeBPF reads struct sock_filter records (u16 code, u8 jt, u8 jf,
// u32 k, host byte order) as libseccomp writes them.
func decodeBPF(raw []byte) ([]unix.SockFilter, error) {
	const size = 8
	if len(raw) == 0 || len(raw)%size != 0 {
		return nil, fmt.Errorf("export seccomp filter: %d bytes is not a BPF program", len(raw))
	}
	n := len(raw) / size
	if n > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("export seccomp filter: %d instructions, the kernel takes at most %d", n, unix.BPF_MAXINSNS)
	}
	prog := make([]unix.SockFilter, n)
	for i := range prog {
		b := raw[i*size:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return prog, nil
}
