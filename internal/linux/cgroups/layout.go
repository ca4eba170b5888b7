package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Mode is how the host arranges its cgroup filesystems.
type Mode int

const (
	// Legacy hosts mount only cgroup v1 hierarchies.
	Legacy Mode = iota + 1
	// Hybrid hosts mount v1 hierarchies and a cgroup2 filesystem beside
	// them; a controller bound to a v1 hierarchy is absent from cgroup2.
	Hybrid
	// Unified hosts mount only cgroup2.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	// Mountpoint is the absolute directory the hierarchy is mounted on.
	Mountpoint string
	// Root is the cgroup of the hierarchy shown at Mountpoint (field 4 of
	// mountinfo): "/" on a host, a subtree inside a container without its
	// own cgroup namespace.
	Root string
	// Controllers of a v1 hierarchy as the kernel names them in
	// /proc/PID/cgroup, a named hierarchy as "name=<name>"; for cgroup2 the
	// controllers available at Mountpoint (its cgroup.controllers).
	Controllers []string
	// Unified is true for the cgroup2 hierarchy.
	Unified bool
}

// Layout is the set of cgroup hierarchies mounted on the host.
type Layout struct {
	Mode Mode
	// Hierarchies in mountinfo order, one per hierarchy: a hierarchy
	// mounted more than once is listed at its first mount.
	Hierarchies []Hierarchy
}

// Unified returns the cgroup2 hierarchy, if one is mounted.
func (l Layout) Unified() (Hierarchy, bool) {
	for _, h := range l.Hierarchies {
		if h.Unified {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// HierarchyOf returns the hierarchy that holds controller: the v1
// hierarchy it is bound to, else the cgroup2 hierarchy when that lists it.
// "name=systemd" finds the named v1 hierarchy.
func (l Layout) HierarchyOf(controller string) (Hierarchy, bool) {
	for _, h := range l.Hierarchies {
		if !h.Unified && slices.Contains(h.Controllers, controller) {
			return h, true
		}
	}
	if u, ok := l.Unified(); ok && slices.Contains(u.Controllers, controller) {
		return u, true
	}
	return Hierarchy{}, false
}

var (
	detectMu     sync.Mutex
	detectCached *Layout
)

// Detect reads the host's cgroup layout from /proc/self/mountinfo and, for
// cgroup2, the controllers listed at its mountpoint. The first successful
// result is cached for the life of the process: hierarchies are mounted at
// boot, and the runtime is a short-lived process.
func Detect() (Layout, error) {
	detectMu.Lock()
	defer detectMu.Unlock()
	if detectCached != nil {
		return cloneLayout(*detectCached), nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Layout{}, fmt.Errorf("detect cgroup layout: %w", err)
	}
	defer f.Close()
	l, err := parseMountinfo(f)
	if err != nil {
		return Layout{}, fmt.Errorf("detect cgroup layout: %w", err)
	}
	for i := range l.Hierarchies {
		h := &l.Hierarchies[i]
		if !h.Unified {
			continue
		}
		b, err := os.ReadFile(filepath.Join(h.Mountpoint, "cgroup.controllers"))
		if err != nil {
			return Layout{}, fmt.Errorf("detect cgroup layout: %w", err)
		}
		h.Controllers = strings.Fields(string(b))
	}
	detectCached = &l
	return cloneLayout(l), nil
}

func cloneLayout(l Layout) Layout {
	out := Layout{Mode: l.Mode, Hierarchies: make([]Hierarchy, len(l.Hierarchies))}
	for i, h := range l.Hierarchies {
		h.Controllers = slices.Clone(h.Controllers)
		out.Hierarchies[i] = h
	}
	return out
}

// errNoCgroups is returned when no cgroup filesystem is mounted at all.
var errNoCgroups = errors.New("no cgroup filesystem mounted")

// parseMountinfo extracts the cgroup hierarchies from a mountinfo file
// (proc(5)). The cgroup2 entry comes back without controllers: those live
// in a file under its mountpoint, which Detect reads.
func parseMountinfo(r io.Reader) (Layout, error) {
	var l Layout
	seen := map[string]bool{} // hierarchy identity -> already listed
	var v1, v2 bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		// "36 35 98:0 /root /mnt rw,noatime master:1 - cgroup cgroup rw,cpu"
		// The optional fields before " - " vary in number.
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf := strings.Fields(pre)
		sf := strings.Fields(post)
		if len(pf) < 5 || len(sf) < 1 {
			continue
		}
		fstype := sf[0]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		h := Hierarchy{Root: unescapeMountinfo(pf[3]), Mountpoint: unescapeMountinfo(pf[4])}
		var id string
		if fstype == "cgroup2" {
			h.Unified = true
			id = "cgroup2"
			v2 = true
		} else {
			if len(sf) < 3 {
				continue
			}
			h.Controllers = v1Controllers(sf[2])
			if len(h.Controllers) == 0 {
				continue
			}
			// Controllers are bound to one hierarchy each, and a named
			// hierarchy's name is unique, so the set names the hierarchy.
			id = strings.Join(h.Controllers, ",")
			v1 = true
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		l.Hierarchies = append(l.Hierarchies, h)
	}
	if err := sc.Err(); err != nil {
		return Layout{}, fmt.Errorf("read mountinfo: %w", err)
	}
	switch {
	case v1 && v2:
		l.Mode = Hybrid
	case v1:
		l.Mode = Legacy
	case v2:
		l.Mode = Unified
	default:
		return Layout{}, errNoCgroups
	}
	return l, nil
}

// v1Controllers picks the controllers out of a v1 mount's super options,
// which mix them with flags such as "rw" and "clone_children".
func v1Controllers(superOpts string) []string {
	var out []string
	for _, o := range strings.Split(superOpts, ",") {
		switch {
		case o == "" || o == "rw" || o == "ro" || o == "noprefix" ||
			o == "clone_children" || o == "xattr" || o == "cpuset_v2_mode" ||
			o == "favordynmods" || o == "all" || o == "none":
			continue
		case strings.HasPrefix(o, "name="):
			out = append(out, o)
		case strings.Contains(o, "="):
			// release_agent=... and any future key=value option.
			continue
		default:
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, \011,
// \012, \134) the kernel uses for paths in mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
