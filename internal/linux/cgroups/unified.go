package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// enableControllers makes every controller available on the cgroup2
// hierarchy usable in dir, by enabling it in the cgroup.subtree_control of
// each ancestor, top-down (a cgroup can only pass on what its parent
// passed to it). It leaves dir's own subtree_control alone: a cgroup2
// cgroup that enables domain controllers for its children may not hold
// processes itself, and dir is about to.
//
// An ancestor holding processes is left alone, whatever it offers: cgroup2
// allows no processes in a cgroup that passes domain controllers on (the
// kernel refuses those with EBUSY), and enabling only the threaded ones
// (cpu, cpuset, pids) would make it a thread root, whose domain children
// refuse processes with EOPNOTSUPP. The root cgroup is exempt from the
// rule. So this is best effort, as in runc: the container still runs,
// only without the controllers its ancestors do not pass on. Whoever sets limits later reports
// the missing control files by name, which is a clearer error than one
// raised here for a limit nobody asked for.
//
// On a hybrid host the cgroup2 side has only the controllers no v1
// hierarchy took (often none), and this does little.
func enableControllers(dir string) {
	var chain []string // ancestors of dir on the cgroup2 hierarchy, root last
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.subtree_control")); err != nil {
			break
		}
		chain = append(chain, d)
		if d == "/" {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		if hasProcs(d) {
			continue
		}
		avail, err := readFile(filepath.Join(d, "cgroup.controllers"))
		if err != nil {
			return
		}
		on, err := readFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			return
		}
		enabled := strings.Fields(on)
		var want []string
		for _, c := range strings.Fields(avail) {
			if !slices.Contains(enabled, c) {
				want = append(want, "+"+c)
			}
		}
		if len(want) == 0 {
			continue
		}
		ctl := filepath.Join(d, "cgroup.subtree_control")
		if writeFile(ctl, strings.Join(want, " ")) == nil {
			continue
		}
		// One write is all or nothing; retry one by one so that a single
		// refusing controller does not take the others with it.
		for _, w := range want {
			_ = writeFile(ctl, w)
		}
	}
}

// hasProcs reports whether the non-root cgroup2 cgroup dir holds processes
// (or cannot be read). The root has no cgroup.type and may hold processes
// and pass on controllers at once.
func hasProcs(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "cgroup.type")); err != nil {
		return false
	}
	procs, err := readFile(filepath.Join(dir, "cgroup.procs"))
	return err != nil || strings.TrimSpace(procs) != ""
}

// unifiedReserved are cgroup2 core files that place, freeze or kill
// processes or reshape the tree. They are the Manager's own operations,
// not resources, and writing them from a config would bypass its
// invariants (a process moved out of the container, say).
var unifiedReserved = []string{
	"cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze",
	"cgroup.subtree_control", "cgroup.type", "cgroup.events",
	"cgroup.controllers",
}

// unified writes linux.resources.unified: cgroup2 file name -> value,
// written as given. A value of several lines (io.max for two devices) is
// written a line at a time, as cgroupfs takes one entry per write.
func (s *setter) unified(r *specs.LinuxResources) error {
	if len(r.Unified) == 0 {
		return nil
	}
	dir := s.m.paths[""]
	if dir == "" {
		return fmt.Errorf("set unified: unified resources need cgroup v2: %w", errors.ErrUnsupported)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Unified)) {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
		if !exists(dir, k) {
			return s.m.missingUnified(dir, k)
		}
		for _, line := range strings.Split(r.Unified[k], "\n") {
			if line == "" {
				continue
			}
			if err := setCtl(dir, k, line, "unified["+k+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkUnifiedKey accepts a plain file name of the cgroup directory: no
// path separator, no "." or "..", so that a config cannot reach another
// cgroup or the filesystem.
func checkUnifiedKey(k string) error {
	switch {
	case k == "" || k == "." || k == "..":
		return fmt.Errorf("set unified[%q]: not a file name", k)
	case strings.ContainsAny(k, "/\x00"):
		return fmt.Errorf("set unified[%q]: must be a file name, without \"/\"", k)
	case slices.Contains(unifiedReserved, k):
		return fmt.Errorf("set unified[%q]: not a resource; the runtime manages this file itself", k)
	}
	return nil
}

// missingUnified explains why a unified key has no file: its controller
// lives on a v1 hierarchy of this hybrid host, or is not enabled on
// cgroup2, or the kernel has no such file.
func (m *manager) missingUnified(dir, k string) error {
	ctrl, _, _ := strings.Cut(k, ".")
	if m.paths[ctrl] != "" {
		return fmt.Errorf("set unified[%q]: the %s controller is on a cgroup v1 hierarchy on this host, not on cgroup2: %w", k, ctrl, errors.ErrUnsupported)
	}
	if ctrl != "cgroup" && !slices.Contains(v2Controllers(dir), ctrl) {
		return fmt.Errorf("set unified[%q]: controller %q is not enabled for %s: %w", k, ctrl, dir, errors.ErrUnsupported)
	}
	return fmt.Errorf("set unified[%q]: no such file in %s: %w", k, dir, os.ErrNotExist)
}
