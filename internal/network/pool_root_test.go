package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
)

// poolManager is a testManager whose networks keep two entries ready.
func poolManager(t *testing.T) *Manager {
	t.Helper()
	m, _ := testManager(t, "")
	m.cfg.Pool = 2
	return m
}

// waitPool waits until the pool has ready entries and none being made
// or released.
func waitPool(t *testing.T, m *Manager, ready int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := m.Pool()
		if err != nil {
			t.Fatal(err)
		}
		if s.Ready == ready && s.Busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool: %+v after 30s, want %d ready and none busy", s, ready)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// netnsFiles counts the namespaces the manager made.
func netnsFiles(t *testing.T, m *Manager) int {
	t.Helper()
	des, err := os.ReadDir(m.netnsDir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(des)
}

// eth0Addr is the IPv4 address of eth0 in the namespace at path.
func eth0Addr(t *testing.T, path string) netip.Addr {
	t.Helper()
	var got netip.Addr
	err := inNetNS(path, func() error {
		i, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		as, err := i.Addrs()
		if err != nil {
			return err
		}
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				got = p.Addr()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("eth0 in %s: %v", path, err)
	}
	return got
}

// A container that takes a namespace from the pool is attached to the
// network in it (address, DNS names, listed by inspect) without an ADD of
// its own; the pool's entries are never listed; after DetachAll the
// entry's veth, lease and cache entry go in the background, the pool is
// topped up, and what stays on the host is exactly the pool; a container
// that asks for a ready entry's address gets it; Remove leaves nothing.
func TestPoolTakeAttachRelease(t *testing.T) {
	t.Parallel()
	m := poolManager(t)
	ctx := context.Background()
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-pool"}); err != nil {
		t.Fatal(err)
	}
	ins, _ := m.Inspect("bt-pool")
	before := snapshot(t, m)

	id := "p" + randHex(63)
	if _, ok := m.Take("bt-pool", id, AttachOptions{}); ok {
		t.Fatal("Take gave an entry before the network's pool was started")
	}
	waitPool(t, m, 2)
	if _, ok := m.Take("bt-pool", "x"+randHex(63), AttachOptions{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{}}}}); ok {
		t.Fatal("Take served a container with published ports")
	}
	if _, ok := m.Take("bt-pool", "x"+randHex(63), AttachOptions{IPv4: netip.MustParseAddr("172.31.0.9")}); ok {
		t.Fatal("Take served a container with a fixed address")
	}
	if c, _ := m.Inspect("bt-pool"); len(c.Containers) != 0 {
		t.Fatalf("the pool's entries are listed: %v", c.Containers)
	}
	path, ok := m.Take("bt-pool", id, AttachOptions{})
	if !ok {
		t.Fatal("Take gave nothing from a ready pool")
	}
	// The runtime joins the namespace: Attach is given it.
	ep, err := m.Attach(ctx, "bt-pool", id, path, AttachOptions{Name: "pooled", Aliases: []string{"al"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := eth0Addr(t, path); got != ep.IPv4.Addr() || !ins.IPAM.Config[0].Subnet.Contains(got) {
		t.Fatalf("eth0 has %s, the endpoint says %s", got, ep.IPv4)
	}
	if ep.DNSServer != ep.Gateway4 || len(ep.DNSNames) < 2 || ep.DNSNames[0] != "pooled" {
		t.Fatalf("endpoint %+v: no DNS server or names", ep)
	}
	if c, _ := m.Inspect("bt-pool"); len(c.Containers) != 1 || c.Containers[id].Name != "pooled" {
		t.Fatalf("inspect lists %v, want the container alone", c.Containers)
	}
	eps, _ := m.readEndpoints(id)
	if len(eps) != 1 || !eps[0].Pooled || eps[0].CNIID == "" || eps[0].CNIID == id {
		t.Fatalf("the container's endpoint record is not the pool entry's: %+v", eps)
	}

	// A container that joined the namespace (--network container:)
	// holds it past the release: the veth must not stay in it.
	held, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := m.DetachAll(ctx, id); err != nil {
		t.Fatal(err)
	}
	if eps, _ := m.readEndpoints(id); len(eps) != 0 {
		t.Fatalf("endpoint records left after DetachAll: %+v", eps)
	}
	waitPool(t, m, 2)
	err = inNetNS(fmt.Sprintf("/proc/self/fd/%d", held.Fd()), func() error {
		_, err := net.InterfaceByName("eth0")
		return err
	})
	if err == nil {
		t.Fatal("eth0 stayed in a released namespace that another process holds")
	}
	s := snapshot(t, m)
	if want := (hostState{veths: before.veths + 2, leases: before.leases + 2, cache: before.cache + 2, fwNets: before.fwNets}); s != want {
		t.Fatalf("with two ready entries: %+v, want %+v", s, want)
	}
	if n := netnsFiles(t, m); n != 2 {
		t.Fatalf("%d namespace files, want the pool's 2", n)
	}

	// An address a container asks for that a ready entry holds.
	m.mu.Lock()
	taken := m.pools[ins.ID].ready[0].IPv4.Addr()
	m.mu.Unlock()
	ns := testNetNS(t)
	fixed := "f" + randHex(63)
	ep, err = m.Attach(ctx, "bt-pool", fixed, ns, AttachOptions{IPv4: taken})
	if err != nil {
		t.Fatalf("attach with the address of a pool entry: %v", err)
	}
	if ep.IPv4.Addr() != taken {
		t.Fatalf("got %s, asked for %s", ep.IPv4, taken)
	}
	if err := m.DetachAll(ctx, fixed); err != nil {
		t.Fatal(err)
	}

	if err := m.Remove(ctx, "bt-pool"); err != nil {
		t.Fatal(err)
	}
	assertNetworkGone(t, m, ins.ID, ins.Options[optBridgeName], "br-"+ins.ID[:12], ins.IPAM.Config[0].Subnet)
	if n := netnsFiles(t, m); n != 0 {
		t.Fatalf("%d namespace files left after the network's removal", n)
	}
	if s, _ := m.Pool(); s != (PoolState{}) {
		t.Fatalf("pool records left after the network's removal: %+v", s)
	}
	if after := snapshot(t, m); after.cache != 0 || after.leases != 0 {
		t.Fatalf("left after the network's removal: %+v", after)
	}
}

// The pool never outlives berthd: Close releases the ready entries and
// a reservation never adopted, and keeps the namespace a running
// container took; after a crash (no Close), the next manager's Reconcile
// releases every entry and namespace no live container holds; the
// container's entry goes with its DetachAll.
func TestPoolNeverLeaks(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg, _ := testConfig(t)
	cfg.Pool = 2
	ctx := context.Background()
	m1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Whatever manager is the last one, on any way out: a manager of
	// the same roots reconciles what the failed test left (no container
	// lives), then the usual teardown removes the network.
	var last *Manager
	cur := m1
	t.Cleanup(func() {
		if last != nil {
			return
		}
		crash(cur)
		m, err := New(ctx, cfg)
		if err != nil {
			t.Errorf("clean-up: %v", err)
			return
		}
		m.Reconcile(ctx, func(string) bool { return false })
		teardown(t, m)
	})
	if _, err := m1.Create(ctx, network.CreateRequest{Name: "bt-poolleak"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, m1)
	m1.Take("bt-poolleak", "s"+randHex(63), AttachOptions{})
	waitPool(t, m1, 2)
	live := "l" + randHex(63)
	path, ok := m1.Take("bt-poolleak", live, AttachOptions{})
	if !ok {
		t.Fatal("Take gave nothing from a ready pool")
	}
	if _, err := m1.Attach(ctx, "bt-poolleak", live, path, AttachOptions{Name: "live"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m1.Take("bt-poolleak", "r"+randHex(63), AttachOptions{}); !ok {
		t.Fatal("no second entry")
	}
	waitPool(t, m1, 2) // one ready, one reserved (the live container's adoption started a fill)
	// berthd stops: everything of the pool goes but the live
	// container's namespace.
	m1.Close()
	if s, _ := m1.Pool(); s != (PoolState{}) {
		t.Fatalf("pool records left after Close: %+v", s)
	}
	if n := netnsFiles(t, m1); n != 1 {
		t.Fatalf("%d namespace files after Close, want the live container's", n)
	}
	if s := snapshot(t, m1); s.veths != before.veths+1 || s.leases != before.leases+1 || s.cache != before.cache+1 {
		t.Fatalf("after Close: %+v, want the live container's alone over %+v", s, before)
	}

	// A berthd that runs its pool and is killed with -9.
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cur = m2
	if err := m2.Reconcile(ctx, func(id string) bool { return id == live }); err != nil {
		t.Fatal(err)
	}
	m2.Take("bt-poolleak", "s"+randHex(63), AttachOptions{})
	waitPool(t, m2, 2)
	if _, ok := m2.Take("bt-poolleak", "r"+randHex(63), AttachOptions{}); !ok {
		t.Fatal("no entry")
	}
	waitPool(t, m2, 2) // one ready, one reserved
	crash(m2)

	m3, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	last = m3
	t.Cleanup(func() {
		m3.Reconcile(ctx, func(string) bool { return false })
		teardown(t, m3)
	})
	if err := m3.Reconcile(ctx, func(id string) bool { return id == live }); err != nil {
		t.Fatal(err)
	}
	if s, _ := m3.Pool(); s != (PoolState{}) {
		t.Fatalf("pool records left after Reconcile: %+v", s)
	}
	if n := netnsFiles(t, m3); n != 1 {
		t.Fatalf("%d namespace files after Reconcile, want the live container's", n)
	}
	if s := snapshot(t, m3); s.veths != before.veths+1 || s.leases != before.leases+1 || s.cache != before.cache+1 {
		t.Fatalf("after Reconcile: %+v, want the live container's alone over %+v", s, before)
	}
	if got := eth0Addr(t, path); !got.IsValid() {
		t.Fatal("the live container lost its address")
	}
	if err := m3.DetachAll(ctx, live); err != nil {
		t.Fatal(err)
	}
	waitPool(t, m3, 0)
	if s := snapshot(t, m3); s != before {
		t.Fatalf("left behind: before %+v after %+v", before, s)
	}
	if n := netnsFiles(t, m3); n != 0 {
		t.Fatalf("%d namespace files left", n)
	}
}

// crash stops a manager as kill -9 stops berthd: its background work
// ends (a killed process's would stop where it is; waiting leaves
// records in every state Reconcile must handle but a half-made one),
// its sockets close, nothing is released.
func crash(m *Manager) {
	m.mu.Lock()
	m.closed = true
	var ps []*netPool
	for _, p := range m.pools {
		ps = append(ps, p)
	}
	for _, p := range ps {
		m.waitIdleLocked(p)
	}
	m.mu.Unlock()
	m.dns.Close()
	m.mu.Lock()
	for id, rs := range m.ports {
		releasePorts(rs)
		delete(m.ports, id)
	}
	m.mu.Unlock()
}

// slowBridgePlugins is a plugin directory with the real plugins, but
// whose bridge, while the file it returns exists, holds its ADD's
// result for two seconds after the address was leased: a pool fill
// caught between its lease and its landing in the pool.
func slowBridgePlugins(t *testing.T) (dir, slow string) {
	t.Helper()
	real := plugins(t)
	dir = t.TempDir()
	des, err := os.ReadDir(real)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Name() != "bridge" {
			if err := os.Symlink(filepath.Join(real, de.Name()), filepath.Join(dir, de.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	slow = filepath.Join(dir, "slow")
	script := fmt.Sprintf("#!/bin/sh\nout=$(%q)\nrc=$?\n[ \"$CNI_COMMAND\" = ADD ] && [ -e %q ] && sleep 2\nprintf '%%s' \"$out\"\nexit $rc\n",
		filepath.Join(real, "bridge"), slow)
	if err := os.WriteFile(filepath.Join(dir, "bridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, slow
}

// A fixed address is the container's even when the pool's work in
// flight holds it: a fill that leased it and has not landed yet (the
// next address after a fixed one is the next fill's), or the release in
// the background of a container removed a moment ago. The attach waits
// for that work and evicts the entry, instead of failing as taken.
func TestPoolFixedAddressInFlight(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	cfg, _ := testConfig(t)
	var slow string
	cfg.PluginDirs[0], slow = slowBridgePlugins(t)
	cfg.Pool = 2
	m, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { teardown(t, m) })
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-pool-fixed"}); err != nil {
		t.Fatal(err)
	}
	ins, _ := m.Inspect("bt-pool-fixed")

	// The pool's first fills, slowed down after their leases.
	if err := os.WriteFile(slow, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Take("bt-pool-fixed", "p"+randHex(63), AttachOptions{}); ok {
		t.Fatal("Take gave an entry before the network's pool was started")
	}
	var leases []leaseFile
	for deadline := time.Now().Add(20 * time.Second); len(leases) < 2; time.Sleep(10 * time.Millisecond) {
		if leases, err = readLeases(filepath.Join(m.ipamDir(), ins.ID)); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool's fills leased %d addresses in 20s, want 2", len(leases))
		}
	}
	if s, _ := m.Pool(); s.Ready != 0 {
		t.Fatalf("pool %+v: a fill landed within the plugin's hold", s)
	}
	if err := os.Remove(slow); err != nil {
		t.Fatal(err)
	}
	inFlight, err := netip.ParseAddr(filepath.Base(leases[0].path))
	if err != nil {
		t.Fatal(err)
	}
	fixed := "f" + randHex(63)
	ep, err := m.Attach(ctx, "bt-pool-fixed", fixed, testNetNS(t), AttachOptions{IPv4: inFlight})
	if err != nil {
		t.Fatalf("attach with the address a fill in flight leased: %v", err)
	}
	if ep.IPv4.Addr() != inFlight {
		t.Fatalf("got %s, asked for %s", ep.IPv4, inFlight)
	}

	// A pooled container removed, and its address asked for at once.
	id := "p" + randHex(63)
	path, ok := m.Take("bt-pool-fixed", id, AttachOptions{})
	if !ok {
		t.Fatal("Take gave nothing from a pool with a ready entry")
	}
	pooled, err := m.Attach(ctx, "bt-pool-fixed", id, path, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DetachAll(ctx, id); err != nil {
		t.Fatal(err)
	}
	again := "f" + randHex(63)
	ep, err = m.Attach(ctx, "bt-pool-fixed", again, testNetNS(t), AttachOptions{IPv4: pooled.IPv4.Addr()})
	if err != nil {
		t.Fatalf("attach with the address of a container removed a moment ago: %v", err)
	}
	if ep.IPv4.Addr() != pooled.IPv4.Addr() {
		t.Fatalf("got %s, asked for %s", ep.IPv4, pooled.IPv4)
	}
	for _, c := range []string{fixed, again} {
		if err := m.DetachAll(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}
