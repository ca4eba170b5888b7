package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/moby/moby/api/types/network"
)

// blocked is how long a connection that the firewall drops is given.
const blocked = 400 * time.Millisecond

// listenHost serves greeting on addr:port in the host's namespace.
func listenHost(t *testing.T, addr netip.Addr, greeting string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, greeting)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// An --internal network has no default route, its containers cannot
// reach the host's other addresses even with a route of their own, and
// its DNS answers local names but forwards nothing; a normal network's
// container reaches the same host address.
func TestInternalNetwork(t *testing.T) {
	t.Parallel()
	m, up := testManager(t, "")
	ctx := context.Background()
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-int", Internal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-ext"}); err != nil {
		t.Fatal(err)
	}
	intNS, extNS := testNetNS(t), testNetNS(t)
	intEP, err := m.Attach(ctx, "bt-int", "i"+randHex(63), intNS, AttachOptions{Name: "inside"})
	if err != nil {
		t.Fatal(err)
	}
	extEP, err := m.Attach(ctx, "bt-ext", "e"+randHex(63), extNS, AttachOptions{Name: "outside"})
	if err != nil {
		t.Fatal(err)
	}

	routes := nsRun(t, intNS, "ip", "-4", "route", "show")
	if strings.Contains(routes, "default") || !strings.Contains(routes, intEP.IPv4.Masked().String()) {
		t.Fatalf("routes in the internal container:\n%s", routes)
	}
	if routes := nsRun(t, extNS, "ip", "-4", "route", "show"); !strings.Contains(routes, "default via "+extEP.Gateway4.String()) {
		t.Fatalf("routes in the external container:\n%s", routes)
	}

	// A host address that is not the internal network's: the external
	// network's gateway, with a server on it.
	target := listenHost(t, extEP.Gateway4, "host service")
	if got, err := fetch(extNS, target.String(), 2*time.Second); err != nil || got != "host service" {
		t.Fatalf("external container to the host: %q %v", got, err)
	}
	if _, err := fetch(intNS, target.String(), blocked); err == nil {
		t.Fatal("the internal container reached a host address without a route")
	}
	// Even a container that adds a route of its own is dropped.
	nsRun(t, intNS, "ip", "route", "add", extEP.Gateway4.String()+"/32", "via", intEP.Gateway4.String())
	if _, err := fetch(intNS, target.String(), blocked); err == nil {
		t.Fatal("the internal container reached a host address through its own route")
	}
	// Its gateway stays reachable: the DNS server is there.
	conf, _ := ResolvConf(nil, ResolvOptions{Embedded: intEP.DNSServer})
	res := resolverIn(t, intNS, conf)
	if addrs, err := res.LookupNetIP(ctx, "ip4", "inside"); err != nil || len(addrs) != 1 || addrs[0] != intEP.IPv4.Addr() {
		t.Fatalf("local name on the internal network: %v %v", addrs, err)
	}
	// Other names are not forwarded from an internal network.
	c := &mdns.Client{Timeout: 2 * time.Second}
	q := new(mdns.Msg)
	q.SetQuestion("elsewhere.test.", mdns.TypeA)
	var r *mdns.Msg
	err = inNetNS(intNS, func() error {
		var err error
		r, _, err = c.Exchange(q, netip.AddrPortFrom(intEP.DNSServer, 53).String())
		return err
	})
	if err != nil || r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("non-local name from the internal network: %v %v", r, err)
	}
	if seen := up.seen(); len(seen) != 0 {
		t.Fatalf("the internal network's DNS forwarded %v", seen)
	}
}

// Containers on different networks cannot reach each other, in either
// direction; containers on one network can. Run with both backends.
func TestNetworksIsolated(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, fw := range []string{backendNFTables, backendIPTables} {
		t.Run(fw, func(t *testing.T) {
			if _, err := newFirewall(context.Background(), fw); err != nil {
				t.Skip(err)
			}
			m, _ := testManager(t, fw)
			ctx := context.Background()
			for _, n := range []string{"bt-iso-a", "bt-iso-b"} {
				if _, err := m.Create(ctx, network.CreateRequest{Name: n}); err != nil {
					t.Fatal(err)
				}
			}
			a1, a2, b1 := testNetNS(t), testNetNS(t), testNetNS(t)
			epA1, err := m.Attach(ctx, "bt-iso-a", "a1"+randHex(62), a1, AttachOptions{Name: "a1"})
			if err != nil {
				t.Fatal(err)
			}
			epA2, err := m.Attach(ctx, "bt-iso-a", "a2"+randHex(62), a2, AttachOptions{Name: "a2"})
			if err != nil {
				t.Fatal(err)
			}
			epB1, err := m.Attach(ctx, "bt-iso-b", "b1"+randHex(62), b1, AttachOptions{Name: "b1"})
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range []string{a1, a2, b1} {
				serve(t, ns, 7000, "from "+ns)
			}
			addr := func(ep *Endpoint) string { return netip.AddrPortFrom(ep.IPv4.Addr(), 7000).String() }
			if got, err := fetch(a1, addr(epA2), 2*time.Second); err != nil || got != "from "+a2 {
				t.Fatalf("same network: %q %v", got, err)
			}
			if _, err := fetch(a1, addr(epB1), blocked); err == nil {
				t.Fatal("network a reached network b")
			}
			if _, err := fetch(b1, addr(epA1), blocked); err == nil {
				t.Fatal("network b reached network a")
			}
			ids, err := m.fw.networks(ctx)
			if err != nil || len(ids) < 2 {
				t.Fatalf("firewall networks %v %v", ids, err)
			}
		})
	}
}

