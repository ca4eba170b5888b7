package systemd

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// DefaultSlice is the slice a container's scope goes to when its
// cgroupsPath leaves the slice empty (and for an empty cgroupsPath), as
// in runc for a root runtime.
const DefaultSlice = "system.slice"

// DefaultPrefix is the scope prefix of an empty cgroupsPath:
// "system.slice:berth:<id>", as runc uses "system.slice:runc:<id>".
const DefaultPrefix = "berth"

// errInvalid marks a cgroupsPath the driver cannot use.
var errInvalid = errors.New("invalid systemd cgroups path")

// unit is a parsed "slice:prefix:name" cgroupsPath.
type unit struct {
	// Slice is the parent slice unit ("system.slice"); Name the unit to
	// start: "<prefix>-<name>.scope", "<name>.scope", or "<name>" when
	// that ends in ".slice".
	Slice, Name string
	// Cgroup is where systemd puts the unit, from the root of every
	// hierarchy: "/system.slice/berth-abc.scope".
	Cgroup string
}

// IsSlice reports whether the unit is a slice rather than a scope.
func (u unit) IsSlice() bool { return strings.HasSuffix(u.Name, ".slice") }

// isSystemdPath reports whether p has the "slice:prefix:name" form of
// runc's --systemd-cgroup: three fields, no "/", the slice empty or a
// slice unit. It agrees with the cgroups package, which refuses exactly
// these paths so that they never land in an odd cgroupfs directory.
func isSystemdPath(p string) bool {
	parts := strings.Split(p, ":")
	if len(parts) != 3 || strings.Contains(p, "/") {
		return false
	}
	return parts[0] == "" || strings.HasSuffix(parts[0], ".slice")
}

// parseUnit reads a cgroupsPath the way runc's systemd driver does:
//
//	"system.slice:berth:abc" -> berth-abc.scope in system.slice
//	":berth:abc"             -> the same: an empty slice is system.slice
//	"a-b.slice::abc"         -> abc.scope in a-b.slice (a.slice/a-b.slice)
//	"a.slice:x:a-pod.slice"  -> the slice a-pod.slice, nested in a.slice
//	""                       -> "system.slice:berth:<containerID>"
//
// runc names a scope with an empty prefix "-<name>.scope"; berth drops the
// dash. A slice unit's place is fixed by its name (systemd nests "a-b"
// in "a"), so its name must extend the parent's, or systemd would put it
// elsewhere than asked.
func parseUnit(cgroupsPath, containerID string) (unit, error) {
	p := cgroupsPath
	if p == "" {
		p = DefaultSlice + ":" + DefaultPrefix + ":" + containerID
	}
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return unit{}, fmt.Errorf("cgroups path %q: want \"slice:prefix:name\" for the systemd driver: %w", cgroupsPath, errInvalid)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = DefaultSlice
	}
	sliceDir, err := expandSlice(slice)
	if err != nil {
		return unit{}, fmt.Errorf("cgroups path %q: %w", cgroupsPath, err)
	}
	if name == "" {
		return unit{}, fmt.Errorf("cgroups path %q: empty name: %w", cgroupsPath, errInvalid)
	}
	u := unit{Slice: slice}
	if strings.HasSuffix(name, ".slice") {
		if name == "-.slice" {
			return unit{}, fmt.Errorf("cgroups path %q: the root slice cannot be a container's unit: %w", cgroupsPath, errInvalid)
		}
		u.Name = name
		dir, err := expandSlice(name)
		if err != nil {
			return unit{}, fmt.Errorf("cgroups path %q: %w", cgroupsPath, err)
		}
		if path.Dir(dir) != sliceDir {
			return unit{}, fmt.Errorf("cgroups path %q: systemd puts slice %s in %s, not in %s (a slice's name fixes its parent): %w",
				cgroupsPath, name, path.Dir(dir), sliceDir, errInvalid)
		}
		u.Cgroup = dir
	} else {
		u.Name = name + ".scope"
		if prefix != "" {
			u.Name = prefix + "-" + u.Name
		}
		u.Cgroup = path.Join(sliceDir, u.Name)
	}
	if err := checkUnitName(u.Name); err != nil {
		return unit{}, fmt.Errorf("cgroups path %q: %w", cgroupsPath, err)
	}
	return u, nil
}

// expandSlice returns the cgroup of a slice unit, which systemd derives
// from its name: each dash opens a level, so "a-b-c.slice" is
// "/a.slice/a-b.slice/a-b-c.slice", and "-.slice" is the root.
func expandSlice(slice string) (string, error) {
	base, ok := strings.CutSuffix(slice, ".slice")
	if !ok || strings.Contains(slice, "/") {
		return "", fmt.Errorf("slice %q: not a slice unit name (want NAME.slice): %w", slice, errInvalid)
	}
	if err := checkUnitName(slice); err != nil {
		return "", err
	}
	if base == "-" {
		return "/", nil
	}
	var b strings.Builder
	prefix := ""
	for _, comp := range strings.Split(base, "-") {
		// "a--b", "-a" and "a-" name no valid parent.
		if comp == "" {
			return "", fmt.Errorf("slice %q: empty component between dashes: %w", slice, errInvalid)
		}
		b.WriteString("/" + prefix + comp + ".slice")
		prefix += comp + "-"
	}
	return b.String(), nil
}

// checkUnitName applies systemd's rules for unit names (unit_name_is_valid
// in systemd's unit-name.c): at most 255 bytes, ASCII letters, digits and
// ":-_.\@" only. "@" makes a template instance, which a transient unit
// cannot be, so it is refused here too.
func checkUnitName(n string) error {
	if len(n) > 255 {
		return fmt.Errorf("unit name %q: longer than 255 bytes: %w", n, errInvalid)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ':' || c == '-' || c == '_' || c == '.' || c == '\\':
		default:
			return fmt.Errorf("unit name %q: character %q is not allowed in systemd unit names: %w", n, c, errInvalid)
		}
	}
	return nil
}
