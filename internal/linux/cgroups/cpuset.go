package cgroups

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// fillCpuset gives dir and its ancestors on the v1 cpuset hierarchy the
// cpus and memory nodes of their nearest ancestor that has them.
//
// A new v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems,
// and the kernel refuses to attach a task to it (ENOSPC). A child may only
// hold a subset of its parent's set, so the values are filled top-down,
// each level copying its parent's. Levels that already have values are
// left alone: someone chose them. The walk stops at the first directory
// without the control files, which is just above the hierarchy's
// mountpoint, so no mount table is needed (this also works after Load).
// cgroup.clone_children would do the same at mkdir time, but only for
// directories created after it was set on their parent.
func fillCpuset(dir string) error {
	var chain []string // dir first, then its ancestors that are cpusets
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cpuset.cpus")); err != nil {
			break
		}
		chain = append(chain, d)
		if d == "/" {
			break
		}
	}
	if len(chain) == 0 {
		return fmt.Errorf("fill cpuset of %s: not a cpuset cgroup", dir)
	}
	for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
		// chain[len-1] is the topmost cpuset (the mount root, never empty).
		inherited := ""
		for i := len(chain) - 1; i >= 0; i-- {
			p := filepath.Join(chain[i], file)
			v, err := readFile(p)
			if err != nil {
				return fmt.Errorf("fill cpuset: %w", err)
			}
			if v != "" {
				inherited = v
				continue
			}
			if inherited == "" {
				return fmt.Errorf("fill cpuset: %s: no ancestor has a value", p)
			}
			if err := writeFile(p, inherited); err != nil {
				return fmt.Errorf("fill cpuset: %w", err)
			}
		}
	}
	return nil
}

func (s *setter) cpuset(r *specs.LinuxResources) error {
	if r.CPU == nil || (r.CPU.Cpus == "" && r.CPU.Mems == "") {
		return nil
	}
	// Same file names and list syntax ("0-3,7") on v1 and v2. A value
	// outside the parent's set is refused by the kernel (EINVAL).
	dir, _, ok := s.m.dirFor("cpuset", "cpuset")
	if !ok {
		return errNoController("cpu.cpus/cpu.mems", "cpuset")
	}
	if c := r.CPU.Cpus; c != "" {
		if err := setCtl(dir, "cpuset.cpus", c, "cpu.cpus"); err != nil {
			return err
		}
	}
	if m := r.CPU.Mems; m != "" {
		if err := setCtl(dir, "cpuset.mems", m, "cpu.mems"); err != nil {
			return err
		}
	}
	return nil
}
