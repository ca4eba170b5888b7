package network

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/network"
)

func TestParseHostPorts(t *testing.T) {
	for s, want := range map[string][2]uint16{"": {0, 0}, "0": {0, 0}, "8080": {8080, 8080}, "8000-8010": {8000, 8010}, "65535": {65535, 65535}} {
		f, l, err := parseHostPorts(s)
		if err != nil || f != want[0] || l != want[1] {
			t.Errorf("parseHostPorts(%q) = %d %d %v", s, f, l, err)
		}
	}
	for _, s := range []string{"0-5", "65536", "10-5", "a", "1-", "-1", "1-2-3", " 80"} {
		if _, _, err := parseHostPorts(s); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("parseHostPorts(%q): %v, want invalid", s, err)
		}
	}
}

func TestPortRequests(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	def := netip.IPv4Unspecified()
	bindings := network.PortMap{
		network.MustParsePort("53/udp"): {{HostPort: "5353"}},
		network.MustParsePort("80/tcp"): {{HostIP: lo, HostPort: "8000-8010"}, {HostIP: netip.MustParseAddr("::1")}},
	}
	exposed := network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("9000/tcp"): {}}
	reqs, err := portRequests(bindings, exposed, true, def)
	if err != nil {
		t.Fatal(err)
	}
	want := []portRequest{
		{hostIP: def, first: 5353, last: 5353, containerPort: 53, proto: "udp"},
		{hostIP: lo, first: 8000, last: 8010, containerPort: 80, proto: "tcp"},
		{hostIP: netip.MustParseAddr("::1"), containerPort: 80, proto: "tcp"},
		{hostIP: def, containerPort: 9000, proto: "tcp"},
	}
	if !slices.Equal(reqs, want) {
		t.Errorf("requests\n%+v\nwant\n%+v", reqs, want)
	}
	// Without -P the exposed port without a binding is not published.
	if reqs, _ := portRequests(bindings, exposed, false, def); len(reqs) != 3 {
		t.Errorf("without -P: %+v", reqs)
	}
	if _, err := portRequests(network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "x"}}}, nil, false, def); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad host port: %v", err)
	}
}

// Reservations hold ports: a second bind fails with docker's message; a
// range skips the held port; release frees everything. Loopback, no root
// needed (ports above 1023).
func TestReservePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	held, err := reservePorts([]portRequest{{hostIP: lo, containerPort: 80, proto: "tcp"}, {hostIP: lo, containerPort: 53, proto: "udp"}})
	if err != nil {
		t.Fatal(err)
	}
	p := held[0].m.HostPort
	if p == 0 || held[0].m.ContainerPort != 80 || held[1].m.Proto != "udp" {
		t.Fatalf("held %+v", held)
	}
	if _, err := net.Listen("tcp", netip.AddrPortFrom(lo, p).String()); err == nil {
		t.Fatal("a reserved port could be listened on")
	}
	_, err = reservePorts([]portRequest{{hostIP: lo, first: p, last: p, containerPort: 1, proto: "tcp"}})
	if err == nil || err.Error() != "Bind for 127.0.0.1:"+strconv.Itoa(int(p))+" failed: port is already allocated" {
		t.Fatalf("second reservation: %v", err)
	}
	if p < 65535 {
		got, err := reservePorts([]portRequest{{hostIP: lo, first: p, last: p + 1, containerPort: 1, proto: "tcp"}})
		if err == nil {
			if got[0].m.HostPort != p+1 {
				t.Errorf("range %d-%d gave %d", p, p+1, got[0].m.HostPort)
			}
			releasePorts(got)
		}
	}
	if _, err := reservePorts([]portRequest{{hostIP: netip.MustParseAddr("192.0.2.250"), containerPort: 1, proto: "tcp"}}); err == nil || !strings.Contains(err.Error(), "bind host port") {
		t.Errorf("an address the host does not have: %v", err)
	}
	releasePorts(held)
	ln, err := net.Listen("tcp", netip.AddrPortFrom(lo, p).String())
	if err != nil {
		t.Fatalf("released port: %v", err)
	}
	ln.Close()
	pm := portMap([]portMapping{{HostIP: lo, HostPort: 8080, ContainerPort: 80, Proto: "tcp"}})
	if b := pm[network.MustParsePort("80/tcp")]; len(b) != 1 || b[0].HostPort != "8080" || b[0].HostIP != lo {
		t.Errorf("portMap %v", pm)
	}
	cm := cniPortMappings([]portMapping{{HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {HostIP: lo, HostPort: 1, ContainerPort: 2, Proto: "udp"}})
	if _, ok := cm[0]["hostIP"]; ok || cm[1]["hostIP"] != "127.0.0.1" || cm[0]["hostPort"] != 8080 {
		t.Errorf("cni port mappings %v", cm)
	}
}

