package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupDriver reads docker's --exec-opt native.cgroupdriver=cgroupfs|systemd
// and says whether containers get systemd's driver. Without the option
// the choice is docker's: systemd where the host is cgroup v2 only and
// systemd is PID 1 (it owns the tree there, and cgroups made behind its
// back are moved or removed when it reloads), cgroupfs elsewhere.
func cgroupDriver(execOpts []string) (systemd bool, err error) {
	driver := ""
	for _, o := range execOpts {
		k, v, ok := strings.Cut(o, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k != "native.cgroupdriver" {
			return false, fmt.Errorf("invalid --exec-opt %q: the option berthd knows is native.cgroupdriver=cgroupfs|systemd", o)
		}
		driver = strings.TrimSpace(v)
	}
	switch driver {
	case "cgroupfs":
		return false, nil
	case "systemd":
		if !systemdBooted() {
			return false, fmt.Errorf("native.cgroupdriver=systemd: systemd is not running on this host (no /run/systemd/system)")
		}
		return true, nil
	case "":
		return systemdBooted() && unifiedCgroups(), nil
	}
	return false, fmt.Errorf("invalid --exec-opt native.cgroupdriver=%s: want cgroupfs or systemd", driver)
}

// systemdBooted is sd_booted(3): systemd is the init.
func systemdBooted() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// unifiedCgroups says /sys/fs/cgroup is cgroup2 alone.
func unifiedCgroups() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
