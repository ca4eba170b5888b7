package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/linux/cgroups"
)

// New returns the cgroup Manager for a container and chooses the driver:
// systemd's when useSystemd is set (the runtime's --systemd-cgroup) or
// cgroupsPath has the "slice:prefix:name" form, cgroups.New (cgroupfs)
// otherwise. It touches neither systemd nor the cgroup filesystems.
//
// With the systemd driver, cgroupsPath is read as runc reads it (see
// parseUnit): "system.slice:berth:abc" is the scope berth-abc.scope in
// system.slice, "" is "system.slice:berth:<containerID>". When systemd is
// not PID 1, or its D-Bus sockets are absent, New fails with an error
// wrapping cgroups.ErrSystemdUnsupported that says which.
func New(cgroupsPath, containerID string, useSystemd bool) (cgroups.Manager, error) {
	if !useSystemd && !isSystemdPath(cgroupsPath) {
		return cgroups.New(cgroupsPath, containerID, false)
	}
	u, err := parseUnit(cgroupsPath, containerID)
	if err != nil {
		return nil, fmt.Errorf("cgroup manager for %q: %w", containerID, err)
	}
	if err := errNotBooted(); err != nil {
		return nil, fmt.Errorf("cgroup manager for %q: %w", containerID, err)
	}
	l, err := cgroups.Detect()
	if err != nil {
		return nil, err
	}
	paths, err := pathsFor(l, u.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("cgroup manager for %q: %w", containerID, err)
	}
	m := newManager(u.Name, paths)
	m.slice, m.cgroup = u.Slice, u.Cgroup
	m.description = "berth container " + containerID
	return m, nil
}

// Load rebuilds a Manager from what the runtime stored: the unit name
// UnitName returned after create (empty for a cgroupfs container, which
// gets cgroups.Load) and the Paths map.
//
// The loaded Manager's Apply joins the running unit instead of starting
// it (exec); Set and Destroy speak to systemd as New's does.
func Load(unit string, paths map[string]string) cgroups.Manager {
	if unit == "" {
		return cgroups.Load(paths)
	}
	m := newManager(unit, paths)
	m.loaded = true
	return m
}

// UnitName returns the systemd unit of a Manager from New or Load
// ("berth-abc.scope"), "" for a cgroupfs Manager. The runtime stores it
// beside Paths, for Load.
func UnitName(m cgroups.Manager) string {
	if sm, ok := m.(*manager); ok {
		return sm.unit
	}
	return ""
}

// manager is the systemd driver: systemd owns the unit and its cgroup,
// and a cgroupfs Manager on the unit's directories does everything that
// is not the unit's life (processes, freezing, signals, stats, the files
// systemd has no property for).
type manager struct {
	unit   string
	fs     cgroups.Manager
	paths  map[string]string
	loaded bool // from Load: Apply joins the unit

	// From New only: where the unit goes.
	slice, cgroup, description string

	dial        func() (bus, error)
	procDevices func() (io.ReadCloser, error)
}

func newManager(unit string, paths map[string]string) *manager {
	return &manager{
		unit: unit, fs: cgroups.Load(paths), paths: maps.Clone(paths),
		dial: dialBus, procDevices: openProcDevices,
	}
}

func (m *manager) isSlice() bool { return strings.HasSuffix(m.unit, ".slice") }

// unified reports whether the container has no v1 directory.
func (m *manager) unified() bool {
	for k := range m.paths {
		if k != "" {
			return false
		}
	}
	return true
}

func (m *manager) setPaths(p map[string]string) {
	m.paths = maps.Clone(p)
	m.fs = cgroups.Load(p)
}