func TestSubnets(t *testing.T) {
	routes := []route{
		{Prefix: netip.MustParsePrefix("172.17.0.0/16"), Dev: "docker0"},
		{Prefix: netip.MustParsePrefix("172.18.5.0/24"), Dev: "eth1"},
		{Prefix: netip.MustParsePrefix("172.20.0.0/14"), Type: "unreachable"},
	}
	taken := []netip.Prefix{netip.MustParsePrefix("172.19.0.0/16")}
	p, err := pickSubnet4(taken, routes)
	if err != nil || p != netip.MustParsePrefix("172.24.0.0/16") {
		t.Fatalf("pickSubnet4 = %s %v", p, err)
	}
	// Every /16 of 172.17-31 taken: the first free /20 of 192.168.
	var all []netip.Prefix
	for _, q := range defaultPools4()[:15] {
		all = append(all, q)
	}
	all = append(all, netip.MustParsePrefix("192.168.0.0/24"))
	if p, err := pickSubnet4(all, nil); err != nil || p != netip.MustParsePrefix("192.168.16.0/20") {
		t.Fatalf("after the /16s: %s %v", p, err)
	}
	if _, err := pickSubnet4(defaultPools4(), nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("no pool left: %v", err)
	}
	p6, err := pickSubnet6(nil, nil)
	if err != nil || p6.Bits() != 64 || p6.Addr().As16()[0] != 0xfd {
		t.Errorf("pickSubnet6 = %s %v", p6, err)
	}
	// A network's own bridge route is no clash; another's is.
	own := netip.MustParsePrefix("172.17.0.0/16")
	if err := subnetClash(own, nil, routes, "docker0"); err != nil {
		t.Errorf("own route: %v", err)
	}
	if err := subnetClash(netip.MustParsePrefix("172.18.0.0/16"), nil, routes, "br-x"); err == nil || !strings.Contains(err.Error(), "host's route to 172.18.5.0/24 (eth1)") {
		t.Errorf("host route clash: %v", err)
	}
	if err := subnetClash(netip.MustParsePrefix("172.19.1.0/24"), taken, nil, ""); err == nil || !strings.Contains(err.Error(), "Pool overlaps") {
		t.Errorf("network clash: %v", err)
	}
	if firstHost(own) != netip.MustParseAddr("172.17.0.1") || lastHost(own) != netip.MustParseAddr("172.17.255.254") || lastAddr(own) != netip.MustParseAddr("172.17.255.255") {
		t.Error("first/last host")
	}
	if lastHost(netip.MustParsePrefix("fd00::/120")) != netip.MustParseAddr("fd00::ff") {
		t.Error("IPv6 has no broadcast address")
	}
}

func TestConflist(t *testing.T) {
	r := &record{Network: network.Network{ID: "abc", Internal: true, IPAM: network.IPAM{Config: []network.IPAMConfig{
		{Subnet: netip.MustParsePrefix("10.9.0.0/16"), Gateway: netip.MustParseAddr("10.9.0.1"), IPRange: netip.MustParsePrefix("10.9.255.0/24")},
		{Subnet: netip.MustParsePrefix("fd00:9::/64"), Gateway: netip.MustParseAddr("fd00:9::1")},
	}}}, Bridge: "br-abc", MTU: 1400}
	data, err := r.conflist("/run/ipam", "nftables", false)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name    string
		Plugins []map[string]any
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "abc" || len(got.Plugins) != 1 {
		t.Fatalf("list %s", data)
	}
	br := got.Plugins[0]
	if br["type"] != "bridge" || br["isDefaultGateway"] != false || br["isGateway"] != true || br["ipMasq"] != false || br["mtu"] != 1400.0 {
		t.Errorf("bridge plugin %v", br)
	}
	s := string(data)
	for _, want := range []string{`"rangeStart": "10.9.255.0"`, `"rangeEnd": "10.9.255.254"`, `"dataDir": "/run/ipam"`, `"subnet": "fd00:9::/64"`} {
		if !strings.Contains(s, want) {
			t.Errorf("conflist lacks %s:\n%s", want, s)
		}
	}
	r.Internal = false
	data, _ = r.conflist("/run/ipam", "iptables", true)
	if !strings.Contains(string(data), `"isDefaultGateway": true`) || !strings.Contains(string(data), `"backend": "iptables"`) || !strings.Contains(string(data), `"portMappings": true`) {
		t.Errorf("with ports:\n%s", data)
	}
}

