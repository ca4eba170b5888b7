package procattr

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Personality sets the execution domain.
func Personality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	var persona uintptr
	switch p.Domain {
	case specs.PerLinux:
		persona = 0x0000
	case specs.PerLinux32:
		persona = 0x0008
	default:
		return fmt.Errorf("unknown personality domain %q", p.Domain)
	}
	if len(p.Flags) > 0 {
		return fmt.Errorf("personality flags %v are not defined", p.Flags)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, persona, 0, 0); errno != 0 {
		return fmt.Errorf("set personality %s: %w", p.Domain, os.NewSyscallError("personality", errno))
	}
	return nil
}

const (
	ioprioWhoProcess = 1
	ioprioClassShift = 13
)

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

// ValidateIOPriority checks class and level.
func ValidateIOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	if _, ok := ioprioClasses[p.Class]; !ok {
		return fmt.Errorf("unknown ioPriority class %q", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return fmt.Errorf("ioPriority %d out of range 0-7", p.Priority)
	}
	return nil
}

// IOPriority sets the process's I/O scheduling class and level.
func IOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	if err := ValidateIOPriority(p); err != nil {
		return err
	}
	v := uintptr(ioprioClasses[p.Class]<<ioprioClassShift | p.Priority)
	if _, _, errno := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, v); errno != 0 {
		return fmt.Errorf("set ioPriority %s/%d: %w", p.Class, p.Priority, os.NewSyscallError("ioprio_set", errno))
	}
	return nil
}

var policies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

// schedAttr is struct sched_attr (SCHED_ATTR_SIZE_VER1).
type schedAttr struct {
	size     uint32
	policy   uint32
	flags    uint64
	nice     int32
	priority uint32
	runtime  uint64
	deadline uint64
	period   uint64
	utilMin  uint32
	utilMax  uint32
}

func buildSchedAttr(s *specs.Scheduler) (*schedAttr, error) {
	policy, ok := policies[s.Policy]
	if !ok {
		return nil, fmt.Errorf("unknown scheduler policy %q", s.Policy)
	}
	a := &schedAttr{policy: policy, nice: s.Nice, priority: uint32(s.Priority),
		runtime: s.Runtime, deadline: s.Deadline, period: s.Period}
	a.size = uint32(unsafe.Sizeof(*a))
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return nil, fmt.Errorf("unknown scheduler flag %q", f)
		}
		a.flags |= v
	}
	if s.Nice < -20 || s.Nice > 19 {
		return nil, fmt.Errorf("scheduler nice %d out of range -20..19", s.Nice)
	}
	switch s.Policy {
	case specs.SchedFIFO, specs.SchedRR:
		if s.Priority < 1 || s.Priority > 99 {
			return nil, fmt.Errorf("scheduler priority %d out of range 1..99 for %s", s.Priority, s.Policy)
		}
	default:
		if s.Priority != 0 {
			return nil, fmt.Errorf("scheduler priority must be 0 for %s", s.Policy)
		}
	}
	if s.Policy != specs.SchedDeadline && (s.Runtime != 0 || s.Deadline != 0 || s.Period != 0) {
		return nil, fmt.Errorf("scheduler runtime, deadline and period are only for SCHED_DEADLINE")
	}
	return a, nil
}

// ValidateScheduler checks the scheduler section.
func ValidateScheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	_, err := buildSchedAttr(s)
	return err
}

// Scheduler sets the calling thread's scheduling policy with
// sched_setattr(2).
func Scheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	a, err := buildSchedAttr(s)
	if err != nil {
		return err
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SCHED_SETATTR, 0, uintptr(unsafe.Pointer(a)), 0); errno != 0 {
		return fmt.Errorf("set scheduler %s: %w", s.Policy, os.NewSyscallError("sched_setattr", errno))
	}
	return nil
}

// ParseCPUList parses "0-3,7" into a CPU set.
func ParseCPUList(list string) (*unix.CPUSet, error) {
	var set unix.CPUSet
	set.Zero()
	if strings.TrimSpace(list) == "" {
		return nil, fmt.Errorf("empty CPU list")
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid CPU list %q", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("invalid CPU list %q", list)
			}
		}
		if b >= len(set)*64 {
			return nil, fmt.Errorf("CPU %d in %q out of range", b, list)
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	return &set, nil
}

// Affinity pins the calling thread to the CPUs of list; empty does nothing.
func Affinity(list string) error {
	if list == "" {
		return nil
	}
	set, err := ParseCPUList(list)
	if err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(0, set); err != nil {
		return fmt.Errorf("set CPU affinity %s: %w", list, os.NewSyscallError("sched_setaffinity", err))
	}
	return nil
}

var mpolModes = map[specs.MemoryPolicyModeType]uintptr{
	specs.MpolDefault: 0, specs.MpolPreferred: 1, specs.MpolBind: 2, specs.MpolInterleave: 3,
	specs.MpolLocal: 4, specs.MpolPreferredMany: 5, specs.MpolWeightedInterleave: 6,
}

var mpolFlags = map[specs.MemoryPolicyFlagType]uintptr{
	specs.MpolFNumaBalancing: 1 << 13, specs.MpolFRelativeNodes: 1 << 14, specs.MpolFStaticNodes: 1 << 15,
}

// MemoryPolicy sets the calling thread's NUMA policy with
// set_mempolicy(2).
func MemoryPolicy(p *specs.LinuxMemoryPolicy) error {
	if p == nil {
		return nil
	}
	mode, ok := mpolModes[p.Mode]
	if !ok {
		return fmt.Errorf("unknown memory policy mode %q", p.Mode)
	}
	for _, f := range p.Flags {
		v, ok := mpolFlags[f]
		if !ok {
			return fmt.Errorf("unknown memory policy flag %q", f)
		}
		mode |= v
	}
	var mask []uint64
	maxnode := uintptr(0)
	if p.Nodes != "" {
		set, err := ParseCPUList(p.Nodes) // same list syntax, nodes instead of CPUs
		if err != nil {
			return fmt.Errorf("memory policy nodes: %w", err)
		}
		mask = make([]uint64, len(set))
		for i := range set {
			mask[i] = uint64(set[i])
		}
		maxnode = uintptr(len(mask) * 64)
	}
	var ptr uintptr
	if len(mask) > 0 {
		ptr = uintptr(unsafe.Pointer(&mask[0]))
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SET_MEMPOLICY, mode, ptr, maxnode); errno != 0 {
		return fmt.Errorf("set memory policy %s: %w", p.Mode, os.NewSyscallError("set_mempolicy", errno))
	}
	return nil
}
