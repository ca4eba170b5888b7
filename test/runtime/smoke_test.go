package runtime_test

import (
	"testing"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

func TestRunProbeSmoke(t *testing.T) {
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	rep := r.RunProbe(b, "smoke")
	if rep.PID != 1 {
		t.Errorf("pid %d, want 1 in a new pid namespace", rep.PID)
	}
	if rep.Hostname != b.Spec.Hostname {
		t.Errorf("hostname %q, want %q", rep.Hostname, b.Spec.Hostname)
	}
	// After pivot_root the host's mounts are gone from the container's view.
	for _, m := range rep.Mounts {
		if m.MountPoint == "/work" || m.MountPoint == "/run" {
			t.Errorf("host mount %s visible in the container", m.MountPoint)
		}
	}
}
