package systemd

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/linux/cgroups"
	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// What systemd is told about a container's limits (systemd.resource-
// control(5)). systemd writes the cgroup files of the units it manages
// from its own settings whenever it re-applies them (daemon-reload, a
// property change of the unit or of a parent): settings it does not know
// would be undone, so each limit it has a property for is also given to
// it, in its units, before the cgroupfs manager writes the exact values.
// Limits without a property (swappiness, hugetlb, rdma, throttles, the
// unified map...) are cgroupfs-only, as in runc.
//
// Where systemd rounds, the property errs on the generous side and the
// cgroupfs write that follows sets the exact value: a daemon-reload can
// then loosen a limit slightly, never tighten it below what the spec
// grants (device rules included).

// infinity is systemd's "no limit" for the uint64 properties (the D-Bus
// form of "infinity": CGROUP_LIMIT_MAX, USEC_INFINITY).
const infinity = math.MaxUint64

// controllerSide says, for one controller, which property family applies:
// systemd's cgroup v2 properties (MemoryMax, CPUWeight, IOWeight,
// AllowedCPUs...), its v1 ones (MemoryLimit, CPUShares, BlockIOWeight),
// or none.
type controllerSide int

const (
	sideNone controllerSide = iota
	sideV1
	sideV2
)

// hostSides decides the family per controller from the container's
// cgroup directories. systemd manages controllers on cgroup2 only on a
// unified host; on a hybrid one it drives them on v1 and leaves any that
// sit on cgroup2 alone, so those get no property.
type hostSides struct {
	paths   map[string]string
	unified bool // no v1 hierarchy at all
}

func newHostSides(paths map[string]string) hostSides {
	h := hostSides{paths: paths, unified: true}
	for k := range paths {
		if k != "" {
			h.unified = false
		}
	}
	return h
}

func (h hostSides) side(v1 string) controllerSide {
	switch {
	case h.paths[v1] != "":
		return sideV1
	case h.unified && h.paths[""] != "":
		return sideV2
	}
	return sideNone
}

func prop(name string, v any) sd.Property {
	return sd.Property{Name: name, Value: dbus.MakeVariant(v)}
}

