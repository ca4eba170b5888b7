package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
)

// execOut runs cmd in a running container and returns its stdout.
func (v *env) execOut(id string, cmd ...string) string {
	v.t.Helper()
	x, err := v.e.ExecCreate(ctx(v.t), id, container.ExecCreateRequest{Cmd: cmd, AttachStdout: true})
	if err != nil {
		v.t.Fatal(err)
	}
	var out syncBuffer
	if err := v.e.ExecStart(ctx(v.t), x, engine.ExecStartOptions{Stdout: &out}); err != nil {
		v.t.Fatal(err)
	}
	return out.String()
}

// cgroupValue reads a cgroup file from inside the container: the v1
// controller's file, else the unified hierarchy's.
func (v *env) cgroupValue(id, v1, v2 string) string {
	v.t.Helper()
	return strings.TrimSpace(v.execOut(id, "sh", "-c", "cat /sys/fs/cgroup/"+v1+" 2>/dev/null || cat /sys/fs/cgroup/"+v2))
}

// docker update: a running container's cgroup gets the new limits at
// once, HostConfig records them (inspect, and the next start), zero
// fields keep theirs, and bad values and conflicts are refused with the
// record unchanged.
func TestUpdate(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("sleep 1000"), &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, CPUShares: 512}})
	v.start(id)
	pids := int64(40)
	resp, err := v.e.Update(ctx(t), id, container.UpdateConfig{
		Resources: container.Resources{
			Memory:    128 << 20,
			NanoCPUs:  5e8,
			PidsLimit: &pids,
		},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	})
	if err != nil || resp.Warnings == nil {
		t.Fatalf("update: %+v %v", resp, err)
	}
	for _, c := range []struct{ v1, v2, want string }{
		{"memory/memory.limit_in_bytes", "memory.max", "134217728"},
		{"cpu/cpu.cfs_quota_us", "cpu.max", "50000"},
		{"pids/pids.max", "pids.max", "40"},
		{"cpu/cpu.shares", "cpu.weight", "512"},
	} {
		got := v.cgroupValue(id, c.v1, c.v2)
		if c.v2 == "cpu.max" {
			got, _, _ = strings.Cut(got, " ")
		}
		if c.v2 == "cpu.weight" && got != "512" {
			continue // the unified hierarchy converts shares to a weight
		}
		if got != c.want {
			t.Errorf("%s after update: %q, want %q", c.v1, got, c.want)
		}
	}
	hc := v.inspect(id).HostConfig
	if hc.Memory != 128<<20 || hc.NanoCPUs != 5e8 || hc.PidsLimit == nil || *hc.PidsLimit != 40 || hc.CPUShares != 512 ||
		hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("HostConfig after update: %+v %+v", hc.Resources, hc.RestartPolicy)
	}
	if !strings.Contains(strings.Join(v.eventsOf(id), " "), "update") {
		t.Errorf("no update event: %v", v.eventsOf(id))
	}

	for _, c := range []struct {
		name string
		u    container.UpdateConfig
		msg  string
	}{
		{"memory below 6MB", container.UpdateConfig{Resources: container.Resources{Memory: 1 << 20}}, "minimum memory limit allowed is 6MB"},
		{"period with --cpus", container.UpdateConfig{Resources: container.Resources{CPUPeriod: 100000}}, "CPU Period cannot be updated as NanoCPUs has already been set"},
		{"bad restart policy", container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "bogus"}}, "bogus"},
		{"bad blkio weight", container.UpdateConfig{Resources: container.Resources{BlkioWeight: 5}}, "range of blkio weight is from 10 to 1000"},
		{"cpuset the host lacks", container.UpdateConfig{Resources: container.Resources{CpusetCpus: "0-511"}}, "not available"},
	} {
		if _, err := v.e.Update(ctx(t), id, c.u); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an invalid request with %q", c.name, err, c.msg)
		}
	}
	if got := v.cgroupValue(id, "memory/memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("memory after refused updates: %s", got)
	}
	if hc2 := v.inspect(id).HostConfig; hc2.Memory != hc.Memory || hc2.BlkioWeight != 0 || hc2.CpusetCpus != "" || hc2.RestartPolicy != hc.RestartPolicy {
		t.Errorf("a refused update changed HostConfig: %+v", hc2.Resources)
	}
	if _, err := v.e.Update(ctx(t), "nosuch", container.UpdateConfig{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("update of an unknown container: %v", err)
	}

	// Stopped, the update is recorded and the next start has it.
	zero := 0
	if err := v.e.Stop(ctx(t), id, engine.StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.Update(ctx(t), id, container.UpdateConfig{Resources: container.Resources{Memory: 96 << 20}}); err != nil {
		t.Fatal(err)
	}
	v.start(id)
	if got := v.cgroupValue(id, "memory/memory.limit_in_bytes", "memory.max"); got != "100663296" {
		t.Errorf("memory after update while stopped and a start: %s", got)
	}

	// --rm containers take no restart policy.
	rm := v.create("", sh("sleep 1000"), &container.HostConfig{AutoRemove: true})
	if _, err := v.e.Update(ctx(t), rm, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "AutoRemove") {
		t.Errorf("restart policy on an AutoRemove container: %v", err)
	}
}
