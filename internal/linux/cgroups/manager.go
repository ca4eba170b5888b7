package cgroups

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Manager is one container's cgroup: a directory on each hierarchy.
//
// The methods keep no state between calls beyond the directories, so a
// Manager rebuilt by Load acts exactly like the one New returned.
type Manager interface {
	// Apply creates the directories (parents included) and moves process
	// pid, with all its threads, into them. pid -1 only creates the
	// directories, for a caller that starts the process directly in the
	// cgroup (clone3 CLONE_INTO_CGROUP). On error some hierarchies may
	// already hold the process; the caller cleans up with Destroy.
	Apply(pid int) error
	// Pids lists the processes of the cgroup and its descendants, sorted.
	Pids() ([]int, error)
	// Freeze stops every process of the cgroup and waits until the kernel
	// reports the cgroup frozen; on timeout it thaws and fails.
	Freeze() error
	// Thaw resumes a frozen cgroup and waits until it is thawed.
	Thaw() error
	// Frozen reports whether the cgroup is frozen (a freeze in progress
	// counts as not frozen). Without a freezer it reports false.
	Frozen() (bool, error)
	// Signal sends sig to every process of the cgroup and its descendants,
	// with the cgroup frozen meanwhile so that a fork cannot escape.
	Signal(sig unix.Signal) error
	// Destroy removes the directories and everything below them. Absent
	// directories are not an error; a cgroup still holding processes is.
	Destroy() error
	// Paths returns a copy of the directories: v1 controller name (or
	// "name=<name>") -> directory, "" -> the cgroup2 directory.
	Paths() map[string]string
	// Exists reports whether the cgroup's primary directory (the one Pids
	// reads) exists.
	Exists() bool
	// Set applies the limits r sets, each on the hierarchy holding its
	// controller; nil fields are left alone, so it serves create and
	// update alike. It returns warnings for fields the host cannot honour
	// and that are safe to drop (the caller logs them), and an error for
	// the rest. See resources.go.
	Set(r *specs.LinuxResources) (warnings []string, err error)
	// Stats samples the cgroup's usage in the shape of runc's
	// `events --stats` data.
	Stats() (*Stats, error)
	// OOMEvents watches for the cgroup running out of memory: one value
	// per OOM notification, the channel closed when the watch ends. The
	// caller must call stop. See oom.go.
	OOMEvents() (events <-chan struct{}, stop func(), err error)
}

// New returns the Manager for a container, without touching the cgroup
// filesystems. cgroupsPath is the spec's linux.cgroupsPath, read as runc's
// cgroupfs driver reads it: "/a/b" is below the root of every hierarchy;
// "a/b" is below the cgroup the runtime itself is in (on cgroup2, below
// that cgroup's parent); "" means the relative path "<containerID>". A
// path that climbs out with "..", names the starting cgroup itself or
// contains NUL is rejected. systemd, or a "slice:prefix:name" path, asks
// for the systemd driver, which package cgroups/systemd provides (its New
// chooses between the two): here they fail with ErrSystemdUnsupported.
func New(cgroupsPath, containerID string, systemd bool) (Manager, error) {
	if systemd {
		return nil, fmt.Errorf("cgroup manager for %q: use package cgroups/systemd: %w", containerID, ErrSystemdUnsupported)
	}
	inner, err := innerPath(cgroupsPath, containerID)
	if err != nil {
		return nil, err
	}
	l, err := Detect()
	if err != nil {
		return nil, err
	}
	var own map[string]string
	if !filepath.IsAbs(inner) {
		if own, err = ProcessCgroups(0); err != nil {
			return nil, err
		}
	}
	paths, err := resolvePaths(l, inner, own)
	if err != nil {
		return nil, err
	}
	return &manager{paths: paths}, nil
}

// Load rebuilds a Manager from the map Paths returned, as the runtime
// stores it in state.json.
func Load(paths map[string]string) Manager {
	return &manager{paths: maps.Clone(paths)}
}

// manager is the cgroupfs driver: it writes the cgroup filesystems itself.
type manager struct {
	paths map[string]string
}

func (m *manager) Paths() map[string]string { return maps.Clone(m.paths) }

// dirs returns each distinct directory once (co-mounted controllers share
// one), sorted so that operations run in a repeatable order.
func (m *manager) dirs() []string {
	var out []string
	for _, d := range m.paths {
		if d != "" {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// primary is the directory that stands for the whole cgroup when one is
// enough: every hierarchy holds the same processes. A v1 hierarchy is
// preferred on hybrid hosts because the processes were placed there by the
// same Apply and v1 is where the controllers live; among v1 ones, those a
// container always has come first.
func (m *manager) primary() string {
	for _, k := range []string{"pids", "freezer", "memory", "devices", "cpu", "name=systemd"} {
		if d := m.paths[k]; d != "" {
			return d
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.paths)) {
		if k != "" && m.paths[k] != "" {
			return m.paths[k]
		}
	}
	return m.paths[""]
}

func (m *manager) Exists() bool {
	d := m.primary()
	if d == "" {
		return false
	}
	fi, err := os.Stat(d)
	return err == nil && fi.IsDir()
}

func (m *manager) Apply(pid int) error {
	if pid <= 0 && pid != -1 {
		// Writing 0 to cgroup.procs would move the runtime itself.
		return fmt.Errorf("apply cgroup: invalid pid %d", pid)
	}
	for _, d := range m.dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	if d := m.paths["cpuset"]; d != "" {
		// Only v1 has the "cpuset" key; a cgroup2 cpuset with empty
		// values inherits its parent's and needs no copy.
		if err := fillCpuset(d); err != nil {
			return err
		}
	}
	if d := m.paths[""]; d != "" {
		enableControllers(d)
	}
	if pid == -1 {
		return nil
	}
	for _, d := range m.dirs() {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), fmt.Sprint(pid)); err != nil {
			return fmt.Errorf("apply pid %d: %w", pid, err)
		}
	}
	return nil
}

func (m *manager) Pids() ([]int, error) {
	d := m.primary()
	if d == "" {
		return nil, fmt.Errorf("list cgroup pids: no cgroup directories")
	}
	var pids []int
	err := walkDirs(d, func(dir string) error {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			var p int
			if _, err := fmt.Sscan(f, &p); err != nil {
				return fmt.Errorf("parse %s: %w", filepath.Join(dir, "cgroup.procs"), err)
			}
			pids = append(pids, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list cgroup pids: %w", err)
	}
	slices.Sort(pids)
	// A process moving between two cgroups of the subtree while they are
	// read can show up in both.
	return slices.Compact(pids), nil
}

// walkDirs calls fn for dir and every directory below it, parents first.
func walkDirs(dir string, fn func(string) error) error {
	if err := fn(dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := walkDirs(filepath.Join(dir, e.Name()), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFile writes one value to an existing cgroup control file in a
// single write(2), which is how cgroupfs takes a value. It never creates
// the file: a missing control file means a missing controller.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
