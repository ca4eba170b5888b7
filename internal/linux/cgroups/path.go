package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrSystemdUnsupported means the systemd cgroup driver cannot be used.
// New returns it for systemd paths and the systemd flag, since the driver
// lives in package cgroups/systemd (whose New chooses the driver and
// wraps this error when systemd is not PID 1 or cannot be reached). It
// wraps errors.ErrUnsupported.
var ErrSystemdUnsupported = fmt.Errorf("systemd cgroup driver unavailable: %w", errors.ErrUnsupported)

// innerPath turns the spec's linux.cgroupsPath into a clean cgroup path,
// absolute (from a hierarchy's root) or relative (from the runtime's own
// cgroup), following runc's cgroupfs driver so that the same config.json
// lands in the same place under both runtimes:
//
//	"/a/b"  -> "/a/b" below the root of every hierarchy
//	"a/b"   -> "a/b" below the cgroup the runtime itself is in
//	""      -> "<containerID>", relative as above
//
// It rejects what runc silently clamps: a ".." that climbs above the
// starting point, and a path naming the starting point itself, because
// Destroy removes the whole subtree of what this returns.
func innerPath(cgroupsPath, containerID string) (string, error) {
	if strings.IndexByte(cgroupsPath, 0) >= 0 {
		return "", fmt.Errorf("cgroups path %q: contains NUL", cgroupsPath)
	}
	if isSystemdPath(cgroupsPath) {
		return "", fmt.Errorf("cgroups path %q: %w", cgroupsPath, ErrSystemdUnsupported)
	}
	p := cgroupsPath
	if p == "" {
		if containerID == "" || containerID == "." || containerID == ".." ||
			strings.ContainsAny(containerID, "/\x00") {
			return "", fmt.Errorf("cgroup name from container id %q: invalid id", containerID)
		}
		p = containerID
	}
	depth := 0
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if depth == 0 {
				return "", fmt.Errorf("cgroups path %q: escapes its hierarchy with \"..\"", cgroupsPath)
			}
			depth--
		default:
			depth++
		}
	}
	if depth == 0 {
		// "/", "." or "a/..": the hierarchy root or the runtime's own
		// cgroup, which a container must never own.
		return "", fmt.Errorf("cgroups path %q: names the root of the hierarchy", cgroupsPath)
	}
	return filepath.Clean(p), nil
}

// isSystemdPath reports whether p has the "slice:prefix:name" form the
// systemd driver takes (runc's --systemd-cgroup). The cgroupfs driver
// would take such a string as a plain relative directory name; rejecting
// it here keeps a config meant for systemd from silently landing in an
// odd cgroup. The slice is empty or ends in ".slice", as systemd requires.
func isSystemdPath(p string) bool {
	parts := strings.Split(p, ":")
	if len(parts) != 3 || strings.Contains(p, "/") {
		return false
	}
	return parts[0] == "" || strings.HasSuffix(parts[0], ".slice")
}

// resolvePaths computes the container's directory on every hierarchy of l
// for the clean inner path. own holds the runtime's cgroups as
// ProcessCgroups returns them; it is consulted only for a relative inner.
func resolvePaths(l Layout, inner string, own map[string]string) (map[string]string, error) {
	paths := map[string]string{}
	for _, h := range l.Hierarchies {
		dir, err := hierarchyDir(h, inner, own)
		if err != nil {
			return nil, err
		}
		if h.Unified {
			paths[""] = dir
			continue
		}
		for _, c := range h.Controllers {
			paths[c] = dir
		}
	}
	return paths, nil
}

func hierarchyDir(h Hierarchy, inner string, own map[string]string) (string, error) {
	if filepath.IsAbs(inner) {
		// Relative to what the mount shows as its root: in a container
		// without a cgroup namespace that is the container's subtree.
		return filepath.Join(h.Mountpoint, inner), nil
	}
	key := ""
	if !h.Unified {
		key = h.Controllers[0]
	}
	cg, ok := own[key]
	if !ok {
		return "", fmt.Errorf("resolve cgroup %q on %s: own cgroup of hierarchy %q not in /proc/self/cgroup", inner, h.Mountpoint, key)
	}
	if h.Unified {
		// cgroup2 forbids a cgroup with processes from passing domain
		// controllers to its children, and the runtime's own cgroup has
		// processes (the runtime), so start from its parent, as runc does.
		cg = filepath.Dir(cg)
	}
	rel, err := filepath.Rel(h.Root, cg)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("resolve cgroup %q on %s: own cgroup %s lies outside the mounted subtree %s", inner, h.Mountpoint, cg, h.Root)
	}
	return filepath.Join(h.Mountpoint, rel, inner), nil
}
