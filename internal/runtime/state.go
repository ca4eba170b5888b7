package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Status is the lifecycle position of a container, as the OCI spec names it.
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// stored is what state.json holds.
type stored struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	InitPid     int               `json:"initPid"`
	InitStart   uint64            `json:"initStartTime"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Spec        *specs.Spec       `json:"spec"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// SystemdUnit is the scope or slice of the systemd cgroup driver.
	SystemdUnit string `json:"systemdUnit,omitempty"`
	// Stopped is set once the runtime has seen the init exit, so a pid that
	// is later reused by another process is never mistaken for it.
	Stopped bool `json:"stopped,omitempty"`
}

// Container is a handle on one container's state directory, locked while
// open.
type Container struct {
	root  string // --root
	dir   string
	lock  *os.File
	st    stored
	stamp stateStamp // state.json as this handle last read or wrote it
	// specJSON is the spec as JSON, when the creator had it (see
	// CreateOptions.SpecJSON) or state.json was read; st.Spec is nil until
	// something needs the decoded spec (spec), since decoding it is a real
	// part of a short command's time, and start, delete and state need
	// only its hooks and annotations (meta). Whoever changes st.Spec
	// clears specJSON.
	specJSON []byte
	meta     *specMeta
}

// specMeta is the part of the spec that start, delete, state and hooks need.
type specMeta struct {
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// storedJSON is stored with the spec already encoded.
type storedJSON struct {
	stored
	Spec json.RawMessage `json:"spec"`
}

// stateStamp identifies one version of state.json: every write is a new
// file renamed into place, so a new inode (or size, or time) means another
// write.
type stateStamp struct {
	ino   uint64
	size  int64
	mtime unix.Timespec
}

func stampOf(st *unix.Stat_t) stateStamp {
	return stateStamp{ino: st.Ino, size: st.Size, mtime: st.Mtim}
}

// ValidateID refuses ids that are not one safe path component.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: container id is empty", ErrInvalid)
	}
	if id == "." || id == ".." || !idChars(id) || len(id) > 1024 {
		return fmt.Errorf("%w: invalid container id %q (allowed: letters, digits, _ + - .)", ErrInvalid, id)
	}
	return nil
}

// idChars reports whether id has only letters, digits and _ + - . (a
// loop, not a regexp: compiling one at start-up costs every runtime
// process most of a millisecond).
func idChars(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '+' || c == '-' || c == '.':
		default:
			return false
		}
	}
	return true
}

// lockDir takes an exclusive flock on the container's directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, os.NewSyscallError("flock", err))
	}
	return f, nil
}

// Load opens and locks an existing container. Close releases it.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	lock, err := lockDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
	}
	if err != nil {
		return nil, err
	}
	c := &Container{root: root, dir: dir, lock: lock}
	if err := c.read(false); err != nil {
		lock.Close()
		return nil, err
	}
	return c, nil
}

