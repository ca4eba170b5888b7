package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ProcessCgroups returns the cgroups of process pid from /proc/PID/cgroup,
// keyed like Manager.Paths: each v1 controller ("cpu", "cpuacct",
// "name=systemd") maps to its hierarchy's cgroup, "" to the cgroup2 one.
// Values are cgroup paths relative to the reader's cgroup namespace root,
// not filesystem paths. pid 0 means the calling process.
func ProcessCgroups(pid int) (map[string]string, error) {
	p := "/proc/self/cgroup"
	if pid != 0 {
		if pid < 0 {
			return nil, fmt.Errorf("read cgroups of pid %d: invalid pid", pid)
		}
		p = "/proc/" + strconv.Itoa(pid) + "/cgroup"
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read cgroups of pid %d: %w", pid, err)
	}
	defer f.Close()
	m, err := parseProcCgroup(f)
	if err != nil {
		return nil, fmt.Errorf("read cgroups of pid %d: %w", pid, err)
	}
	return m, nil
}

// parseProcCgroup parses the "hierarchy-ID:controller-list:cgroup-path"
// lines of /proc/PID/cgroup (cgroups(7)). The cgroup2 line is "0::/path".
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// The path is last and may itself contain ':'.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("parse cgroup line %q: want id:controllers:path", line)
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse cgroup file: %w", err)
	}
	return m, nil
}
