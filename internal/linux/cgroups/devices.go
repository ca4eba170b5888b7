package cgroups

import (
	"fmt"
	"math"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Device access control: linux.resources.devices is an ordered list of
// allow/deny rules. Two kernel mechanisms enforce it:
//
//   - v1, the devices controller: a default (allow all or deny all) and a
//     list of exceptions, edited by writing rules to devices.allow and
//     devices.deny (devices_v1.go);
//   - cgroup2, an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE
//     attached to the cgroup, which the kernel asks about every open and
//     mknod of a device node (devices_ebpf.go, bpf.go).
//
// The v1 controller is used when the host binds it to a v1 hierarchy (as
// hybrid hosts do), the eBPF program otherwise. Both run the rules in the
// spec's order. The eBPF program implements the spec's meaning exactly:
// each access bit of a request is decided by the last rule that matches
// the device and names the bit, and what no rule decides is denied. v1 is
// coarser: a deny rule only removes an exception written with the same
// type, major and minor, so it cannot narrow a wildcard allowed before
// it; Set warns when a rule list hits that case.
//
// A nil or empty list leaves the cgroup's devices alone: the default set
// (null, zero, full, random, urandom, tty, console, pts, ptmx) is the
// caller's to put in the list, after its "deny all".

// Access bits, with the values of the kernel's BPF_DEVCG_ACC_* so that
// the eBPF program can use them as they are.
const (
	accMknod = 1 << iota
	accRead
	accWrite
	accAll = accMknod | accRead | accWrite
)

// wildcard is a major or minor number matching any.
const wildcard = -1

// devRule is one validated spec rule.
type devRule struct {
	allow bool
	typ   byte // 'a' (any), 'c' or 'b'
	major int64
	minor int64
	acc   uint8
}

// parseDeviceRules validates the spec's rules: type "", "a", "c" or "b";
// major and minor absent (any) or in 0..MaxInt32 (the eBPF program
// compares them as 32-bit immediates, and the kernel's numbers are 12 and
// 20 bits); access a combination of "r", "w", "m", empty meaning all.
func parseDeviceRules(in []specs.LinuxDeviceCgroup) ([]devRule, error) {
	out := make([]devRule, 0, len(in))
	for i, d := range in {
		r := devRule{allow: d.Allow, major: wildcard, minor: wildcard}
		switch d.Type {
		case "", "a":
			r.typ = 'a'
		case "c", "b":
			r.typ = d.Type[0]
		default:
			return nil, fmt.Errorf("set devices[%d]: invalid type %q (want a, b or c)", i, d.Type)
		}
		for _, n := range []struct {
			p    *int64
			dst  *int64
			name string
		}{{d.Major, &r.major, "major"}, {d.Minor, &r.minor, "minor"}} {
			if n.p == nil || *n.p == wildcard {
				continue
			}
			if *n.p < 0 || *n.p > math.MaxInt32 {
				return nil, fmt.Errorf("set devices[%d]: invalid %s %d", i, n.name, *n.p)
			}
			*n.dst = *n.p
		}
		acc, err := parseAccess(d.Access)
		if err != nil {
			return nil, fmt.Errorf("set devices[%d]: %w", i, err)
		}
		r.acc = acc
		out = append(out, r)
	}
	return out, nil
}

func parseAccess(s string) (uint8, error) {
	if s == "" {
		return accAll, nil
	}
	var acc uint8
	for _, c := range s {
		switch c {
		case 'r':
			acc |= accRead
		case 'w':
			acc |= accWrite
		case 'm':
			acc |= accMknod
		default:
			return 0, fmt.Errorf("invalid access %q (want a combination of r, w, m)", s)
		}
	}
	return acc, nil
}

func accessString(acc uint8) string {
	s := ""
	if acc&accRead != 0 {
		s += "r"
	}
	if acc&accWrite != 0 {
		s += "w"
	}
	if acc&accMknod != 0 {
		s += "m"
	}
	return s
}

func devNum(n int64) string {
	if n == wildcard {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

// String renders the rule as the v1 controller writes and lists it:
// "c 1:3 rwm".
func (r devRule) String() string {
	return string(r.typ) + " " + devNum(r.major) + ":" + devNum(r.minor) + " " + accessString(r.acc)
}

// matches reports whether the rule applies to a device (typ 'c' or 'b').
func (r devRule) matches(typ byte, major, minor int64) bool {
	return (r.typ == 'a' || r.typ == typ) &&
		(r.major == wildcard || r.major == major) &&
		(r.minor == wildcard || r.minor == minor)
}

// allowed is the reference meaning of a rule list: each requested access
// bit is decided by the last rule matching the device that names it; a
// bit no rule names is denied. The eBPF program computes exactly this;
// tests hold it to that.
func allowed(rules []devRule, typ byte, major, minor int64, acc uint8) bool {
	undecided := acc
	for i := len(rules) - 1; i >= 0 && undecided != 0; i-- {
		r := rules[i]
		if !r.matches(typ, major, minor) {
			continue
		}
		if !r.allow && undecided&r.acc != 0 {
			return false
		}
		if r.allow {
			undecided &^= r.acc
		}
	}
	return undecided == 0
}

func (s *setter) devices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	rules, err := parseDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	if d := s.m.paths["devices"]; d != "" {
		return s.devicesV1(d, rules)
	}
	if d := s.m.paths[""]; d != "" {
		return setDeviceProgram(d, rules)
	}
	return errNoController("devices", "devices (v1) or cgroup2 (eBPF)")
}
