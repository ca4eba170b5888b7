package procattr

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// PersonalityValue is the personality(2) argument of the spec's execution
// domain.
func PersonalityValue(p *specs.LinuxPersonality) (uint64, error) {
	var persona uint64
	switch p.Domain {
	case specs.PerLinux:
		persona = 0x0000
	case specs.PerLinux32:
		persona = 0x0008
	default:
		return 0, fmt.Errorf("unknown personality domain %q", p.Domain)
	}
	if len(p.Flags) > 0 {
		return 0, fmt.Errorf("personality flags %v are not defined", p.Flags)
	}
	return persona, nil
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

// IOPriorityValue is the ioprio_set(2) value of the spec's I/O scheduling
// class and level.
func IOPriorityValue(p *specs.LinuxIOPriority) (uint32, error) {
	if err := ValidateIOPriority(p); err != nil {
		return 0, err
	}
	return uint32(ioprioClasses[p.Class]<<ioprioClassShift | p.Priority), nil
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

// SchedAttr is the struct sched_attr for sched_setattr(2) of the spec's
// scheduling policy, as bytes.
func SchedAttr(s *specs.Scheduler) ([]byte, error) {
	a, err := buildSchedAttr(s)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(a)), unsafe.Sizeof(*a)), nil
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

// CPUMask is the cpu_set_t of a CPU list ("0-3,7"), as words.
func CPUMask(list string) ([]uint64, error) {
	set, err := ParseCPUList(list)
	if err != nil {
		return nil, err
	}
	mask := make([]uint64, len(set))
	for i := range set {
		mask[i] = uint64(set[i])
	}
	return mask, nil
}

var mpolModes = map[specs.MemoryPolicyModeType]uintptr{
	specs.MpolDefault: 0, specs.MpolPreferred: 1, specs.MpolBind: 2, specs.MpolInterleave: 3,
	specs.MpolLocal: 4, specs.MpolPreferredMany: 5, specs.MpolWeightedInterleave: 6,
}

var mpolFlags = map[specs.MemoryPolicyFlagType]uintptr{
	specs.MpolFNumaBalancing: 1 << 13, specs.MpolFRelativeNodes: 1 << 14, specs.MpolFStaticNodes: 1 << 15,
}

// MemoryPolicyArgs are the set_mempolicy(2) arguments of the spec's NUMA
// policy: mode with its flags, the node mask, and its size in bits.
func MemoryPolicyArgs(p *specs.LinuxMemoryPolicy) (mode uint32, nodes []uint64, maxnode uint64, err error) {
	m, ok := mpolModes[p.Mode]
	if !ok {
		return 0, nil, 0, fmt.Errorf("unknown memory policy mode %q", p.Mode)
	}
	for _, f := range p.Flags {
		v, ok := mpolFlags[f]
		if !ok {
			return 0, nil, 0, fmt.Errorf("unknown memory policy flag %q", f)
		}
		m |= v
	}
	if p.Nodes != "" {
		// The same list syntax, nodes instead of CPUs.
		if nodes, err = CPUMask(p.Nodes); err != nil {
			return 0, nil, 0, fmt.Errorf("memory policy nodes: %w", err)
		}
		maxnode = uint64(len(nodes) * 64)
	}
	return uint32(m), nodes, maxnode, nil
}