// resourceProperties returns the properties for the limits r sets: only
// the fields present, so that an update changes nothing else. cur reads
// a control file of the container (dir key, file name), for the one value
// the spec may leave out that systemd needs whole: the CPU quota when
// only the period changes.
func resourceProperties(r *specs.LinuxResources, h hostSides, cur func(key, file string) (string, error), procDevices func() (io.ReadCloser, error)) ([]sd.Property, []string, error) {
	var props []sd.Property
	var warnings []string
	if r == nil {
		return nil, nil, nil
	}
	if m := r.Memory; m != nil {
		switch h.side("memory") {
		case sideV1:
			if v, ok := limitValue(m.Limit); ok {
				props = append(props, prop("MemoryLimit", v))
			}
		case sideV2:
			if v, ok := limitValue(m.Limit); ok {
				props = append(props, prop("MemoryMax", v))
			}
			if v, ok := limitValue(m.Reservation); ok {
				props = append(props, prop("MemoryLow", v))
			}
			if v, ok := swapMax(m); ok {
				props = append(props, prop("MemorySwapMax", v))
			}
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil && h.side("pids") != sideNone {
		// As on cgroupfs, 0 and -1 both mean no limit.
		v := uint64(infinity)
		if *r.Pids.Limit > 0 {
			v = uint64(*r.Pids.Limit)
		}
		props = append(props, prop("TasksMax", v))
	}
	if c := r.CPU; c != nil {
		side := h.side("cpu")
		if s := c.Shares; s != nil && *s != 0 {
			switch side {
			case sideV1:
				props = append(props, prop("CPUShares", *s))
			case sideV2:
				props = append(props, prop("CPUWeight", sharesToWeight(*s)))
			}
		}
		if side != sideNone {
			p, err := cpuQuota(c, side, cur)
			if err != nil {
				return nil, warnings, err
			}
			props = append(props, p...)
		}
		if side == sideV2 && h.unified {
			// systemd has cpusets on cgroup2 only (244+).
			for _, f := range []struct{ name, list, field string }{
				{"AllowedCPUs", c.Cpus, "cpu.cpus"}, {"AllowedMemoryNodes", c.Mems, "cpu.mems"},
			} {
				if f.list == "" {
					continue
				}
				bits, err := cpuListBits(f.list)
				if err != nil {
					return nil, warnings, fmt.Errorf("set %s: %w", f.field, err)
				}
				props = append(props, prop(f.name, bits))
			}
		}
	}
	if b := r.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		switch h.side("blkio") {
		case sideV1:
			props = append(props, prop("BlockIOWeight", uint64(*b.Weight)))
		case sideV2:
			props = append(props, prop("IOWeight", blkioToIOWeight(uint64(*b.Weight))))
		}
	}
	if len(r.Devices) > 0 && (h.paths["devices"] != "" || h.unified) {
		p, w, err := deviceProperties(r.Devices, procDevices)
		if err != nil {
			return nil, warnings, err
		}
		props = append(props, p...)
		warnings = append(warnings, w...)
	}
	return props, warnings, nil
}

// limitValue maps a spec limit to systemd's: absent or 0 is unset, any
// negative number infinity.
func limitValue(p *int64) (uint64, bool) {
	if p == nil || *p == 0 {
		return 0, false
	}
	if *p < 0 {
		return infinity, true
	}
	return uint64(*p), true
}

// swapMax converts the spec's memory+swap into MemorySwapMax (swap
// alone), as the cgroupfs manager converts it for memory.swap.max. The
// combinations it refuses get no property: Set fails on them anyway.
func swapMax(m *specs.LinuxMemory) (uint64, bool) {
	var limit, swap int64
	if m.Limit != nil {
		limit = *m.Limit
	}
	if m.Swap != nil {
		swap = *m.Swap
	}
	switch {
	case limit == -1 && swap == 0, swap == -1:
		return infinity, true
	case swap <= 0 || limit <= 0 || swap < limit:
		return 0, false
	}
	return uint64(swap - limit), true
}

// defaultPeriod is the kernel's CFS period, 100 ms, in µs.
const defaultPeriod = 100000

// cpuQuota returns CPUQuotaPerSecUSec and CPUQuotaPeriodUSec (systemd
// 242+). systemd keeps the quota per second of CPU time and derives the
// per-period quota from it, so a period alone must come with the quota
// recomputed from the value in place; and it stores the quota in whole
// percents in the unit's drop-in, so the value is rounded up to 10 ms per
// second, as runc does, to read back the same after a daemon-reload.
func cpuQuota(c *specs.LinuxCPU, side controllerSide, cur func(key, file string) (string, error)) ([]sd.Property, error) {
	var props []sd.Property
	var period uint64
	if c.Period != nil {
		period = *c.Period
	}
	var quota int64
	if c.Quota != nil {
		quota = *c.Quota
	}
	if quota == 0 && period == 0 {
		return nil, nil
	}
	if period != 0 {
		props = append(props, prop("CPUQuotaPeriodUSec", period))
	}
	if quota == 0 {
		// Only the period changes; the quota stays, and systemd must
		// hear it again against the new period.
		q, p, err := currentQuota(side, cur)
		if err != nil {
			return nil, fmt.Errorf("set cpu.period: read the current quota: %w", err)
		}
		if q < 0 {
			return props, nil // no quota: nothing to rescale
		}
		quota = q
		if period == 0 {
			period = p
		}
	}
	if period == 0 {
		period = defaultPeriod
	}
	perSec := uint64(infinity)
	if quota > 0 {
		perSec = (uint64(quota)*1000000 + period - 1) / period
		perSec = (perSec + 9999) / 10000 * 10000
	}
	return append(props, prop("CPUQuotaPerSecUSec", perSec)), nil
}

// currentQuota reads the quota and period in place; quota -1 means none.
func currentQuota(side controllerSide, cur func(key, file string) (string, error)) (int64, uint64, error) {
	if side == sideV2 {
		s, err := cur("", "cpu.max")
		if err != nil {
			return 0, 0, err
		}
		q, p, _ := strings.Cut(s, " ")
		period, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse cpu.max %q: %w", s, err)
		}
		if q == "max" {
			return -1, period, nil
		}
		quota, err := strconv.ParseInt(q, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse cpu.max %q: %w", s, err)
		}
		return quota, period, nil
	}
	qs, err := cur("cpu", "cpu.cfs_quota_us")
	if err != nil {
		return 0, 0, err
	}
	ps, err := cur("cpu", "cpu.cfs_period_us")
	if err != nil {
		return 0, 0, err
	}
	quota, err := strconv.ParseInt(qs, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse cpu.cfs_quota_us %q: %w", qs, err)
	}
	period, err := strconv.ParseUint(ps, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse cpu.cfs_period_us %q: %w", ps, err)
	}
	if quota < 0 {
		quota = -1
	}
	return quota, period, nil
}

