package engine_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// runOutput runs a container to its end and returns its stdout.
func (v *env) runOutput(cfg *container.Config, hc *container.HostConfig) string {
	v.t.Helper()
	id := v.create("", cfg, hc)
	v.start(id)
	if code := v.wait(id, container.WaitConditionNotRunning); code != 0 {
		o, e := v.logsOf(id)
		v.t.Fatalf("%v exited %d: %s%s", cfg.Cmd, code, o, e)
	}
	o, _ := v.logsOf(id)
	return o
}

// Network modes: bridge (until the network layer) and none have loopback
// only, host the host's interfaces and name, container:<id> the other
// container's namespace.
func TestNetworkModes(t *testing.T) {
	v := newEnv(t)
	list := sh("ls /sys/class/net | tr '\\n' ' '; hostname")
	for _, mode := range []string{"", "bridge", "none"} {
		if got := strings.Fields(v.runOutput(list, &container.HostConfig{NetworkMode: container.NetworkMode(mode)})); len(got) != 2 || got[0] != "lo" || len(got[1]) != 12 {
			t.Errorf("network %q: interfaces %q", mode, got)
		}
	}
	host, _ := os.ReadDir("/sys/class/net")
	hostName, _ := os.Hostname()
	got := v.runOutput(list, &container.HostConfig{NetworkMode: "host"})
	if len(strings.Fields(got)) != len(host)+1 || !strings.HasSuffix(got, hostName+"\n") {
		t.Errorf("host network: %q (host has %d interfaces, is %s)", got, len(host), hostName)
	}
	other := v.create("netowner", sh("sleep 1000"), &container.HostConfig{NetworkMode: "none"})
	v.start(other)
	pid := v.inspect(other).State.Pid
	want, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if got := v.runOutput(sh("readlink /proc/self/ns/net"), &container.HostConfig{NetworkMode: "container:netowner"}); got != want+"\n" {
		t.Errorf("container network: %q, want %q", got, want)
	}
	r := v.inspect(other)
	if _, ok := r.NetworkSettings.Networks["none"]; !ok || r.HostConfig.NetworkMode != "none" {
		t.Errorf("inspect of a none container: %+v %+v", r.NetworkSettings, r.HostConfig.NetworkMode)
	}
}

func TestVolumesFromAndPrune(t *testing.T) {
	v := newEnv(t)
	src := v.create("src", nil, &container.HostConfig{Binds: []string{"shared:/v"}})
	dst := v.create("dst", sh("touch /v/x"), &container.HostConfig{VolumesFrom: []string{"src:ro"}})
	ms := v.inspect(dst).Mounts
	if len(ms) != 1 || ms[0].Name != "shared" || ms[0].RW || ms[0].Type != mount.TypeVolume {
		t.Fatalf("volumes-from mounts %+v", ms)
	}
	v.start(dst)
	if code := v.wait(dst, container.WaitConditionNotRunning); code == 0 {
		t.Error("wrote into a read-only volume from --volumes-from")
	}
	running := v.create("up", &container.Config{Cmd: []string{"sleep", "1000"}, Labels: map[string]string{"keep": "1"}}, nil)
	v.start(running)
	labelled := v.create("labelled", &container.Config{Labels: map[string]string{"keep": "1"}}, nil)
	rep, err := v.e.Prune(ctx(t), map[string][]string{"label!": {"keep"}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.ContainersDeleted)
	want := []string{src, dst}
	slices.Sort(want)
	if !slices.Equal(rep.ContainersDeleted, want) {
		t.Errorf("pruned %v, want %v", rep.ContainersDeleted, want)
	}
	cs, _ := v.e.List(ctx(t), engine.ListOptions{All: true})
	if len(cs) != 2 {
		t.Errorf("after prune: %d containers", len(cs))
	}
	_ = labelled
	if refs := v.e.Volumes().Refs("shared"); len(refs) != 0 {
		t.Errorf("pruned containers still hold the volume: %v", refs)
	}
}
