package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// After 50 attach/detach cycles (five containers at a time, on the
// default bridge and a user network, some with published ports, half
// detached after their namespace is gone) no veth, namespace, lease, CNI
// cache entry, port rule or host port is left; the networks' own rules
// go with the networks.
func TestNoLeaksAfterCycles(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, "")
	ctx := context.Background()
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-cycles"}); err != nil {
		t.Fatal(err)
	}
	// Realize the default bridge before counting: its rules stay.
	warm := testNetNS(t)
	if _, err := m.Attach(ctx, "bridge", "warm"+randHex(60), warm, AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	eps, _ := m.readEndpoints("")
	for _, e := range eps {
		if err := m.DetachAll(ctx, e.ContainerID); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, m)

	const workers, perWorker = 5, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if err := cycle(ctx, m, w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if after := snapshot(t, m); after != before {
		t.Fatalf("left behind after %d cycles: before %+v after %+v", workers*perWorker, before, after)
	}
	if len(m.ports) != 0 {
		t.Fatalf("host ports still held: %v", m.ports)
	}
	if eps, _ := m.readEndpoints(""); len(eps) != 0 {
		t.Fatalf("endpoint records left: %d", len(eps))
	}

	// Removing the user network takes its bridge, route and rules.
	ins, _ := m.Inspect("bt-cycles")
	if err := m.Remove(ctx, "bt-cycles"); err != nil {
		t.Fatal(err)
	}
	assertNetworkGone(t, m, ins.ID, ins.Options[optBridgeName], "br-"+ins.ID[:12], ins.IPAM.Config[0].Subnet)
}

// cycle is one container's life: a namespace, an attach, a connection to
// its published port when it has one, a detach (before or after the
// namespace goes), the namespace removed.
func cycle(ctx context.Context, m *Manager, w, i int) error {
	name := fmt.Sprintf("%s%d-%d", cycleNSPrefix(m), w, i)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	path := "/run/netns/" + name
	id := fmt.Sprintf("%02d%02d", w, i) + randHex(60)
	net := "bt-cycles"
	if i%2 == 1 {
		net = "bridge"
	}
	o := AttachOptions{Name: name}
	if i%3 == 0 {
		o.PortBindings = network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	}
	if _, err := m.Attach(ctx, net, id, path, o); err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		return err
	}
	goneFirst := i%2 == 0
	if goneFirst {
		// The container exited: its namespace is gone before the DEL.
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns del: %v: %s", err, out)
		}
	}
	if err := m.DetachAll(ctx, id); err != nil {
		return err
	}
	if !goneFirst {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns del: %v: %s", err, out)
		}
	}
	return nil
}

// assertNetworkGone checks that nothing of a removed network is left on
// the host: bridge, unreachable route, firewall rules, leases, files.
func assertNetworkGone(t *testing.T, m *Manager, id, bridgeOpt, bridge string, subnet netip.Prefix) {
	t.Helper()
	if bridgeOpt != "" {
		bridge = bridgeOpt
	}
	if _, exists, _ := linkKind(context.Background(), bridge); exists {
		t.Errorf("bridge %s left", bridge)
	}
	routes, _ := hostRoutes(context.Background())
	for _, r := range routes {
		if overlaps(r.Prefix, subnet) {
			t.Errorf("route %+v left for %s", r, subnet)
		}
	}
	ids, _ := m.fw.networks(context.Background())
	for _, s := range ids {
		if s == shortID(id) {
			t.Errorf("firewall rules of %s left", id)
		}
	}
	for _, p := range []string{filepath.Join(m.ipamDir(), id), m.recordPath(id), m.conflistPath(id)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left", p)
		}
	}
}

// berthd killed with -9 in the middle: an attach completed (ADD ran, its
// record says attached) and one interrupted (record "adding", ADD ran,
// record never updated); a restarted manager's Reconcile, told neither
// container lives, removes both completely.
func TestReconcileAfterCrash(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg, _ := testConfig(t)
	ctx := context.Background()
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Create(ctx, network.CreateRequest{Name: "bt-crash"}); err != nil {
		teardown(t, m1)
		t.Fatal(err)
	}
	nsDone, nsHalf, nsLive := testNetNS(t), testNetNS(t), testNetNS(t)
	before := snapshot(t, m1)
	doneID, halfID, liveID := "d"+randHex(63), "h"+randHex(63), "l"+randHex(63)
	pb := network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	if _, err := m1.Attach(ctx, "bt-crash", doneID, nsDone, AttachOptions{Name: "done", PortBindings: pb}); err != nil {
		t.Fatal(err)
	}
	liveEP, err := m1.Attach(ctx, "bt-crash", liveID, nsLive, AttachOptions{Name: "live", PortBindings: pb})
	if err != nil {
		t.Fatal(err)
	}
	// The interrupted attach: its record written "adding", ADD run,
	// then the crash before the record was updated.
	m1.mu.Lock()
	r, _ := m1.lookupNetwork("bt-crash")
	m1.mu.Unlock()
	dev, ino, _ := netnsID(nsHalf)
	half := &endpointRecord{State: stateAdding, ContainerID: halfID, NetworkID: r.ID, EndpointID: newID(), IfName: "eth0", NetNS: nsHalf, NetNSDev: dev, NetNSIno: ino, Name: "half"}
	if err := m1.writeEndpoint(half); err != nil {
		t.Fatal(err)
	}
	list, _ := m1.cniList(r, half)
	if _, err := m1.cniAdd(ctx, list, half); err != nil {
		t.Fatal(err)
	}
	// kill -9: the process's sockets (DNS, host ports) go, nothing else.
	m1.Close()

	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { teardown(t, m2) })
	if err := m2.Reconcile(ctx, func(id string) bool { return id == liveID }); err != nil {
		t.Fatal(err)
	}
	eps, _ := m2.readEndpoints("")
	if len(eps) != 1 || eps[0].ContainerID != liveID {
		t.Fatalf("endpoints after reconcile: %+v", eps)
	}
	if links := nsRun(t, nsHalf, "ip", "-o", "link"); strings.Contains(links, "eth0") {
		t.Errorf("the interrupted attach's veth is left:\n%s", links)
	}
	// The live container keeps its published port: held again.
	if _, err := bindPort(netip.MustParseAddr("127.0.0.1"), mustPort(t, liveEP), "tcp"); err == nil {
		t.Error("the live container's host port is not held again after the restart")
	}
	if err := m2.DetachAll(ctx, liveID); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, m2); after != before {
		t.Fatalf("left behind: before %+v after %+v", before, after)
	}
}

func mustPort(t *testing.T, ep *Endpoint) uint16 {
	p, err := strconv.Atoi(ep.Ports[network.MustParsePort("80/tcp")][0].HostPort)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(p)
}
