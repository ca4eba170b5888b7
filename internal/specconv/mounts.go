package specconv

import (
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/runtime/specgen"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultShmSize is docker's /dev/shm size.
const defaultShmSize = 64 << 20

// mountPlan is what mounts needs beyond Options.
type mountPlan struct {
	readonlyRoot   bool
	sysWritable    bool // privileged
	cgroupWritable bool
	init           bool // bind the engine's init
}

// mounts builds the spec's mounts as docker does: its default
// filesystems first (minus those a user mount replaces, everything under
// /dev when the user mounts /dev, and /dev/shm for --ipc none), then the
// user's binds and tmpfs mounts, parents before children.
func mounts(o *Options, p *mountPlan) ([]specs.Mount, string, error) {
	user, rootProp, err := userMounts(o)
	if err != nil {
		return nil, "", err
	}
	dests := map[string]bool{}
	for _, m := range user {
		dests[m.Destination] = true
	}
	shmSize := o.ShmSize
	if shmSize < 0 {
		return nil, "", invalid("--shm-size %d: cannot be negative", shmSize)
	}
	if shmSize == 0 {
		shmSize = defaultShmSize
	}

	var out []specs.Mount
	for _, m := range specgen.DefaultMounts() {
		if dests[m.Destination] || (dests["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		switch m.Destination {
		case "/dev/shm":
			if o.NoShm {
				continue
			}
			m.Options = append(slices.DeleteFunc(m.Options, func(s string) bool {
				return strings.HasPrefix(s, "size=")
			}), "size="+strconv.FormatInt(shmSize, 10))
		case "/sys":
			if p.sysWritable {
				m.Options = withoutRO(m.Options)
			}
		case "/sys/fs/cgroup":
			if p.cgroupWritable {
				m.Options = withoutRO(m.Options)
			}
		}
		// docker leaves these writable under --read-only: a process
		// needs a writable /dev/shm and ptys even in a read-only image.
		switch m.Destination {
		case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue":
		default:
			if p.readonlyRoot && !slices.Contains(m.Options, "ro") {
				m.Options = append(m.Options, "ro")
			}
		}
		out = append(out, m)
	}
	if p.init {
		if !dests[initPath] {
			if !path.IsAbs(o.InitPath) {
				return nil, "", invalid("--init: the engine's init binary %q is not an absolute path", o.InitPath)
			}
			out = append(out, specs.Mount{Destination: initPath, Type: "bind", Source: o.InitPath, Options: []string{"bind", "ro"}})
		}
	}
	out = append(out, user...)
	return out, rootProp, nil
}

func withoutRO(opts []string) []string {
	return slices.DeleteFunc(slices.Clone(opts), func(s string) bool { return s == "ro" })
}

// mountDepth orders mounts so that a parent is mounted before what is
// mounted inside it, as docker sorts them.
func mountDepth(dest string) int { return strings.Count(dest, "/") }

// userMounts turns --mount/-v binds, --tmpfs and the engine's /dev/shm
// bind into spec mounts, and returns the rootfs propagation that shared
// or slave binds need.
func userMounts(o *Options) ([]specs.Mount, string, error) {
	var out []specs.Mount
	seen := map[string]bool{}
	addDest := func(d string) (string, error) {
		if !path.IsAbs(d) || strings.ContainsRune(d, 0) {
			return "", invalid("mount destination %q is not an absolute path", d)
		}
		d = path.Clean(d)
		if d == "/" {
			return "", invalid("mount destination %q: cannot mount over /", d)
		}
		if seen[d] {
			return "", invalid("duplicate mount point: %s", d)
		}
		seen[d] = true
		return d, nil
	}

	rootProp := ""
	for _, m := range o.Mounts {
		d, err := addDest(m.Destination)
		if err != nil {
			return nil, "", err
		}
		if !path.IsAbs(m.Source) || strings.ContainsRune(m.Source, 0) {
			return nil, "", invalid("mount %s: source %q is not an absolute host path", d, m.Source)
		}
		prop := m.Propagation
		switch prop {
		case "":
			prop = "rprivate"
		case "private", "rprivate":
		case "shared", "rshared":
			// A shared bind propagates only if the rootfs mount is shared too.
			rootProp = "shared"
		case "slave", "rslave":
			if rootProp != "shared" {
				rootProp = "rslave"
			}
		default:
			return nil, "", invalid("mount %s: unknown propagation %q", d, m.Propagation)
		}
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts[0] = "bind"
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		opts = append(opts, prop)
		out = append(out, specs.Mount{Destination: d, Type: "bind", Source: path.Clean(m.Source), Options: opts})
	}

	tmpfsDests := make([]string, 0, len(o.Tmpfs))
	for d := range o.Tmpfs {
		tmpfsDests = append(tmpfsDests, d)
	}
	sort.Strings(tmpfsDests) // map order must not leak into the spec
	for _, raw := range tmpfsDests {
		d, err := addDest(raw)
		if err != nil {
			return nil, "", err
		}
		opts, err := tmpfsOptions(d, o.Tmpfs[raw])
		if err != nil {
			return nil, "", err
		}
		out = append(out, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}

	if o.ShmSource != "" && !o.NoShm {
		if !path.IsAbs(o.ShmSource) {
			return nil, "", invalid("shared /dev/shm source %q is not an absolute path", o.ShmSource)
		}
		if _, err := addDest("/dev/shm"); err != nil {
			return nil, "", err
		}
		out = append(out, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: o.ShmSource, Options: []string{"rbind", "rprivate"}})
	}

	sort.SliceStable(out, func(i, j int) bool {
		return mountDepth(out[i].Destination) < mountDepth(out[j].Destination)
	})
	return out, rootProp, nil
}

// tmpfsFlags are the flag options a tmpfs takes, keyed by the flag with
// the opposite meaning: a later option replaces an earlier one of its
// pair, so "exec" given by the user overrides docker's "noexec".
var tmpfsFlags = map[string]string{
	"ro": "rw", "rw": "ro",
	"exec": "noexec", "noexec": "exec",
	"suid": "nosuid", "nosuid": "suid",
	"dev": "nodev", "nodev": "dev",
	"atime": "noatime", "noatime": "atime",
	"diratime": "nodiratime", "nodiratime": "diratime",
	"relatime": "norelatime", "norelatime": "relatime",
	"strictatime": "nostrictatime", "nostrictatime": "strictatime",
	"sync": "async", "async": "sync",
	"dirsync":   "",
	"tmpcopyup": "notmpcopyup", "notmpcopyup": "tmpcopyup",
	"private": "", "rprivate": "", "shared": "", "rshared": "", "slave": "", "rslave": "",
	"unbindable": "", "runbindable": "",
	"inode64": "inode32", "inode32": "inode64", "noswap": "",
}

var propagationFlags = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}

// tmpfsData are the key=value options of tmpfs and how their values look.
var tmpfsData = map[string]func(string) bool{
	"size": isSize, "nr_blocks": isSize, "nr_inodes": isSize,
	"mode": isOctal,
	"uid":  isDecimal, "gid": isDecimal,
	"huge": func(v string) bool {
		return slices.Contains([]string{"never", "always", "within_size", "advise", "deny", "force"}, v)
	},
	"mpol": func(v string) bool { return v != "" && !strings.ContainsAny(v, ", \x00\n") },
}

// tmpfsOptions merges docker's noexec,nosuid,nodev,rprivate with the
// user's options for the tmpfs at dest; each option is checked so that
// nothing unknown reaches mount(2).
func tmpfsOptions(dest, raw string) ([]string, error) {
	opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if raw == "" {
		return opts, nil
	}
	for _, o := range strings.Split(raw, ",") {
		if k, v, ok := strings.Cut(o, "="); ok {
			check, known := tmpfsData[k]
			if !known || !check(v) {
				return nil, invalid("--tmpfs %s: invalid option %q", dest, o)
			}
			opts = slices.DeleteFunc(opts, func(s string) bool { return strings.HasPrefix(s, k+"=") })
			opts = append(opts, o)
			continue
		}
		opposite, known := tmpfsFlags[o]
		if !known {
			return nil, invalid("--tmpfs %s: unknown option %q", dest, o)
		}
		isProp := slices.Contains(propagationFlags, o)
		opts = slices.DeleteFunc(opts, func(s string) bool {
			return s == o || (opposite != "" && s == opposite) || (isProp && slices.Contains(propagationFlags, s))
		})
		opts = append(opts, o)
	}
	return opts, nil
}

// isSize accepts what tmpfs(5) does: a number with an optional k, m, g,
// t, p or e suffix, or a percentage (of RAM).
func isSize(v string) bool {
	if v == "" {
		return false
	}
	if strings.ContainsAny(v[len(v)-1:], "kKmMgGtTpPeE%") {
		v = v[:len(v)-1]
	}
	return isDecimal(v)
}

func isDecimal(v string) bool {
	_, err := strconv.ParseUint(v, 10, 64)
	return err == nil
}

func isOctal(v string) bool {
	n, err := strconv.ParseUint(v, 8, 32)
	return err == nil && n <= 0o7777
}
