package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The network pool (internal/network/pool.go): namespaces berthd keeps
// attached ahead of need, under <exec-root>/network/pool (records) and
// <exec-root>/network/netns (the namespaces' bind mounts).

// poolRecords counts berthd's pool records, in any state.
func poolRecords(t *testing.T, d *daemon) int {
	t.Helper()
	ready, busy := poolStates(t, d)
	return ready + busy
}

// poolStates counts the pool records ready (attached, waiting for a
// container) and busy (being made or released).
func poolStates(t *testing.T, d *daemon) (ready, busy int) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(d.ExecRoot, "network", "pool", "*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			busy++ // released meanwhile
			continue
		}
		var r struct{ State string }
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("pool record %s: %v", p, err)
		}
		if r.State == "attached" {
			ready++
		} else {
			busy++
		}
	}
	return ready, busy
}

// waitPoolSettled waits until no pool entry is being made or released,
// and returns how many are ready.
func waitPoolSettled(t *testing.T, d *daemon) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, busy := poolStates(t, d)
		if busy == 0 {
			return ready
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not settle within 30s: %d ready, %d busy", ready, busy)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPoolReady waits until n entries are ready and none is busy.
func waitPoolReady(t *testing.T, d *daemon, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, busy := poolStates(t, d)
		if ready == n && busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool has %d ready and %d busy after 30s, want %d ready", ready, busy, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vethsOn counts the interfaces on the bridge.
func vethsOn(t *testing.T, bridge string) int {
	t.Helper()
	return strings.Count(run(t, nil, nil, "ip", "-o", "link", "show", "master", bridge).Stdout, "\n")
}

// netnsFiles counts the namespaces berthd made and keeps mounted.
func netnsFiles(t *testing.T, d *daemon) int {
	t.Helper()
	des, _ := os.ReadDir(filepath.Join(d.ExecRoot, "network", "netns"))
	return len(des)
}

// stopDaemon stops berthd (SIGTERM, or SIGKILL with kill) and waits for
// it; restart starts it again.
func (d *daemon) stop(t *testing.T, kill bool) {
	t.Helper()
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		d.done <- err // restart and the clean-up wait for it too
	case <-time.After(20 * time.Second):
		t.Fatal("berthd did not stop within 20s")
	}
}

// TestNetworkPoolLeavesNothing: the pool serves a container (address,
// DNS name, listed by inspect, the entries never listed); a berthd
// stopped leaves no entry but the running container's, a berthd killed
// with -9 leaves its entries to the next one, which removes them at
// start; the container's entry goes when it is removed; network rm takes
// the entries with the network.
func TestNetworkPoolLeavesNothing(t *testing.T) {
	ref := seed(t)
	d := netDaemon(t)
	d.mustDocker(t, "pull", "-q", ref)
	d.mustDocker(t, "network", "create", "--subnet", "10.231.31.0/24", "pl")
	bridge := d.inspectNetwork(t, "pl").bridge()
	veths := func() int { return vethsOn(t, bridge) }
	// The first run starts the network's pool.
	d.mustDocker(t, "run", "--rm", "--network", "pl", ref, "true")
	waitPoolReady(t, d, 2)
	if n := d.inspectNetwork(t, "pl").Containers; len(n) != 0 {
		t.Fatalf("the pool's entries are listed by network inspect: %v", n)
	}
	id := strings.TrimSpace(d.mustDocker(t, "run", "-d", "--name", "pooled", "--network", "pl", ref, "sleep", "1000"))
	var rec struct {
		Pooled bool   `json:"pooled"`
		CNIID  string `json:"cniID"`
	}
	eps, _ := filepath.Glob(filepath.Join(d.ExecRoot, "network", "endpoints", id, "*.json"))
	if len(eps) != 1 {
		t.Fatalf("%d endpoint records for the container", len(eps))
	}
	data, _ := os.ReadFile(eps[0])
	if json.Unmarshal(data, &rec); !rec.Pooled || rec.CNIID == "" {
		t.Fatalf("the container did not take a pool entry: %s", data)
	}
	addr := d.mustDocker(t, "exec", "pooled", "sh", "-c", "ip -o -4 addr show eth0")
	mustContain(t, "the pooled container's eth0", addr, "inet 10.231.31.")
	if n := d.inspectNetwork(t, "pl").Containers; len(n) != 1 {
		t.Fatalf("network inspect lists %v, want the container alone", n)
	}
	ip, _, _ := strings.Cut(strings.Fields(strings.SplitN(addr, "inet ", 2)[1])[0], "/")
	mustContain(t, "its name from another container", d.mustDocker(t, "run", "--rm", "--network", "pl", ref, "sh", "-c", "nslookup pooled 2>&1"), "Address: "+ip)
	waitPoolReady(t, d, 2)

	// A berthd stopped: nothing of the pool but the container's.
	d.stop(t, false)
	// Errorf, not Fatalf, while berthd is down: the clean-up needs it.
	if n, f, v := poolRecords(t, d), netnsFiles(t, d), veths(); n != 0 || f != 1 || v != 1 {
		t.Errorf("after berthd stopped: %d pool records, %d namespace files, %d veths; want 0, the container's 1, 1", n, f, v)
	}
	d.restart(t)
	mustContain(t, "the container's eth0 after the restart", d.mustDocker(t, "exec", "pooled", "sh", "-c", "ip -o -4 addr show eth0"), "inet 10.231.31.")

	// A berthd killed with -9 while its pool is full: the next one
	// removes the entries at start.
	d.mustDocker(t, "run", "--rm", "--network", "pl", ref, "true")
	waitPoolReady(t, d, 2)
	d.stop(t, true)
	if n := poolRecords(t, d); n != 2 {
		t.Errorf("%d pool records after kill -9, want the 2 left for the next berthd", n)
	}
	d.restart(t)
	if n, f, v := poolRecords(t, d), netnsFiles(t, d), veths(); n != 0 || f != 1 || v != 1 {
		t.Fatalf("after the restart: %d pool records, %d namespace files, %d veths; want 0, the container's 1, 1", n, f, v)
	}

	// The container's entry goes with it.
	d.mustDocker(t, "rm", "-f", "pooled")
	waitPoolSettled(t, d)
	if n, f, v := poolRecords(t, d), netnsFiles(t, d), veths(); n != 0 || f != 0 || v != 0 {
		t.Fatalf("after rm -f: %d pool records, %d namespace files, %d veths", n, f, v)
	}

	// network rm takes a full pool with the network.
	d.mustDocker(t, "run", "--rm", "--network", "pl", ref, "true")
	waitPoolReady(t, d, 2)
	d.mustDocker(t, "network", "rm", "pl")
	if n, f := poolRecords(t, d), netnsFiles(t, d); n != 0 || f != 0 {
		t.Fatalf("after network rm: %d pool records, %d namespace files", n, f)
	}
	cached, _ := os.ReadDir(filepath.Join(d.ExecRoot, "network", "cni-cache", "results"))
	if len(cached) != 0 {
		t.Fatalf("%d cached CNI results after network rm", len(cached))
	}
}
