package network

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
)

// Two containers on a user network reach each other by name and by alias
// through the embedded DNS server; names of the network never go to the
// upstream server.
func TestUserNetworkNamesAndAliases(t *testing.T) {
	t.Parallel()
	m, up := testManager(t, "")
	ctx := context.Background()
	created, err := m.Create(ctx, network.CreateRequest{Name: "bt-names"})
	if err != nil {
		t.Fatal(err)
	}
	srvNS, cliNS := testNetNS(t), testNetNS(t)
	srvID, cliID := "a1"+randHex(62), "b2"+randHex(62)
	srvEP, err := m.Attach(ctx, "bt-names", srvID, srvNS, AttachOptions{Name: "web", Aliases: []string{"www"}, Hostname: "webhost"})
	if err != nil {
		t.Fatal(err)
	}
	cliEP, err := m.Attach(ctx, created.ID, cliID, cliNS, AttachOptions{Name: "client"})
	if err != nil {
		t.Fatal(err)
	}
	if srvEP.IfName != "eth0" || !srvEP.IPv4.IsValid() || srvEP.Gateway4 != srvEP.DNSServer || srvEP.MAC == nil {
		t.Fatalf("endpoint %+v", srvEP)
	}
	if want := []string{"web", "www", srvID[:12], "webhost"}; !slices.Equal(srvEP.DNSNames, want) {
		t.Errorf("DNSNames %v, want %v", srvEP.DNSNames, want)
	}
	serve(t, srvNS, 8080, "hello from web")

	conf, err := ResolvConf([]byte("nameserver 10.255.255.53\noptions ndots:0\n"), ResolvOptions{Embedded: cliEP.DNSServer})
	if err != nil {
		t.Fatal(err)
	}
	res := resolverIn(t, cliNS, conf)
	for _, name := range []string{"web", "www", "WEB", "web.bt-names", srvID[:12], "webhost"} {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		addrs, err := res.LookupNetIP(ctx, "ip4", name)
		cancel()
		if err != nil || len(addrs) != 1 || addrs[0] != srvEP.IPv4.Addr() {
			t.Fatalf("lookup %s from the client: %v %v, want %s", name, addrs, err, srvEP.IPv4.Addr())
		}
		got, err := fetch(cliNS, net.JoinHostPort(addrs[0].String(), "8080"), 2*time.Second)
		if err != nil || got != "hello from web" {
			t.Fatalf("connect to %s: %q %v", name, got, err)
		}
	}
	// AAAA of a local name on an IPv4 network: answered here, empty.
	if addrs, err := res.LookupNetIP(ctx, "ip6", "web"); err == nil || len(addrs) != 0 {
		t.Errorf("AAAA of web: %v %v", addrs, err)
	}
	// Reverse lookup of the server's address names it.
	if names, err := res.LookupAddr(ctx, srvEP.IPv4.Addr().String()); err != nil || len(names) != 1 || names[0] != "web.bt-names." {
		t.Errorf("PTR of %s: %v %v", srvEP.IPv4.Addr(), names, err)
	}
	// A name that is not local goes to the upstream (a fake server on
	// this host's loopback), and only such names do.
	if addrs, err := res.LookupNetIP(ctx, "ip4", "elsewhere.test"); err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("192.0.2.99") {
		t.Errorf("forwarded lookup: %v %v", addrs, err)
	}
	for _, q := range up.seen() {
		if q != "elsewhere.test." {
			t.Errorf("the upstream was asked %q: a local name leaked", q)
		}
	}

	// Inspect shows both containers.
	ins, err := m.Inspect("bt-names")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins.Containers) != 2 || ins.Containers[srvID].Name != "web" || ins.Containers[srvID].IPv4Address != srvEP.IPv4 {
		t.Errorf("inspect containers: %+v", ins.Containers)
	}
	// Remove with endpoints is refused with docker's message.
	err = m.Remove(ctx, "bt-names")
	if err == nil || !strings.Contains(err.Error(), "has active endpoints") || !strings.Contains(err.Error(), `name:"web"`) {
		t.Fatalf("remove with endpoints: %v", err)
	}
	if err := m.DetachAll(ctx, srvID); err != nil {
		t.Fatal(err)
	}
	// A detached container's names are gone: forwarded now, so the fake
	// upstream answers.
	if addrs, _ := res.LookupNetIP(ctx, "ip4", "www"); slices.Contains(addrs, srvEP.IPv4.Addr()) {
		t.Errorf("alias still resolves to the detached container: %v", addrs)
	}
	if err := m.Detach(ctx, "bt-names", cliID); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "bt-names"); err != nil {
		t.Fatal(err)
	}
}
