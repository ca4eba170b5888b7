package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestNetworkRunCyclesLeaveNothing: 50 containers on a user-defined
// network, each with an address on it, one in five with a published port, most
// run with --rm, some removed with rm -f while they run; afterwards no
// veth is left on the bridge, no network namespace of theirs exists, no
// address lease, endpoint record or CNI cache entry is left, and the
// host's firewall rules that concern the network are what they were
// before. berthd keeps namespaces attached ahead of need (its pool, see
// internal/network/pool.go): once its releases are done, what is on the
// host is exactly its ready entries, one veth, lease, cache entry and
// namespace each, and after the network's removal nothing at all.
func TestNetworkRunCyclesLeaveNothing(t *testing.T) {
	ref := seed(t)
	d := netDaemon(t)
	d.mustDocker(t, "pull", "-q", ref)
	subnet := netip.MustParsePrefix("10.231.30.0/24")
	d.mustDocker(t, "network", "create", "--subnet", subnet.String(), "cyc")
	n := d.inspectNetwork(t, "cyc")
	bridge := n.bridge()
	leases := filepath.Join(d.ExecRoot, "network", "ipam", n.ID)
	state := func() (veths, leaseFiles, endpoints, cached int) {
		veths = vethsOn(t, bridge)
		des, _ := os.ReadDir(leases)
		for _, de := range des {
			if _, err := netip.ParseAddr(de.Name()); err == nil {
				leaseFiles++
			}
		}
		des, _ = os.ReadDir(filepath.Join(d.ExecRoot, "network", "endpoints"))
		endpoints = len(des)
		des, _ = os.ReadDir(filepath.Join(d.ExecRoot, "network", "cni-cache", "results"))
		cached = len(des)
		return
	}
	rulesBefore := firewallLines(t, bridge, subnet)
	if len(rulesBefore) == 0 {
		t.Fatalf("no firewall rule names bridge %s or subnet %s: the count would prove nothing", bridge, subnet)
	}
	if v, l, e, c := state(); v+l+e+c != 0 {
		t.Fatalf("before: %d veths, %d leases, %d endpoints, %d cached results", v, l, e, c)
	}

	const cycles, batch = 50, 10
	report := "ip -o -4 addr show eth0; readlink /proc/self/ns/net"
	var mu sync.Mutex
	var namespaces []string
	for start := 0; start < cycles; start += batch {
		var wg sync.WaitGroup
		for i := start; i < start+batch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				args := []string{"run", "--rm", "--network", "cyc"}
				if i%5 == 0 {
					args = append(args, "-p", "127.0.0.1::80")
				}
				var out string
				if i%10 == 9 {
					// Removed while it runs: rm -f kills it.
					name := fmt.Sprintf("cyc%d", i)
					d.mustDocker(t, "run", "-d", "--name", name, "--network", "cyc", ref, "sh", "-c", "("+report+") > /tmp/r && mv /tmp/r /tmp/report && exec sleep 100")
					out = d.mustDocker(t, "exec", name, "sh", "-c", "until [ -e /tmp/report ]; do sleep 0.05; done; cat /tmp/report")
					d.mustDocker(t, "rm", "-f", name)
				} else {
					out = d.mustDocker(t, append(args, ref, "sh", "-c", report)...)
				}
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != 2 || !strings.Contains(lines[0], "inet "+strings.TrimSuffix(subnet.Addr().String(), "0")) || !strings.HasPrefix(lines[1], "net:[") {
					t.Errorf("cycle %d: %q", i, out)
					return
				}
				mu.Lock()
				namespaces = append(namespaces, lines[1])
				mu.Unlock()
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}

	if ids := strings.Fields(d.mustDocker(t, "ps", "-aq")); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	pool := waitPoolSettled(t, d)
	if pool == 0 {
		t.Errorf("no pool entry after %d cycles: the pool was not used, and this test proves less than it says", cycles)
	}
	if v, l, e, c := state(); v != pool || l != pool || e != 0 || c != pool || netnsFiles(t, d) != pool {
		t.Errorf("after %d cycles, with %d pool entries: %d veths on %s, %d leases, %d endpoint records, %d cached CNI results, %d namespace files",
			cycles, pool, v, bridge, l, e, c, netnsFiles(t, d))
	}
	if after := firewallLines(t, bridge, subnet); !slices.Equal(after, rulesBefore) {
		t.Errorf("firewall rules of the network changed:\nbefore:\n%s\nafter:\n%s", strings.Join(rulesBefore, "\n"), strings.Join(after, "\n"))
	}
	// Nothing holds a network namespace any more: no shim of this
	// daemon runs, and berthd has none open (namespace numbers are
	// reused, so the system's other namespaces prove nothing).
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), d.ExecRoot) && !strings.Contains(string(b), "berthd\x00") {
			t.Errorf("%s still runs: %q", filepath.Dir(p), b)
		}
	}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", d.cmd.Process.Pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "net:[") {
			t.Errorf("berthd holds network namespace %s open (%s)", l, fd)
		}
	}
	if len(namespaces) != cycles {
		t.Errorf("%d namespaces reported for %d cycles", len(namespaces), cycles)
	}
	// The network's removal takes the pool's entries with it.
	d.mustDocker(t, "network", "rm", "cyc")
	if _, l, e, c := state(); l+e+c+netnsFiles(t, d) != 0 || poolRecords(t, d) != 0 {
		t.Errorf("after network rm: %d leases, %d endpoint records, %d cached CNI results, %d namespace files, %d pool records", l, e, c, netnsFiles(t, d), poolRecords(t, d))
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		t.Errorf("bridge %s left after network rm", bridge)
	}
}