// The conversions to cgroup2 weights are the cgroupfs manager's own: systemd
// and the cgroupfs writes must agree, or they would fight over cpu.weight
// and io.weight.
var (
	sharesToWeight  = cgroups.SharesToWeight
	blkioToIOWeight = cgroups.BlkioToIOWeight
)

// cpuListBits turns a cpuset list ("0-3,8") into the byte array systemd
// takes for AllowedCPUs and AllowedMemoryNodes: bit n%8 of byte n/8 is
// CPU (or node) n.
func cpuListBits(list string) ([]byte, error) {
	var bits []byte
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid cpuset list %q", list)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("invalid cpuset list %q", list)
			}
		}
		for n := a; n <= b; n++ {
			for uint64(len(bits)) <= n/8 {
				bits = append(bits, 0)
			}
			bits[n/8] |= 1 << (n % 8)
		}
	}
	if len(bits) == 0 {
		return nil, fmt.Errorf("invalid cpuset list %q: empty", list)
	}
	return bits, nil
}

// deviceAllow is one DeviceAllow= entry, D-Bus signature (ss).
type deviceAllow struct {
	Path, Access string
}

// deviceProperties turns the spec's device rules into DevicePolicy and
// DeviceAllow.
//
// Why at all: on cgroup v1 systemd, re-applying a unit with no device
// settings, writes "a" to devices.allow and so would open every device
// to the container; on cgroup2 it would merely detach its own program.
//
// The rules mean (see the cgroups package): each access is decided by
// the last matching rule, and what no rule grants is denied. systemd can
// only list what is allowed, so the list is a superset: the allow rules
// after the last "deny all" (the rules before it decide nothing), deny
// rules dropped. cgroupfs then enforces the exact rules: on v1 by
// rewriting the list after systemd, on cgroup2 with a second device
// program, and the kernel grants an access only when every program
// agrees, so systemd's wider list never widens anything.
//
// Devices are named the way systemd reads them without a device node:
// "/dev/char/M:N" for one device, "char-<name>" for a whole major by its
// /proc/devices name, "char-*" for any. A major /proc/devices does not
// list falls back to "char-*", wider but never narrower.
func deviceProperties(rules []specs.LinuxDeviceCgroup, procDevices func() (io.ReadCloser, error)) ([]sd.Property, []string, error) {
	start := 0
	for i, r := range rules {
		if !r.Allow && (r.Type == "" || r.Type == "a") && wild(r.Major) && wild(r.Minor) && fullAccess(r.Access) {
			start = i + 1
		}
	}
	var names map[string]map[int64]string // "char"/"block" -> major -> name
	var warnings []string
	var list []deviceAllow
	seen := map[deviceAllow]bool{}
	add := func(path, acc string) {
		e := deviceAllow{path, acc}
		if !seen[e] {
			seen[e] = true
			list = append(list, e)
		}
	}
	for i, r := range rules[start:] {
		if !r.Allow {
			continue
		}
		acc, err := normAccess(r.Access)
		if err != nil {
			return nil, nil, fmt.Errorf("set devices[%d]: %w", start+i, err)
		}
		var kinds []string
		switch r.Type {
		case "", "a":
			if wild(r.Major) && wild(r.Minor) && acc == "rwm" {
				// Everything allowed: systemd must restrict nothing.
				return []sd.Property{prop("DevicePolicy", "auto"), prop("DeviceAllow", []deviceAllow{})}, nil, nil
			}
			kinds = []string{"char", "block"}
		case "c":
			kinds = []string{"char"}
		case "b":
			kinds = []string{"block"}
		default:
			return nil, nil, fmt.Errorf("set devices[%d]: invalid type %q (want a, b or c)", start+i, r.Type)
		}
		for _, k := range kinds {
			switch {
			case !wild(r.Major) && !wild(r.Minor):
				add(fmt.Sprintf("/dev/%s/%d:%d", k, *r.Major, *r.Minor), acc)
			case !wild(r.Major):
				if names == nil {
					names = readProcDevices(procDevices)
				}
				if n, ok := names[k][*r.Major]; ok {
					add(k+"-"+n, acc)
				} else {
					warnings = append(warnings, fmt.Sprintf("devices: major %d is not in /proc/devices: systemd is told to allow all %s devices (%s); cgroupfs enforces the exact rule", *r.Major, k, acc))
					add(k+"-*", acc)
				}
			default:
				add(k+"-*", acc)
			}
		}
	}
	if list == nil {
		list = []deviceAllow{}
	}
	return []sd.Property{prop("DevicePolicy", "strict"), prop("DeviceAllow", list)}, warnings, nil
}

