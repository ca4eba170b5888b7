package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Set writes every limit r sets into the cgroup's control files. A nil
// field leaves the current value alone, so one call serves both create
// (the spec's resources, before the init runs the user's program) and
// update (the fields the caller wants changed).
//
// Each resource goes to the hierarchy that holds its controller: a v1
// hierarchy when the host binds the controller there, else the cgroup2
// directory when its cgroup.controllers lists it. On a hybrid host one
// Set can therefore touch both (memory on v1, hugetlb on cgroup2).
//
// Fields the host cannot honour and that are safe to drop are skipped
// with a warning (kernel memory limits, swappiness and disableOOMKiller on
// cgroup v2, CFQ leaf weights): the caller logs the warnings, as runc logs
// its own. A field whose controller is missing is an error naming the
// field, wrapping errors.ErrUnsupported.
//
// Preconditions: Apply has created the directories.
//
// Postconditions: on error, the resources before the failing one are
// applied and the rest untouched; the warnings gathered so far are
// returned with the error.
func (m *manager) Set(r *specs.LinuxResources) ([]string, error) {
	if r == nil {
		return nil, nil
	}
	s := &setter{m: m}
	steps := []func(*specs.LinuxResources) error{
		// Devices first: it is the limit that matters for security, and
		// the cheapest to get wrong.
		s.devices,
		s.cpuset,
		s.memory,
		s.cpu,
		s.pids,
		s.blockIO,
		s.hugetlb,
		s.network,
		s.rdma,
		// Last, as in runc: an explicit unified value overrides what the
		// typed fields above wrote to the same file.
		s.unified,
	}
	for _, step := range steps {
		if err := step(r); err != nil {
			return s.warnings, err
		}
	}
	return s.warnings, nil
}

// setter carries one Set call's manager and the warnings it gathers.
type setter struct {
	m        *manager
	warnings []string
}

func (s *setter) warn(format string, args ...any) {
	s.warnings = append(s.warnings, fmt.Sprintf(format, args...))
}

// errNoController is the error for a resource whose controller the cgroup
// does not have on either side.
func errNoController(field, ctrl string) error {
	return fmt.Errorf("set %s: no %s controller for this cgroup (not on a v1 hierarchy, not enabled on cgroup2): %w",
		field, ctrl, errors.ErrUnsupported)
}

// dirFor returns the directory holding a controller for this cgroup: its
// v1 hierarchy directory (v1 is the v1 name, "blkio" say), else the
// cgroup2 directory when the controller v2 ("io") is enabled there. v2 ==
// "" means the controller has no cgroup2 counterpart (net_cls). ok is
// false when neither side has it.
func (m *manager) dirFor(v1, v2 string) (dir string, unified bool, ok bool) {
	if d := m.paths[v1]; d != "" {
		return d, false, true
	}
	d := m.paths[""]
	if d == "" || v2 == "" {
		return "", false, false
	}
	if !slices.Contains(v2Controllers(d), v2) {
		return "", false, false
	}
	return d, true, true
}

// v2Controllers lists the controllers enabled for a cgroup2 directory:
// those its parent passed down in cgroup.subtree_control, which the kernel
// shows in the directory's own cgroup.controllers.
func v2Controllers(dir string) []string {
	s, err := readFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(s)
}

// setCtl writes value to dir/file; field names the spec field for the
// error, which also carries the path and the value.
func setCtl(dir, file, value, field string) error {
	if err := writeFile(filepath.Join(dir, file), value); err != nil {
		return fmt.Errorf("set %s to %q: %w", field, value, err)
	}
	return nil
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// readUint reads a control file holding one unsigned number. cgroup2's
// "max" reads as the largest uint64, as runc reports it.
func readUint(dir, file string) (uint64, error) {
	p := filepath.Join(dir, file)
	s, err := readFile(p)
	if err != nil {
		return 0, err
	}
	return parseUint(s, p)
}

func parseUint(s, what string) (uint64, error) {
	if s == "max" {
		return maxUint, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 files report "unlimited" as -1 in a few places
		// (memory.soft_limit_in_bytes on old kernels, cpu.cfs_quota_us).
		if n, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && n < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %s: %w", what, err)
	}
	return v, nil
}

const maxUint = ^uint64(0)

// i64 and u64 read an optional spec number; absent is 0, which the
// spec's limit fields treat as "not set" (runc does the same).
func i64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func u64(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// limitString renders a limit for a v2 file (and the v1 files that take
// "max"): -1, or any negative number, is "max".
func limitString(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func (s *setter) pids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, _, ok := s.m.dirFor("pids", "pids")
	if !ok {
		return errNoController("pids.limit", "pids")
	}
	// pids.max has the same name and syntax on v1 and v2. The spec's 0
	// and -1 both mean no limit: a cgroup with pids.max 0 could not even
	// hold the init, which is never what a config asks for.
	v := "max"
	if l := *r.Pids.Limit; l > 0 {
		v = strconv.FormatInt(l, 10)
	}
	return setCtl(dir, "pids.max", v, "pids.limit")
}

func (s *setter) network(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		// net_cls and net_prio exist only on v1; cgroup2 leaves packet
		// classification to eBPF and nftables' "socket cgroupv2" match.
		dir, _, ok := s.m.dirFor("net_cls", "")
		if !ok {
			return errNoController("network.classID", "net_cls (cgroup v1 only)")
		}
		if err := setCtl(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10), "network.classID"); err != nil {
			return err
		}
	}
	if len(n.Priorities) > 0 {
		dir, _, ok := s.m.dirFor("net_prio", "")
		if !ok {
			return errNoController("network.priorities", "net_prio (cgroup v1 only)")
		}
		for _, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \n") {
				return fmt.Errorf("set network.priorities: invalid interface name %q", p.Name)
			}
			// ifpriomap takes one "ifname prio" pair per write.
			if err := setCtl(dir, "net_prio.ifpriomap", p.Name+" "+strconv.FormatUint(uint64(p.Priority), 10), "network.priorities"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *setter) rdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, _, ok := s.m.dirFor("rdma", "rdma")
	if !ok {
		return errNoController("rdma", "rdma")
	}
	// rdma.max has the same syntax on v1 and v2: one device per write,
	// "mlx4_0 hca_handle=2 hca_object=max", unnamed keys left as they are.
	for _, dev := range slices.Sorted(maps.Keys(r.Rdma)) {
		l := r.Rdma[dev]
		if dev == "" || strings.ContainsAny(dev, " \n=") {
			return fmt.Errorf("set rdma: invalid device name %q", dev)
		}
		line := dev
		if l.HcaHandles != nil {
			line += " hca_handle=" + strconv.FormatUint(uint64(*l.HcaHandles), 10)
		}
		if l.HcaObjects != nil {
			line += " hca_object=" + strconv.FormatUint(uint64(*l.HcaObjects), 10)
		}
		if line == dev {
			continue
		}
		if err := setCtl(dir, "rdma.max", line, "rdma."+dev); err != nil {
			return err
		}
	}
	return nil
}
