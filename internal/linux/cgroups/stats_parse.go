package cgroups

import (
	"fmt"
	"strconv"
	"strings"
)

// Parsers for the formats of cgroup control files (cgroup-v2.rst,
// "Interface Files"), all tolerant of fields a newer kernel adds.

// parseFlatKeyed parses "key value" lines (memory.stat, cpu.stat,
// memory.events). Lines that do not parse are skipped: a kernel may add
// keys with other value shapes.
func parseFlatKeyed(s string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// parseUintList parses space-separated numbers (cpuacct.usage_percpu).
func parseUintList(s string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Fields(s) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseUsageAll parses cpuacct.usage_all: a "cpu user system" header,
// then one line per CPU with its user and system time in nanoseconds.
func parseUsageAll(s string) (user, sys []uint64, err error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, nil, fmt.Errorf("bad line %q", line)
		}
		u, err1 := strconv.ParseUint(f[1], 10, 64)
		k, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("bad line %q", line)
		}
		user, sys = append(user, u), append(sys, k)
	}
	return user, sys, nil
}

// parseCPUList parses the list format of cpuset files: "0-3,7,9-10".
func parseCPUList(s string) ([]uint16, error) {
	var out []uint16
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("bad list %q", s)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out, nil
}

// parseBlkio parses a v1 blkio statistics file: "8:0 Read 4096" lines,
// "8:0 4096" for counters without an operation, and a final "Total N"
// that is dropped (consumers sum the devices themselves).
func parseBlkio(s string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "Total" {
			continue
		}
		var e BlkioEntry
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok || (len(f) != 2 && len(f) != 3) {
			return nil, fmt.Errorf("bad line %q", line)
		}
		var err1, err2, err3 error
		e.Major, err1 = strconv.ParseUint(maj, 10, 64)
		e.Minor, err2 = strconv.ParseUint(min, 10, 64)
		if len(f) == 3 {
			e.Op = f[1]
		}
		e.Value, err3 = strconv.ParseUint(f[len(f)-1], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("bad line %q", line)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseIOStat parses cgroup2's io.stat, "8:0 rbytes=1 wbytes=2 rios=3
// wios=4 dbytes=5 dios=6" per device, into runc's v1-shaped entries, as
// runc does: bytes as ioServiceBytesRecursive, operations as
// ioServicedRecursive, each with Read, Write and Discard.
func parseIOStat(s string) (bytes, ios []BlkioEntry, err error) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			return nil, nil, fmt.Errorf("bad line %q", line)
		}
		ma, err1 := strconv.ParseUint(maj, 10, 64)
		mi, err2 := strconv.ParseUint(min, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("bad line %q", line)
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: ma, Minor: mi, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				bytes = append(bytes, e)
			case "wbytes":
				e.Op = "Write"
				bytes = append(bytes, e)
			case "dbytes":
				e.Op = "Discard"
				bytes = append(bytes, e)
			case "rios":
				e.Op = "Read"
				ios = append(ios, e)
			case "wios":
				e.Op = "Write"
				ios = append(ios, e)
			case "dios":
				e.Op = "Discard"
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios, nil
}

// parsePSI parses a pressure file: "some avg10=0.00 avg60=0.00
// avg300=0.00 total=0" and, except for cpu.pressure on old kernels, a
// "full" line of the same shape.
func parsePSI(s string) (*PSIStats, error) {
	p := &PSIStats{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var d *PSIData
		switch f[0] {
		case "some":
			d = &p.Some
		case "full":
			d = &p.Full
		default:
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "avg10":
				d.Avg10, err = strconv.ParseFloat(v, 64)
			case "avg60":
				d.Avg60, err = strconv.ParseFloat(v, 64)
			case "avg300":
				d.Avg300, err = strconv.ParseFloat(v, 64)
			case "total":
				d.Total, err = strconv.ParseUint(v, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("bad line %q", line)
			}
		}
	}
	return p, nil
}