// read reads state.json into c; with ifChanged, only when it is not the
// version c already holds.
func (c *Container) read(ifChanged bool) error {
	id := filepath.Base(c.dir)
	f, err := os.Open(filepath.Join(c.dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		// Deleted while we waited for the lock, or a create in progress
		// that has not written its state yet.
		return fmt.Errorf("%w: %s", ErrNotExist, id)
	}
	if err != nil {
		return fmt.Errorf("read state of %s: %w", id, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("read state of %s: %w", id, os.NewSyscallError("fstat", err))
	}
	if ifChanged && stampOf(&st) == c.stamp {
		return nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read state of %s: %w", id, err)
	}
	var fresh storedJSON
	if err := json.Unmarshal(data, &fresh); err != nil {
		return fmt.Errorf("decode state of %s: %w", id, err)
	}
	if len(fresh.Spec) == 0 || string(fresh.Spec) == "null" {
		return fmt.Errorf("decode state of %s: no spec", id)
	}
	c.st, c.specJSON, c.meta, c.stamp = fresh.stored, fresh.Spec, nil, stampOf(&st)
	return nil
}

// spec returns the container's spec, decoding it on first use.
func (c *Container) spec() (*specs.Spec, error) {
	if c.st.Spec == nil {
		var s specs.Spec
		if err := json.Unmarshal(c.specJSON, &s); err != nil {
			return nil, fmt.Errorf("decode spec in the state of %s: %w", c.st.ID, err)
		}
		c.st.Spec = &s
	}
	return c.st.Spec, nil
}

// specMeta returns the spec's hooks and annotations, decoding only those
// when the spec itself was not needed yet. A spec that does not decode
// has none (spec reports the error where the whole spec is needed).
func (c *Container) specMeta() *specMeta {
	switch {
	case c.st.Spec != nil:
		return &specMeta{Hooks: c.st.Spec.Hooks, Annotations: c.st.Spec.Annotations}
	case c.meta == nil:
		c.meta = &specMeta{}
		json.Unmarshal(c.specJSON, c.meta)
	}
	return c.meta
}

// Reload takes the lock of a container this process closed before and
// brings its state up to date: state.json is decoded again only when
// another process wrote it since this handle last read or wrote it (a
// caller that keeps the handle across steps, as berth-shim does between
// create, start and delete, so skips decoding the whole spec each time).
// Close releases it again.
func (c *Container) Reload() error {
	if c.lock != nil {
		return fmt.Errorf("reload %s: still locked", c.st.ID)
	}
	lock, err := lockDir(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotExist, filepath.Base(c.dir))
	}
	if err != nil {
		return err
	}
	if err := c.read(true); err != nil {
		lock.Close()
		return err
	}
	c.lock = lock
	return nil
}

// Close releases the container's lock.
func (c *Container) Close() error {
	if c.lock == nil {
		return nil
	}
	err := c.lock.Close()
	c.lock = nil
	return err
}

// ID returns the container's id.
func (c *Container) ID() string { return c.st.ID }

// Spec returns the configuration the container was created with.
func (c *Container) Spec() (*specs.Spec, error) { return c.spec() }

// Pid returns the host pid of the container's init.
func (c *Container) Pid() int { return c.st.InitPid }

// save writes state.json atomically.
func (c *Container) save() error {
	var v any = &c.st
	if c.specJSON != nil {
		st := c.st
		st.Spec = nil // what specJSON holds
		v = &storedJSON{stored: st, Spec: c.specJSON}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	path := filepath.Join(c.dir, stateFile)
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return err
	}
	// Writers hold the lock, so this is the file just renamed into place.
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		c.stamp = stateStamp{}
	} else {
		c.stamp = stampOf(&st)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so readers see the old or the new file, never half. There
// is no fsync: what the files under --root describe (live processes) does
// not survive a crash either, and on a --root that is not a tmpfs a sync
// is a flush of the disk per container.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}

// procStat returns the start time (field 22) and state (field 3) of pid.
func procStat(pid int) (start uint64, state byte, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may contain spaces and parentheses: the
	// fields after it start after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return start, fields[0][0], nil
}

// initAlive reports whether the recorded init still exists (and is not a
// zombie).
func (c *Container) initAlive() bool {
	if c.st.InitPid <= 0 || c.st.Stopped {
		return false
	}
	start, state, err := procStat(c.st.InitPid)
	if err != nil || start != c.st.InitStart {
		return false
	}
	return state != 'Z' && state != 'X'
}

// Status derives the container's status from the kernel.
func (c *Container) Status() Status {
	if !c.initAlive() {
		return Stopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return Created
	}
	if m, err := c.cgroups(); err == nil {
		if frozen, err := m.Frozen(); err == nil && frozen {
			return Paused
		}
	}
	return Running
}

// State is the OCI state of the container, as `state` prints it, with the
// fields runc adds.
// The spec's fields come in runc's order (pid before status): scripts
// match list's lines.
type State struct {
	Version     string               `json:"ociVersion"`
	ID          string               `json:"id"`
	Pid         int                  `json:"pid,omitempty"`
	Status      specs.ContainerState `json:"status"`
	Bundle      string               `json:"bundle"`
	Rootfs      string               `json:"rootfs"`
	Created     time.Time            `json:"created"`
	Annotations map[string]string    `json:"annotations,omitempty"`
	Owner       string               `json:"owner"`
}

// State returns the container's OCI state.
func (c *Container) State() *State {
	s := &State{
		Version:     specs.Version,
		ID:          c.st.ID,
		Status:      specs.ContainerState(c.Status()),
		Bundle:      c.st.Bundle,
		Annotations: c.specMeta().Annotations,
		Rootfs:      c.st.Rootfs,
		Created:     c.st.Created,
		Owner:       c.st.Owner,
	}
	if s.Status != specs.StateStopped {
		s.Pid = c.st.InitPid
	}
	return s
}

// hookState is the state hooks receive on stdin.
func (c *Container) hookState(status Status) *specs.State {
	s := &specs.State{
		Version:     specs.Version,
		ID:          c.st.ID,
		Status:      specs.ContainerState(status),
		Bundle:      c.st.Bundle,
		Annotations: c.specMeta().Annotations,
	}
	if status != Stopped {
		s.Pid = c.st.InitPid
	}
	return s
}

// List returns the states of every container under root.
func List(root string) ([]*State, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range entries {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		c, err := Load(root, e.Name())
		if err != nil {
			// Gone meanwhile, or still being created.
			continue
		}
		out = append(out, c.State())
		c.Close()
	}
	return out, nil
}

// Warm builds ahead of a create what a process's first create builds on
// its way: encoding/json's field lists and encoders for the spec and the
// state (hundreds of types, each built once per process). berth-shim's standby calls it while it waits for a
// container, off the container's way.
func Warm() {
	spec := &specs.Spec{}
	json.Marshal(&stored{Spec: spec})
}
