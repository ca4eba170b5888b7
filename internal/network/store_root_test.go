package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/network"
)

func ptr[T any](v T) *T { return &v }

// freeSubnet is a /24 of 10.x that overlaps no host route now, for tests
// that name their subnet.
func freeSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	routes, err := hostRoutes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		b := []byte(randHex(4))
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200 + b[0]%50, b[1] + b[2], 0}), 24)
		if subnetClash(p, nil, routes, "") == nil {
			return p
		}
	}
	t.Fatal("no free 10.x/24")
	return netip.Prefix{}
}

// network create/ls/inspect/rm/prune through the shapes docker's API
// answers with, and the errors it gives for bad requests.
func TestNetworkStore(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, "")
	ctx := context.Background()

	list, err := m.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range list {
		names = append(names, n.Name+"/"+n.Driver+"/"+n.Scope)
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(n.ID) {
			t.Errorf("network %s ID %q", n.Name, n.ID)
		}
	}
	if want := []string{"bridge/bridge/local", "host/host/local", "none/null/local"}; !slices.Equal(names, want) {
		t.Fatalf("predefined networks %v, want %v", names, want)
	}
	def, err := m.Inspect("bridge")
	if err != nil || def.Options[optDefaultBridge] != "true" || def.Options[optBridgeName] != m.cfg.DefaultBridge || len(def.Containers) != 0 {
		t.Fatalf("inspect bridge: %+v %v", def, err)
	}

	subnet := freeSubnet(t)
	gw := subnet.Addr().Next().Next().Next() // .3
	ipRange := netip.PrefixFrom(subnet.Addr(), 25)
	brName := "btst" + randHex(6)
	v6 := netip.MustParsePrefix("fd" + randHex(2) + ":" + randHex(4) + ":" + randHex(4) + "::/64")
	// IPv6 on a network with no container: attaching one would turn on
	// the host's IPv6 forwarding (the bridge plugin does, as docker).
	resp6, err := m.Create(ctx, network.CreateRequest{
		Name: "bt-store6", EnableIPv6: ptr(true),
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: v6}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ins6, err := m.Inspect("bt-store6")
	if err != nil || !ins6.EnableIPv6 || !ins6.EnableIPv4 || len(ins6.IPAM.Config) != 2 ||
		ins6.IPAM.Config[1].Subnet != v6 || ins6.IPAM.Config[1].Gateway != v6.Addr().Next() || !ins6.IPAM.Config[0].Subnet.Addr().Is4() {
		t.Fatalf("IPv6 network: %+v %v", ins6.IPAM, err)
	}
	br6 := "br-" + resp6.ID[:12]
	if addrs := nsRunHost(t, "ip", "-o", "addr", "show", "dev", br6); !strings.Contains(addrs, v6.Addr().Next().String()+"/64") {
		t.Fatalf("IPv6 bridge addresses:\n%s", addrs)
	}
	if r := nsRunHost(t, "ip", "-6", "route", "show", "table", "all", "type", "unreachable", v6.String()); !strings.Contains(r, v6.String()) {
		t.Errorf("no unreachable route for %s", v6)
	}
	if err := m.Remove(ctx, "bt-store6"); err != nil {
		t.Fatal(err)
	}
	if r := nsRunHost(t, "ip", "-6", "route", "show", "table", "all", v6.String()); strings.Contains(r, v6.String()) {
		t.Errorf("IPv6 route left: %s", r)
	}
	assertNetworkGone(t, m, resp6.ID, "", br6, ins6.IPAM.Config[0].Subnet)

	resp, err := m.Create(ctx, network.CreateRequest{
		Name: "bt-store", Internal: true,
		IPAM: &network.IPAM{Config: []network.IPAMConfig{
			{Subnet: subnet, Gateway: gw, IPRange: ipRange},
		}},
		Options: map[string]string{optBridgeName: brName, optMTU: "1400"},
		Labels:  map[string]string{"team": "net", "tier": "db"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := m.Inspect(resp.ID[:10])
	if err != nil {
		t.Fatal(err)
	}
	if ins.Name != "bt-store" || ins.Driver != "bridge" || !ins.Internal || ins.EnableIPv6 || !ins.EnableIPv4 || ins.Labels["tier"] != "db" || ins.Options[optBridgeName] != brName {
		t.Fatalf("inspect: %+v", ins.Network)
	}
	if len(ins.IPAM.Config) != 1 || ins.IPAM.Config[0].Gateway != gw || ins.IPAM.Config[0].IPRange != ipRange {
		t.Fatalf("IPAM: %+v", ins.IPAM)
	}
	// On the host: the bridge with its gateway, an unreachable route for
	// the subnet beside the bridge's.
	if addrs := nsRunHost(t, "ip", "-o", "addr", "show", "dev", brName); !strings.Contains(addrs, gw.String()+"/24") {
		t.Fatalf("bridge addresses:\n%s", addrs)
	}
	if r := nsRunHost(t, "ip", "route", "show", "table", "all", "type", "unreachable", subnet.String()); !strings.Contains(r, subnet.String()) {
		t.Errorf("no unreachable route for %s", subnet)
	}
	// The MTU reaches the container's interface; the address comes from
	// the ip-range; a fixed address and MAC are honoured.
	ns := testNetNS(t)
	ep, err := m.Attach(ctx, "bt-store", "s"+randHex(63), ns, AttachOptions{Name: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if !ipRange.Contains(ep.IPv4.Addr()) || ep.IPv4.Addr() == gw || ep.Gateway4 != gw || ep.IPv6.IsValid() {
		t.Errorf("endpoint %+v: want an address of %s and gateway %s", ep, ipRange, gw)
	}
	if link := nsRun(t, ns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(link, "mtu 1400") {
		t.Errorf("eth0: %s", link)
	}
	fixed := subnet.Addr().Next().Next().Next().Next().Next() // .5
	mac, _ := net.ParseMAC("02:42:ac:11:00:99")
	ns2 := testNetNS(t)
	ep2, err := m.Attach(ctx, "bt-store", "f"+randHex(63), ns2, AttachOptions{Name: "s2", IPv4: fixed, MAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	if ep2.IPv4.Addr() != fixed || ep2.MAC.String() != mac.String() {
		t.Errorf("fixed address and MAC: %+v", ep2)
	}
	if _, err := m.Attach(ctx, "bt-store", "g"+randHex(63), testNetNS(t), AttachOptions{IPv4: netip.MustParseAddr("192.0.2.77")}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("address outside the subnet: %v", err)
	}
	if ins, _ := m.Inspect("bt-store"); len(ins.Containers) != 2 {
		t.Errorf("inspect containers: %+v", ins.Containers)
	}

	// ls filters.
	for _, c := range []struct {
		filters map[string][]string
		want    []string
	}{
		{map[string][]string{"name": {"bt-st"}}, []string{"bt-store"}},
		{map[string][]string{"label": {"team=net"}}, []string{"bt-store"}},
		{map[string][]string{"label": {"team=other"}}, nil},
		{map[string][]string{"type": {"custom"}}, []string{"bt-store"}},
		{map[string][]string{"type": {"builtin"}, "driver": {"null", "host"}}, []string{"host", "none"}},
		{map[string][]string{"id": {resp.ID[:6]}}, []string{"bt-store"}},
		{map[string][]string{"dangling": {"true"}}, nil},
	} {
		got, err := m.List(c.filters)
		if err != nil {
			t.Fatal(err)
		}
		var gotNames []string
		for _, n := range got {
			gotNames = append(gotNames, n.Name)
		}
		if !slices.Equal(gotNames, c.want) {
			t.Errorf("ls %v: %v, want %v", c.filters, gotNames, c.want)
		}
	}
	if _, err := m.List(map[string][]string{"colour": {"red"}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown filter: %v", err)
	}

	// Bad requests: each a clear error of docker's class, nothing made.
	for _, c := range []struct {
		req   network.CreateRequest
		class error
		msg   string
	}{
		{network.CreateRequest{Name: "bt-store"}, errdefs.ErrConflict, "already exists"},
		{network.CreateRequest{Name: "bridge"}, errdefs.ErrForbidden, "operation is not permitted on predefined bridge network"},
		{network.CreateRequest{Name: "bt-ov", Driver: "overlay"}, errdefs.ErrInvalid, `"overlay" is not supported`},
		{network.CreateRequest{Name: "bad name!"}, errdefs.ErrInvalid, "invalid network name"},
		{network.CreateRequest{Name: "bt-clash", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.PrefixFrom(subnet.Addr(), 16)}}}}, errdefs.ErrConflict, "overlaps"},
		{network.CreateRequest{Name: "bt-gw", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: freeSubnet(t), Gateway: netip.MustParseAddr("192.0.2.1")}}}}, errdefs.ErrInvalid, "invalid gateway"},
		{network.CreateRequest{Name: "bt-v6", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("fd99::/64")}}}}, errdefs.ErrInvalid, "--ipv6"},
		{network.CreateRequest{Name: "bt-br", Options: map[string]string{optBridgeName: "bad;name"}}, errdefs.ErrInvalid, "invalid bridge name"},
		{network.CreateRequest{Name: "bt-br2", Options: map[string]string{optBridgeName: brName}}, errdefs.ErrConflict, "already used"},
		{network.CreateRequest{Name: "bt-mtu", Options: map[string]string{optMTU: "9"}}, errdefs.ErrInvalid, "MTU"},
	} {
		_, err := m.Create(ctx, c.req)
		if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("create %s: %v, want %v containing %q", c.req.Name, err, c.class, c.msg)
		}
	}
	// A subnet on a host route (not a default route) is refused too.
	// The route is one of the host's own, not a bridge of a test running
	// beside this one (it may be gone by the time Create looks).
	routes, _ := hostRoutes(ctx)
	for _, r := range routes {
		if r.Type == "" && r.Prefix.Addr().Is4() && r.Prefix.Bits() >= 8 && !r.Prefix.Addr().IsLoopback() && !regexp.MustCompile(`^(br-|bt)`).MatchString(r.Dev) {
			_, err := m.Create(ctx, network.CreateRequest{Name: "bt-host", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: r.Prefix}}}})
			if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "host's route") {
				t.Errorf("subnet %s of the host's route on %s: %v", r.Prefix, r.Dev, err)
			}
			break
		}
	}
	if got, _ := m.List(nil); len(got) != 4 {
		t.Errorf("bad requests left networks: %d listed", len(got))
	}

	// rm: refused for predefined networks, unknown ones, used ones.
	for _, ref := range []string{"bridge", "host", "none"} {
		if err := m.Remove(ctx, ref); !errors.Is(err, errdefs.ErrForbidden) || !strings.Contains(err.Error(), "pre-defined") {
			t.Errorf("rm %s: %v", ref, err)
		}
	}
	if err := m.Remove(ctx, "bt-nosuch"); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "network bt-nosuch not found" {
		t.Errorf("rm unknown: %v", err)
	}
	if err := m.Remove(ctx, "bt-store"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("rm in use: %v", err)
	}
	// prune leaves a network in use and removes an unused one.
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-unused", Labels: map[string]string{"team": "net"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Prune(ctx, map[string][]string{"label": {"team"}})
	if err != nil || !slices.Equal(rep.NetworksDeleted, []string{"bt-unused"}) {
		t.Fatalf("prune: %+v %v", rep, err)
	}

	// A restarted manager finds the networks as they were.
	m.Close()
	m2, err := New(ctx, m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ins2, err := m2.Inspect("bt-store")
	if err != nil || ins2.ID != resp.ID || len(ins2.Containers) != 2 || ins2.IPAM.Config[0].IPRange != ipRange {
		t.Fatalf("after restart: %+v %v", ins2, err)
	}
	m2.Close()
	teardown(t, m)
	assertNetworkGone(t, m, resp.ID, brName, "", subnet)
}

// nsRunHost runs a command in the host's namespace.
func nsRunHost(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