func wild(p *int64) bool { return p == nil || *p == -1 }

func fullAccess(s string) bool {
	return s == "" || (strings.Contains(s, "r") && strings.Contains(s, "w") && strings.Contains(s, "m"))
}

// normAccess orders an access string as systemd prints it ("rwm").
func normAccess(s string) (string, error) {
	if s == "" {
		return "rwm", nil
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return "", fmt.Errorf("invalid access %q (want a combination of r, w, m)", s)
		}
	}
	out := ""
	for _, c := range "rwm" {
		if strings.ContainsRune(s, c) {
			out += string(c)
		}
	}
	return out, nil
}

// readProcDevices parses /proc/devices ("Character devices:" then
// "  1 mem" lines, then "Block devices:"). A major listed twice keeps
// its first name without a slash; any of them would do, as systemd
// matches by name.
// Unreadable means empty: every major then falls back to the wildcard.
func readProcDevices(open func() (io.ReadCloser, error)) map[string]map[int64]string {
	out := map[string]map[int64]string{"char": {}, "block": {}}
	f, err := open()
	if err != nil {
		return out
	}
	defer f.Close()
	kind := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "Character devices:":
			kind = "char"
			continue
		case "Block devices:":
			kind = "block"
			continue
		}
		f := strings.Fields(line)
		if kind == "" || len(f) != 2 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		// systemd matches the name as a glob pattern in its device
		// group syntax; prefer a plain one to "/dev/vc/0".
		if old, dup := out[kind][n]; !dup || (strings.Contains(old, "/") && !strings.Contains(f[1], "/")) {
			out[kind][n] = f[1]
		}
	}
	return out
}

func openProcDevices() (io.ReadCloser, error) { return os.Open("/proc/devices") }

// readCtl reads one control file of the container's cgroup.
func readCtl(paths map[string]string) func(key, file string) (string, error) {
	return func(key, file string) (string, error) {
		d := paths[key]
		if d == "" {
			return "", fmt.Errorf("no %q cgroup directory", key)
		}
		b, err := os.ReadFile(filepath.Join(d, file))
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// propNames lists the names, for messages.
func propNames(props []sd.Property) string {
	var n []string
	for _, p := range props {
		n = append(n, p.Name)
	}
	slices.Sort(n)
	return strings.Join(n, ", ")
}