// pathsFor returns the directories of cgroup cg (from the root of
// systemd's hierarchy) on every mounted hierarchy, keyed as
// cgroups.Manager.Paths keys them. systemd creates the unit's directory
// on the hierarchies it manages; Apply creates the others.
func pathsFor(l cgroups.Layout, cg string) (map[string]string, error) {
	paths := map[string]string{}
	for _, h := range l.Hierarchies {
		rel := cg
		if h.Root != "/" {
			// A mount showing a subtree (a container without its own
			// cgroup namespace): systemd's path must lie inside it.
			r, ok := strings.CutPrefix(cg, h.Root+"/")
			if !ok {
				return nil, fmt.Errorf("cgroup %s of the unit lies outside %s, the subtree mounted on %s", cg, h.Root, h.Mountpoint)
			}
			rel = r
		}
		dir := filepath.Join(h.Mountpoint, rel)
		if h.Unified {
			paths[""] = dir
			continue
		}
		for _, c := range h.Controllers {
			paths[c] = dir
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("no cgroup hierarchy mounted")
	}
	return paths, nil
}

func (m *manager) Paths() map[string]string     { return m.fs.Paths() }
func (m *manager) Exists() bool                 { return m.fs.Exists() }
func (m *manager) Pids() ([]int, error)         { return m.fs.Pids() }
func (m *manager) Freeze() error                { return m.fs.Freeze() }
func (m *manager) Thaw() error                  { return m.fs.Thaw() }
func (m *manager) Frozen() (bool, error)        { return m.fs.Frozen() }
func (m *manager) Signal(sig unix.Signal) error { return m.fs.Signal(sig) }
func (m *manager) Stats() (*cgroups.Stats, error) {
	return m.fs.Stats()
}
func (m *manager) OOMEvents() (<-chan struct{}, func(), error) { return m.fs.OOMEvents() }

// Apply starts the unit with process pid in it and waits until systemd
// reports it started: a scope in its slice, delegated (Delegate=yes: the
// cgroup below the unit is the runtime's to write), without default
// dependencies (a container must not be stopped with the services at
// shutdown ordering, nor wait for them). Then it places pid on the
// hierarchies systemd leaves alone (v1 controllers it does not manage,
// as freezer or net_cls), which the cgroupfs Manager does.
//
// A scope cannot start empty, so pid -1 is refused for scopes; a slice
// starts without processes and pid, when given, is written into it, as
// systemd takes no PIDs for slices. A unit of the same name that exists
// and has failed (an OOM-killed container never deleted) is reset and
// the start retried once; a live one is an error wrapping os.ErrExist:
// two containers never share a unit.
//
// A Manager from Load joins the running unit instead: pid goes into the
// unit's directories through cgroupfs (exec).
//
// Postconditions: Paths are the unit's directories as systemd reports
// them (its ControlGroup), which the runtime must store after Apply.
func (m *manager) Apply(pid int) error {
	if pid <= 0 && pid != -1 {
		return fmt.Errorf("apply cgroup: invalid pid %d", pid)
	}
	if m.loaded {
		if pid == -1 {
			return nil
		}
		return m.place(pid)
	}
	if pid == -1 && !m.isSlice() {
		return fmt.Errorf("apply cgroup: systemd starts a scope with its first process, and pid -1 has none: %w", errors.ErrUnsupported)
	}
	b, err := m.dial()
	if err != nil {
		return fmt.Errorf("apply cgroup: %w", err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()

	props := m.startProperties(pid)
	err = b.StartTransientUnit(ctx, m.unit, props)
	if dbusErrorName(err) == errUnitExists {
		// A failed unit stays loaded until reset; a live one stays.
		_ = b.ResetFailedUnit(ctx, m.unit)
		err = b.StartTransientUnit(ctx, m.unit, props)
		if dbusErrorName(err) == errUnitExists {
			return fmt.Errorf("apply cgroup: start systemd unit %s: it exists already and is not failed (another container's?): %w", m.unit, os.ErrExist)
		}
	}
	if err != nil {
		return fmt.Errorf("apply cgroup: start systemd unit %s: %w", m.unit, err)
	}
	if cg, err := b.ControlGroup(ctx, m.unit); err == nil && cg != "" && cg != m.cgroup {
		// Not where New computed (systemd runs in another cgroup
		// namespace, say): trust systemd.
		l, err := cgroups.Detect()
		if err != nil {
			return fmt.Errorf("apply cgroup: %w", err)
		}
		p, err := pathsFor(l, cg)
		if err != nil {
			return fmt.Errorf("apply cgroup: unit %s: %w", m.unit, err)
		}
		m.setPaths(p)
		m.cgroup = cg
	}
	if !m.isSlice() && m.unified() {
		// systemd placed the process; only the controllers it does not
		// know remain to be passed down.
		enableUnmanaged(m.paths[""])
		return nil
	}
	return m.place(pid)
}

// startProperties are the unit's properties at StartTransientUnit. The
// limits come later, in Set, which serves update as well.
func (m *manager) startProperties(pid int) []sd.Property {
	props := []sd.Property{
		sd.PropDescription(m.description),
		prop("DefaultDependencies", false),
	}
	if m.isSlice() {
		// A slice's parent follows from its name; Wants= only makes
		// sure it is started.
		return append(props, sd.PropWants(m.slice))
	}
	return append(props,
		sd.PropSlice(m.slice),
		prop("Delegate", true),
		sd.PropPids(uint32(pid)),
	)
}

// place puts pid into the unit's directories through cgroupfs. On v1
// that also creates the directories of the controllers systemd does not
// manage (and fills a v1 cpuset); on cgroup2 the directory is systemd's
// and only cgroup.procs is written, so that the ancestors' subtree_control,
// which systemd manages, is not rewritten by the cgroupfs Manager's Apply.
func (m *manager) place(pid int) error {
	if !m.unified() {
		return m.fs.Apply(pid)
	}
	dir := m.paths[""]
	if pid != -1 {
		if err := writeCtl(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("apply pid %d: %w", pid, err)
		}
	}
	enableUnmanaged(dir)
	return nil
}

// unmanaged are the cgroup2 controllers systemd does not know: it never
// enables them for a unit, and leaves them alone in the subtree_control
// it rewrites. hugetlb limits need them passed down to the container.
var unmanaged = []string{"hugetlb", "rdma", "misc"}

// enableUnmanaged enables the unmanaged controllers the hierarchy has on
// dir's ancestors, top down, so that dir gets them. Best effort, like
// the cgroupfs Manager's own enabling: Set reports a controller still
// missing when a limit needs it.
func enableUnmanaged(dir string) {
	var chain []string
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
		avail, err := os.ReadFile(filepath.Join(d, "cgroup.controllers"))
		if err != nil {
			return
		}
		on, err := os.ReadFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			return
		}
		for _, c := range unmanaged {
			if slices.Contains(strings.Fields(string(avail)), c) && !slices.Contains(strings.Fields(string(on)), c) {
				_ = writeCtl(filepath.Join(d, "cgroup.subtree_control"), "+"+c)
			}
		}
	}
}

// Set tells systemd the limits it has properties for (SetUnitProperties,
// for this boot only), then has the cgroupfs Manager write every limit,
// so that the files hold the spec's exact values and systemd would
// re-apply nearly the same (see properties.go). It returns the warnings
// of both.
//
// memory.checkBeforeUpdate must compare the usage with a limit before
// the limit is in force, and systemd applies MemoryMax as it gets it, so
// with that flag the memory fields go to cgroupfs first.
//
// On cgroup v1 a change of device rules makes systemd rewrite
// devices.deny "a" and then the allowed list; the container is frozen
// meanwhile, as runc does, so that none of its opens falls in between.
func (m *manager) Set(r *specs.LinuxResources) ([]string, error) {
	if r == nil {
		return nil, nil
	}
	// systemd would take a negative memory value for "infinity", and a
	// refused update must leave the container's limits as they were.
	if err := cgroups.CheckMemory(r.Memory); err != nil {
		return nil, err
	}
	var warnings []string
	rest := r
	if r.Memory != nil && r.Memory.CheckBeforeUpdate != nil && *r.Memory.CheckBeforeUpdate {
		w, err := m.fs.Set(&specs.LinuxResources{Memory: r.Memory})
		warnings = append(warnings, w...)
		if err != nil {
			return warnings, err
		}
		cp := *r
		cp.Memory = nil
		rest = &cp
	}
	props, w, err := resourceProperties(r, newHostSides(m.paths), readCtl(m.paths), m.procDevices)
	warnings = append(warnings, w...)
	if err != nil {
		return warnings, err
	}
	if len(props) > 0 {
		w, err := m.setProperties(props, len(r.Devices) > 0 && m.paths["devices"] != "")
		warnings = append(warnings, w...)
		if err != nil {
			return warnings, err
		}
	}
	w, err = m.fs.Set(rest)
	return append(warnings, w...), err
}

// setProperties sends props in one call. A systemd too old for one of
// them refuses the whole call; then they go one by one, and those it does
// not know are skipped with a warning: the cgroupfs write still sets the
// limit, which only a daemon-reload could lose.
func (m *manager) setProperties(props []sd.Property, freeze bool) ([]string, error) {
	b, err := m.dial()
	if err != nil {
		return nil, fmt.Errorf("set unit properties: %w", err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	if freeze {
		if frozen, err := m.fs.Frozen(); err == nil && !frozen {
			if m.fs.Freeze() == nil {
				defer m.fs.Thaw()
			}
		}
	}
	err = b.SetUnitProperties(ctx, m.unit, props)
	if err == nil {
		return nil, nil
	}
	if !isUnknownProperty(err) {
		return nil, fmt.Errorf("set properties %s of systemd unit %s: %w", propNames(props), m.unit, err)
	}
	var warnings []string
	for _, p := range props {
		err := b.SetUnitProperties(ctx, m.unit, []sd.Property{p})
		switch {
		case err == nil:
		case isUnknownProperty(err):
			warnings = append(warnings, fmt.Sprintf("systemd does not take property %s (%v): the limit is set on cgroupfs only, and a daemon-reload may undo it", p.Name, err))
		default:
			return warnings, fmt.Errorf("set property %s of systemd unit %s: %w", p.Name, m.unit, err)
		}
	}
	return warnings, nil
}

// Destroy stops the unit, waits for systemd to finish, clears a failed
// state so that the name can be used again, and removes what is left of
// the directories (those on the hierarchies systemd does not manage).
//
// Like the cgroupfs Destroy it kills nothing: stopping a unit makes
// systemd SIGTERM what is still in it, so a cgroup that keeps processes
// (after the half second a killed process may take to go) is an error
// wrapping EBUSY, and the unit is left running. Without systemd (it
// stopped, or the host rebooted into another init) its units are gone
// and only the directories remain to remove.
func (m *manager) Destroy() error {
	if err := m.waitEmpty(); err != nil {
		return err
	}
	if b, err := m.dial(); err == nil {
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		defer cancel()
		if err := b.StopUnit(ctx, m.unit); err != nil && !isGone(err) {
			return fmt.Errorf("destroy cgroup: stop systemd unit %s: %w", m.unit, err)
		}
		// Nothing to reset is the usual case.
		_ = b.ResetFailedUnit(ctx, m.unit)
	}
	return m.fs.Destroy()
}

// waitEmpty waits up to about half a second for the cgroup to hold no
// process. A cgroup already gone is empty.
func (m *manager) waitEmpty() error {
	delay := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		pids, err := m.fs.Pids()
		if err != nil || len(pids) == 0 {
			return nil
		}
		if attempt == 7 {
			return fmt.Errorf("destroy cgroup: systemd unit %s still holds processes %v: %w", m.unit, pids, unix.EBUSY)
		}
		time.Sleep(delay)
		delay = min(2*delay, 160*time.Millisecond)
	}
}

// writeCtl writes one value to an existing control file in one write(2).
func writeCtl(path, value string) error {
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