// A second network connected to a running container gives it eth1 and
// reach into that network; disconnecting takes both away again.
func TestConnectDisconnect(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, "")
	ctx := context.Background()
	for _, n := range []string{"bt-c1", "bt-c2"} {
		if _, err := m.Create(ctx, network.CreateRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	ctr, peer := testNetNS(t), testNetNS(t)
	ctrID := "c" + randHex(63)
	if _, err := m.Attach(ctx, "bt-c1", ctrID, ctr, AttachOptions{Name: "ctr"}); err != nil {
		t.Fatal(err)
	}
	peerEP, err := m.Attach(ctx, "bt-c2", "p"+randHex(63), peer, AttachOptions{Name: "peer"})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, peer, 7001, "peer")
	target := netip.AddrPortFrom(peerEP.IPv4.Addr(), 7001).String()
	if _, err := fetch(ctr, target, blocked); err == nil {
		t.Fatal("reached a network the container is not on")
	}

	ep, err := m.Attach(ctx, "bt-c2", ctrID, ctr, AttachOptions{Name: "ctr"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.IfName != "eth1" {
		t.Fatalf("second interface %q, want eth1", ep.IfName)
	}
	if links := nsRun(t, ctr, "ip", "-o", "link"); !strings.Contains(links, "eth0@") || !strings.Contains(links, "eth1@") {
		t.Fatalf("links after connect:\n%s", links)
	}
	if got, err := fetch(ctr, target, 2*time.Second); err != nil || got != "peer" {
		t.Fatalf("after connect: %q %v", got, err)
	}
	// Names on both networks resolve through the first network's server.
	eps, err := m.Endpoints(ctrID)
	if err != nil || len(eps) != 2 {
		t.Fatalf("endpoints %v %v", eps, err)
	}
	conf, _ := ResolvConf(nil, ResolvOptions{Embedded: eps["bt-c1"].DNSServer})
	if addrs, err := resolverIn(t, ctr, conf).LookupNetIP(ctx, "ip4", "peer"); err != nil || len(addrs) != 1 || addrs[0] != peerEP.IPv4.Addr() {
		t.Fatalf("peer on the second network: %v %v", addrs, err)
	}
	if _, err := m.Attach(ctx, "bt-c2", ctrID, ctr, AttachOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second attach to one network: %v", err)
	}

	if err := m.Detach(ctx, "bt-c2", ctrID); err != nil {
		t.Fatal(err)
	}
	if links := nsRun(t, ctr, "ip", "-o", "link"); strings.Contains(links, "eth1@") || !strings.Contains(links, "eth0@") {
		t.Fatalf("links after disconnect:\n%s", links)
	}
	if _, err := fetch(ctr, target, blocked); err == nil {
		t.Fatal("still reaches the disconnected network")
	}
	if err := m.Detach(ctx, "bt-c2", ctrID); err == nil || !strings.Contains(err.Error(), "is not connected") {
		t.Fatalf("second disconnect: %v", err)
	}
}

// With enable_icc=false the network's containers cannot reach each other
// but still reach their gateway (the host). Bridged traffic meets the
// firewall through br_netfilter, as docker's ICC does.
func TestNoICC(t *testing.T) {
	requireRoot(t)
	if v, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil || strings.TrimSpace(string(v)) != "1" {
		t.Skip("br_netfilter is not filtering bridged traffic on this host")
	}
	t.Parallel()
	m, _ := testManager(t, "")
	ctx := context.Background()
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-noicc", Options: map[string]string{optICC: "false"}}); err != nil {
		t.Fatal(err)
	}
	a, b := testNetNS(t), testNetNS(t)
	epA, err := m.Attach(ctx, "bt-noicc", "a"+randHex(63), a, AttachOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Attach(ctx, "bt-noicc", "b"+randHex(63), b, AttachOptions{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	serve(t, a, 7002, "a")
	if _, err := fetch(b, netip.AddrPortFrom(epA.IPv4.Addr(), 7002).String(), blocked); err == nil {
		t.Fatal("containers of a network without ICC reached each other")
	}
	gw := listenHost(t, epA.Gateway4, "gateway")
	if got, err := fetch(b, gw.String(), 2*time.Second); err != nil || got != "gateway" {
		t.Fatalf("the gateway from a network without ICC: %q %v", got, err)
	}
}
