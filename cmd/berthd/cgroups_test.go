package main

import (
	"strings"
	"testing"
)

func TestCgroupDriverOption(t *testing.T) {
	for _, c := range []struct {
		opts    []string
		systemd bool
		err     string
	}{
		{opts: []string{"native.cgroupdriver=cgroupfs"}},
		{opts: []string{"native.cgroupdriver=systemd", "native.cgroupdriver=cgroupfs"}}, // the last wins, as in dockerd
		{opts: []string{" Native.CgroupDriver = cgroupfs"}},
		{opts: []string{"native.cgroupdriver=lxc"}, err: "want cgroupfs or systemd"},
		{opts: []string{"native.cgroupdriver"}, err: "the option berthd knows is native.cgroupdriver"},
		{opts: []string{"native.umask=normal"}, err: `invalid --exec-opt "native.umask=normal"`},
	} {
		systemd, err := cgroupDriver(c.opts)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.opts, err, c.err)
			}
			continue
		}
		if err != nil || systemd != c.systemd {
			t.Errorf("%q: systemd %v, %v", c.opts, systemd, err)
		}
	}
	// Without the option: systemd exactly where it is init on a cgroup2
	// only host.
	systemd, err := cgroupDriver(nil)
	if err != nil || systemd != (systemdBooted() && unifiedCgroups()) {
		t.Errorf("default: systemd %v, %v", systemd, err)
	}
}