func TestNewRecord(t *testing.T) {
	m := &Manager{}
	r, err := m.newRecord(network.CreateRequest{Name: "n1", Options: map[string]string{optICC: "false", optMasquerade: "0", optHostBindingV4: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ICC || r.Masquerade || r.HostBinding != netip.MustParseAddr("127.0.0.1") || r.Bridge != "br-"+r.ID[:12] || !r.EnableIPv4 || r.EnableIPv6 {
		t.Errorf("record %+v", r)
	}
	for _, c := range []struct {
		req  network.CreateRequest
		want string
	}{
		{network.CreateRequest{Name: ""}, "invalid network name"},
		{network.CreateRequest{Name: "-x"}, "invalid network name"},
		{network.CreateRequest{Name: "none"}, "operation is not permitted on predefined none network"},
		{network.CreateRequest{Name: "x", Driver: "macvlan"}, "not supported"},
		{network.CreateRequest{Name: "x", Scope: "swarm"}, "scope"},
		{network.CreateRequest{Name: "x", ConfigOnly: true}, "config-only"},
		{network.CreateRequest{Name: "x", EnableIPv4: ptr(false)}, "IPv4 or IPv6 must be enabled"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Driver: "dhcp"}}, "IPAM driver"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Gateway: netip.MustParseAddr("10.0.0.1")}}}}, "needs a subnet"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/31")}}}}, "too small"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("127.0.0.0/8")}}}}, "not usable"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.255")}}}}, "invalid gateway"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24"), IPRange: netip.MustParsePrefix("10.0.1.0/25")}}}}, "invalid ip-range"},
		{network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24")}, {Subnet: netip.MustParsePrefix("10.1.0.0/24")}}}}, "more than one IPv4"},
		{network.CreateRequest{Name: "x", Options: map[string]string{optICC: "maybe"}}, "want true or false"},
		{network.CreateRequest{Name: "x", Options: map[string]string{optBridgeName: "a-very-long-bridge-name"}}, "invalid bridge name"},
		{network.CreateRequest{Name: "x", Options: map[string]string{optHostBindingV4: "::1"}}, "IPv4 address"},
	} {
		if _, err := m.newRecord(c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
}

func TestHosts(t *testing.T) {
	got, err := Hosts(HostsOptions{
		Hostname: "web", Domainname: "example.test",
		Addrs:      []netip.Addr{netip.MustParseAddr("172.18.0.2")},
		ExtraHosts: []string{"db:10.0.0.5", "v6=[fd00::5]", "gw:host-gateway"}, HostGateway: netip.MustParseAddr("172.18.0.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "10.0.0.5\tdb\n", "fd00::5\tv6\n", "172.18.0.1\tgw\n", "172.18.0.2\tweb.example.test web\n"} {
		if !strings.Contains(string(got), line) {
			t.Errorf("hosts lacks %q:\n%s", line, got)
		}
	}
	for _, bad := range []string{"nohost", "a b:1.2.3.4", "x:1.2.3", "gw:host-gateway"} {
		if _, err := Hosts(HostsOptions{ExtraHosts: []string{bad}}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("--add-host %q: %v", bad, err)
		}
	}
	if _, err := Hosts(HostsOptions{Hostname: "a\nb", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}); err == nil {
		t.Error("a hostname with a newline")
	}
}

func TestResolvConf(t *testing.T) {
	host := []byte("# comment\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nnameserver ::1\nsearch corp.test lab.test\noptions edns0 ndots:2\n")
	for _, c := range []struct {
		o    ResolvOptions
		want string
	}{
		// Default bridge: the host's, loopback servers dropped.
		{ResolvOptions{}, "nameserver 10.1.1.1\nsearch corp.test lab.test\noptions edns0 ndots:2\n"},
		// User network: the embedded server only, the host's search and options.
		{ResolvOptions{Embedded: netip.MustParseAddr("172.20.0.1")}, "nameserver 172.20.0.1\nsearch corp.test lab.test\noptions edns0 ndots:2\n"},
		// --dns, --dns-search, --dns-option replace.
		{ResolvOptions{DNS: []netip.Addr{netip.MustParseAddr("9.9.9.9")}, Search: []string{"a.test"}, Options: []string{"rotate"}}, "nameserver 9.9.9.9\nsearch a.test\noptions rotate\n"},
		{ResolvOptions{Search: []string{"."}}, "nameserver 10.1.1.1\noptions edns0 ndots:2\n"},
		// Host network: the host's as they are.
		{ResolvOptions{HostNetwork: true}, "nameserver 127.0.0.53\nnameserver 10.1.1.1\nnameserver ::1\nsearch corp.test lab.test\noptions edns0 ndots:2\n"},
	} {
		got, err := ResolvConf(host, c.o)
		if err != nil {
			t.Fatal(err)
		}
		if want := "# Generated by berth.\n" + c.want; string(got) != want {
			t.Errorf("%+v:\n%s\nwant\n%s", c.o, got, want)
		}
	}
	// Only loopback servers: docker's fallback.
	got, _ := ResolvConf([]byte("nameserver 127.0.0.1\n"), ResolvOptions{})
	if !strings.Contains(string(got), "nameserver 8.8.8.8\n") {
		t.Errorf("fallback:\n%s", got)
	}
	if _, err := ResolvConf(host, ResolvOptions{Options: []string{"a b"}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("option with a space: %v", err)
	}
	// systemd-resolved's stub is read through to its upstream file only
	// when the host names nothing else.
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	os.WriteFile(p, []byte("nameserver 127.0.0.1\n"), 0o644)
	if data, _ := ReadHostResolvConf(p); string(data) != "nameserver 127.0.0.1\n" {
		t.Errorf("ReadHostResolvConf: %q", data)
	}
	if data, err := ReadHostResolvConf(filepath.Join(dir, "missing")); err != nil || len(data) != 0 {
		t.Errorf("missing file: %q %v", data, err)
	}
}

func TestFilters(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := &record{Network: network.Network{Name: "old", Created: now.Add(-48 * time.Hour), Labels: map[string]string{"a": "1"}}}
	recent := &record{Network: network.Network{Name: "new", Created: now.Add(-time.Minute), Labels: map[string]string{"a": "2", "b": ""}}}
	for _, c := range []struct {
		f    map[string][]string
		want []string
	}{
		{map[string][]string{"until": {"24h"}}, []string{"old"}},
		{map[string][]string{"until": {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)}}, []string{"old"}},
		{map[string][]string{"until": {"2026-01-02T03:00:00Z"}}, []string{"old"}},
		{map[string][]string{"label": {"a"}}, []string{"old", "new"}},
		{map[string][]string{"label": {"a=2", "b"}}, []string{"new"}},
		{map[string][]string{"label!": {"a=1"}}, []string{"new"}},
	} {
		match, err := pruneFilter(c.f, now)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range []*record{old, recent} {
			if match(r) {
				got = append(got, r.Name)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.f, got, c.want)
		}
	}
	for _, f := range []map[string][]string{{"until": {"yesterday"}}, {"dangling": {"true"}}} {
		if _, err := pruneFilter(f, now); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%v: %v", f, err)
		}
	}
}

func TestSplitRule(t *testing.T) {
	args, err := splitRule(`-A BERTH-FORWARD -i br-1 ! -o br-1 -m comment --comment "berth:abc def" -j DROP`)
	want := []string{"-A", "BERTH-FORWARD", "-i", "br-1", "!", "-o", "br-1", "-m", "comment", "--comment", "berth:abc def", "-j", "DROP"}
	if err != nil || !slices.Equal(args, want) {
		t.Errorf("splitRule: %q %v", args, err)
	}
	if _, err := splitRule(`-A X "open`); err == nil {
		t.Error("unbalanced quote accepted")
	}
}

func TestDNSNames(t *testing.T) {
	got := dnsNames("web", []string{"www", "web"}, "0123456789abcdef", "web")
	if want := []string{"web", "www", "0123456789ab"}; !slices.Equal(got, want) {
		t.Errorf("dnsNames = %v, want %v", got, want)
	}
}
