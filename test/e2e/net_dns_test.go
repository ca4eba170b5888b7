package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestNetworkNamesAndRunOptions: on a user-defined network, containers
// reach each other by name and by alias; --ip, --mac-address, --add-host,
// --dns-search and --dns-option give the container what it asked for;
// inspect shows the endpoint; the default name resolution stays on the
// network (the name of a container of another network does not
// resolve).
func TestNetworkNamesAndRunOptions(t *testing.T) {
	ref := seed(t)
	d := netDaemon(t)
	d.mustDocker(t, "pull", "-q", ref)
	d.mustDocker(t, "network", "create", "--subnet", "10.231.7.0/24", "front")
	d.mustDocker(t, "network", "create", "back")

	d.startWeb(t, ref, "web", "from-web", "--network", "front", "--network-alias", "www")
	for _, host := range []string{"web", "www"} {
		out := d.mustDocker(t, "run", "--rm", "--network", "front", ref, "wget", "-qO-", "http://"+host+":8080/")
		if out != "from-web\n" {
			t.Errorf("wget http://%s:8080/ from the same network: %q", host, out)
		}
	}
	// Another network does not know the name: the lookup fails at once
	// (the embedded DNS owns no such name there, and its upstream is a
	// closed port on 127.0.0.1).
	r := d.docker(t, "run", "--rm", "--network", "back", ref, "sh", "-c", inTime(5, "wget -qO- http://web:8080/"))
	if r.Code == 0 || !strings.Contains(r.Stderr, "bad address 'web:8080'") {
		t.Errorf("a container on another network looked web up: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}

	nets := d.containerNets(t, "web")
	ep, ok := nets["front"]
	if !ok || len(nets) != 1 {
		t.Fatalf("inspect of web: networks %+v", nets)
	}
	if !netip.MustParsePrefix("10.231.7.0/24").Contains(ep.IPAddress) || ep.IPPrefixLen != 24 || ep.Gateway != netip.MustParseAddr("10.231.7.1") {
		t.Errorf("inspect of web: address %s/%d gateway %s", ep.IPAddress, ep.IPPrefixLen, ep.Gateway)
	}
	if !slices.Contains(ep.Aliases, "www") || !slices.Contains(ep.DNSNames, "web") || !slices.Contains(ep.DNSNames, "www") || ep.MacAddress == "" || ep.NetworkID == "" {
		t.Errorf("inspect of web: endpoint %+v", ep)
	}
	n := d.inspectNetwork(t, "front")
	var found bool
	for _, c := range n.Containers {
		found = found || c.Name == "web" && c.IPv4Address.Addr() == ep.IPAddress
	}
	if !found {
		t.Errorf("network inspect front: containers %+v, want web at %s", n.Containers, ep.IPAddress)
	}

	// A fixed address and MAC, extra hosts, search domains and options;
	// hosts names the container's own address, resolv.conf the
	// embedded server on the gateway.
	out := d.mustDocker(t, "run", "--rm", "--network", "front", "--ip", "10.231.7.77", "--mac-address", "02:42:0a:e7:07:4d",
		"--hostname", "fixed", "--add-host", "db.example.test:10.231.7.200", "--dns-search", "example.test", "--dns-option", "ndots:2",
		ref, "sh", "-c", "ip -o addr show eth0; ip -o link show eth0; cat /etc/hosts /etc/resolv.conf")
	mustContain(t, "run with --ip --mac-address --add-host --dns-search --dns-option", out,
		"inet 10.231.7.77/24", "link/ether 02:42:0a:e7:07:4d", "10.231.7.200\tdb.example.test", "10.231.7.77\tfixed",
		"nameserver 10.231.7.1", "search example.test", "options ndots:2")
	if strings.Contains(out, "nameserver 10.255.") || strings.Count(out, "nameserver") != 1 {
		t.Errorf("resolv.conf on a user network names more than the embedded server:\n%s", out)
	}

	// The same flags through berth, and an alias of berth's own.
	out = d.mustBerth(t, "run", "--rm", "--network", "front", "--ip", "10.231.7.78", "--mac-address", "02:42:0a:e7:07:4e",
		"--network-alias", "self-alias", ref, "sh", "-c", "ip -o addr show eth0; ip -o link show eth0; nslookup self-alias 2>&1")
	mustContain(t, "berth run with --ip --mac-address --network-alias", out,
		"inet 10.231.7.78/24", "link/ether 02:42:0a:e7:07:4e", "Address: 10.231.7.78")

	// The same through berth.
	out = d.mustBerth(t, "run", "--rm", "--network", "front", ref, "wget", "-qO-", "http://www:8080/")
	if out != "from-web\n" {
		t.Errorf("berth run on front: wget www: %q", out)
	}
}
