package cgroups

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// hugePagesDir lists the huge page sizes the kernel supports, one
// "hugepages-<N>kB" directory each. A variable so tests can point it at a
// fixture.
var hugePagesDir = "/sys/kernel/mm/hugepages"

// HugePageSizes returns the huge page sizes of the host as the hugetlb
// controller names them in its file names ("2MB", "1GB", "64KB"), sorted
// from small to large.
func HugePageSizes() ([]string, error) {
	ents, err := os.ReadDir(hugePagesDir)
	if err != nil {
		return nil, fmt.Errorf("list huge page sizes: %w", err)
	}
	var kbs []uint64
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		n, ok = strings.CutSuffix(n, "kB")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list huge page sizes: parse %s: %w", e.Name(), err)
		}
		kbs = append(kbs, kb)
	}
	slices.Sort(kbs)
	out := make([]string, len(kbs))
	for i, kb := range kbs {
		out[i] = hugePageName(kb)
	}
	return out, nil
}

// hugePageName formats a page size in KiB the way the kernel's hugetlb
// cgroup does (mm/hugetlb_cgroup.c, mem_fmt): whole GB, else whole MB,
// else KB, truncating.
func hugePageName(kb uint64) string {
	switch {
	case kb >= 1<<20:
		return strconv.FormatUint(kb>>20, 10) + "GB"
	case kb >= 1<<10:
		return strconv.FormatUint(kb>>10, 10) + "MB"
	}
	return strconv.FormatUint(kb, 10) + "KB"
}

func (s *setter) hugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	dir, unified, ok := s.m.dirFor("hugetlb", "hugetlb")
	if !ok {
		return errNoController("hugepageLimits", "hugetlb")
	}
	sizes, err := HugePageSizes()
	if err != nil {
		return fmt.Errorf("set hugepageLimits: %w", err)
	}
	limitSuffix := ".limit_in_bytes"
	if unified {
		limitSuffix = ".max"
	}
	for _, l := range r.HugepageLimits {
		if !slices.Contains(sizes, l.Pagesize) {
			return fmt.Errorf("set hugepageLimits: page size %q not supported by this host (it has %s)", l.Pagesize, strings.Join(sizes, ", "))
		}
		prefix := "hugetlb." + l.Pagesize
		v := strconv.FormatUint(l.Limit, 10)
		if err := setCtl(dir, prefix+limitSuffix, v, "hugepageLimits["+l.Pagesize+"]"); err != nil {
			return err
		}
		// The spec asks for reservation limits where the kernel has them
		// (Linux 5.7+): a fault limit alone lets mmap succeed and then
		// SIGBUS the process on first touch, a reservation limit makes
		// the mmap itself fail. runc writes both.
		if rsvd := prefix + ".rsvd" + limitSuffix; exists(dir, rsvd) {
			if err := setCtl(dir, rsvd, v, "hugepageLimits["+l.Pagesize+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}
