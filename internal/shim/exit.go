package shim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/linux/cgroups"
)

// Files in the state directory.
const (
	SocketFile = "shim.sock"
	PidFile    = "shim.pid"
	InitPid    = "init.pid"
	ExitFile   = "exit.json"
	LogFile    = "shim.log"
)

// ReadExit returns the init's exit as the shim recorded it in dir's
// exit.json; an error wrapping fs.ErrNotExist means the shim recorded none
// (the container has not exited, or the shim died first).
func ReadExit(dir string) (*Exit, error) {
	data, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if err != nil {
		return nil, fmt.Errorf("read exit status: %w", err)
	}
	var e Exit
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("read exit status %s: %w", filepath.Join(dir, ExitFile), err)
	}
	return &e, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced, then renamed: a reader sees the old file or the whole
// new one, also after a crash.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// oomCounter reads how many processes the kernel's OOM killer took in the
// container's memory cgroup: the oom_kill line of memory.events on
// cgroup2, of memory.oom_control on v1 (Linux 4.13 and later). The count
// at creation is the baseline: the cgroup may not be new (a cgroupsPath
// the engine reuses), and docker reports OOMKilled only for a kill in the
// container's own life.
type oomCounter struct {
	file string
	base uint64
}

// newOOMCounter finds the memory cgroup of process pid (the init, while it
// waits in `created`). It returns nil where there is none to watch.
func newOOMCounter(pid int) (*oomCounter, error) {
	procCgroups, err := cgroups.ProcessCgroups(pid)
	if err != nil {
		return nil, err
	}
	layout, err := cgroups.Detect()
	if err != nil {
		return nil, err
	}
	h, ok := layout.HierarchyOf("memory")
	if !ok {
		return nil, nil
	}
	key, file := "memory", "memory.oom_control"
	if h.Unified {
		key, file = "", "memory.events"
	}
	cg, ok := procCgroups[key]
	if !ok {
		return nil, nil
	}
	rel, err := filepath.Rel(h.Root, cg)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("memory cgroup %s is outside the hierarchy mounted at %s", cg, h.Mountpoint)
	}
	c := &oomCounter{file: filepath.Join(h.Mountpoint, rel, file)}
	if c.base, err = c.count(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *oomCounter) count() (uint64, error) {
	f, err := os.Open(c.file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no oom_kill line", c.file)
}

// killed tells whether the OOM killer acted since the baseline.
func (c *oomCounter) killed() bool {
	if c == nil {
		return false
	}
	n, err := c.count()
	return err == nil && n > c.base
}
