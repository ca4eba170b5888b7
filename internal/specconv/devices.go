package specconv

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules are docker's: deny everything, then allow zero,
// null, urandom, random, tty and console, and deny fuse explicitly. The
// runtime adds the devices every /dev needs after these (full, ptmx and
// the pty slaves, as runc does), so the container's effective list is
// SECURITY.md's.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	allow := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Minor: i64(minor), Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow(1, 5), allow(1, 3), allow(1, 9), allow(1, 8), allow(5, 0), allow(5, 1),
		{Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"},
	}
}

// devices returns the device nodes to create and the device cgroup rules:
// every host device and no restriction for privileged containers, else
// docker's list, then one rule per --device, then --device-cgroup-rule.
func devices(o *Options, h *Host) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	if o.Privileged {
		dir := h.DevDir
		if dir == "" {
			dir = "/dev"
		}
		devs, err := hostDevices(dir)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range o.Devices {
			// Custom permissions mean nothing when every device is allowed.
			ds, _, err := devicesFromPath(d.PathOnHost, d.PathInContainer, "rwm")
			if err != nil {
				return nil, nil, err
			}
			for _, nd := range ds {
				if !hasDevicePath(devs, nd.Path) {
					devs = append(devs, nd)
				}
			}
		}
		return devs, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, nil
	}
	rules := defaultDeviceRules()
	var devs []specs.LinuxDevice
	for _, d := range o.Devices {
		ds, rs, err := devicesFromPath(d.PathOnHost, d.PathInContainer, d.CgroupPermissions)
		if err != nil {
			return nil, nil, err
		}
		devs = append(devs, ds...)
		rules = append(rules, rs...)
	}
	for _, r := range o.DeviceCgroupRules {
		rule, err := parseCgroupRule(r)
		if err != nil {
			return nil, nil, err
		}
		rules = append(rules, rule)
	}
	return devs, rules, nil
}

func hasDevicePath(devs []specs.LinuxDevice, p string) bool {
	for _, d := range devs {
		if d.Path == p {
			return true
		}
	}
	return false
}

// devicesFromPath is one --device HOST[:CONTAINER[:PERMS]]: the device
// node at HOST (symlinks resolved, as /dev/disk/by-id names are), or every
// device node beneath HOST when it is a directory.
func devicesFromPath(host, container, perms string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	if perms == "" {
		perms = "rwm"
	}
	if !validAccess(perms) {
		return nil, nil, invalid("--device %s: invalid permissions %q: want a combination of r, w and m", host, perms)
	}
	if container == "" {
		container = host
	}
	if !path.IsAbs(host) || !path.IsAbs(container) || strings.ContainsRune(host+container, 0) {
		return nil, nil, invalid("--device %s:%s: paths must be absolute", host, container)
	}
	container = path.Clean(container)
	resolved, err := filepath.EvalSymlinks(host)
	if err != nil {
		return nil, nil, invalid("--device %s: %v", host, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(resolved, &st); err != nil {
		return nil, nil, invalid("--device %s: %v", host, &os.PathError{Op: "stat", Path: resolved, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		d, ok := deviceFromStat(container, &st)
		if !ok {
			return nil, nil, invalid("--device %s: not a device node", host)
		}
		return []specs.LinuxDevice{d}, []specs.LinuxDeviceCgroup{deviceRule(d, perms)}, nil
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	err = filepath.WalkDir(resolved, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		rel, _ := filepath.Rel(resolved, p)
		if d, ok := deviceFromStat(path.Join(container, filepath.ToSlash(rel)), &st); ok {
			devs = append(devs, d)
			rules = append(rules, deviceRule(d, perms))
		}
		return nil
	})
	if err != nil {
		return nil, nil, invalid("--device %s: %v", host, err)
	}
	if len(devs) == 0 {
		return nil, nil, invalid("--device %s: no device nodes in the directory", host)
	}
	return devs, rules, nil
}

func deviceFromStat(p string, st *unix.Stat_t) (specs.LinuxDevice, bool) {
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: p, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, true
}

func deviceRule(d specs.LinuxDevice, perms string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: perms}
}

func validAccess(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for i, c := range s {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(s[i+1:], c) {
			return false
		}
	}
	return true
}

// hostDevices lists every device node under dir for a privileged
// container, skipping what the runtime mounts itself (pts, shm, mqueue),
// the console (the runtime's to provide) and symlinks.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil // unplugged while we walked, or not ours to give
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			switch rel {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return fs.SkipDir
			}
			return nil
		}
		if rel == "console" || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		if d, ok := deviceFromStat("/dev/"+filepath.ToSlash(rel), &st); ok {
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parseCgroupRule parses a --device-cgroup-rule: "TYPE MAJOR:MINOR
// ACCESS" with TYPE a, b or c, numbers or "*", ACCESS of r, w and m.
func parseCgroupRule(s string) (specs.LinuxDeviceCgroup, error) {
	bad := invalid("invalid device cgroup rule format: '%s'", s)
	f := strings.Split(s, " ")
	if len(f) != 3 || (f[0] != "a" && f[0] != "b" && f[0] != "c") || !validAccess(f[2]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(v string) (*int64, bool) {
		if v == "*" {
			return i64(-1), true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt32 || strings.HasPrefix(v, "+") {
			return nil, false
		}
		return i64(n), true
	}
	major, ok1 := num(maj)
	minor, ok2 := num(min)
	if !ok1 || !ok2 {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: major, Minor: minor, Access: f[2]}, nil
}
