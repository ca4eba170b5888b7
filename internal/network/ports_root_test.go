package network

import (
	"context"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
)

// freePort is a TCP port nothing on 127.0.0.1 holds now, below the
// ephemeral range (32768 and up): a port the kernel hands out to the
// connections and -P bindings of the tests running beside this one
// could be taken again by the time the test checks it is free.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port in 20000-32000")
	return 0
}

// A port published on 127.0.0.1 serves from the host's loopback to a
// server in the container; a random port (-P) is chosen from the
// ephemeral range and reported; a container on another network reaches
// the published port through its own gateway; the same host port for a
// second container is refused with docker's message and leaves nothing.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, "")
	ctx := context.Background()
	for _, n := range []string{"bt-pub", "bt-other"} {
		if _, err := m.Create(ctx, network.CreateRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	web, other, third := testNetNS(t), testNetNS(t), testNetNS(t)
	hostPort := freePort(t)
	bindings := network.PortMap{
		network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort)}},
	}
	exposed := network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("81/tcp"): {}}
	webID := "w" + randHex(63)
	ep, err := m.Attach(ctx, "bt-pub", webID, web, AttachOptions{Name: "web", PortBindings: bindings, ExposedPorts: exposed, PublishAll: true})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, web, 80, "port 80")
	serve(t, web, 81, "port 81")

	if b := ep.Ports[network.MustParsePort("80/tcp")]; len(b) != 1 || b[0].HostIP != netip.MustParseAddr("127.0.0.1") || b[0].HostPort != strconv.Itoa(hostPort) {
		t.Fatalf("80/tcp bindings %v", b)
	}
	random := ep.Ports[network.MustParsePort("81/tcp")]
	if len(random) != 1 || !random[0].HostIP.IsUnspecified() {
		t.Fatalf("81/tcp bindings %v", random)
	}
	rp, _ := strconv.Atoi(random[0].HostPort)
	if rp < 1024 {
		t.Fatalf("random host port %d is not from the ephemeral range", rp)
	}
	if got, err := fetch("", "127.0.0.1:"+strconv.Itoa(hostPort), 2*time.Second); err != nil || got != "port 80" {
		t.Fatalf("127.0.0.1:%d from the host: %q %v", hostPort, got, err)
	}
	if got, err := fetch("", "127.0.0.1:"+random[0].HostPort, 2*time.Second); err != nil || got != "port 81" {
		t.Fatalf("127.0.0.1:%s (-P) from the host: %q %v", random[0].HostPort, got, err)
	}
	if ports, err := m.Ports(webID); err != nil || len(ports) != 2 {
		t.Fatalf("Ports: %v %v", ports, err)
	}

	// From a container on another network, through its gateway (a host
	// address), to the port published on all addresses.
	otherEP, err := m.Attach(ctx, "bt-other", "o"+randHex(63), other, AttachOptions{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fetch(other, net.JoinHostPort(otherEP.Gateway4.String(), random[0].HostPort), 2*time.Second); err != nil || got != "port 81" {
		t.Fatalf("published port from another network: %q %v", got, err)
	}

	// The same host port again: refused, nothing left of the attempt.
	before := snapshot(t, m)
	_, err = m.Attach(ctx, "bt-pub", "t"+randHex(63), third, AttachOptions{Name: "third", PortBindings: bindings})
	if err == nil || !strings.Contains(err.Error(), "port is already allocated") {
		t.Fatalf("second binding of 127.0.0.1:%d: %v", hostPort, err)
	}
	if after := snapshot(t, m); after != before {
		t.Fatalf("a refused attach left state: before %+v after %+v", before, after)
	}

	// Detach releases the host port: it can be bound again.
	if err := m.DetachAll(ctx, webID); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(hostPort))
	if err != nil {
		t.Fatalf("host port still held after detach: %v", err)
	}
	ln.Close()
}

func TestPortRangeFirstFree(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, "")
	ctx := context.Background()
	if _, err := m.Create(ctx, network.CreateRequest{Name: "bt-range"}); err != nil {
		t.Fatal(err)
	}
	p := freePort(t)
	hold, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Skip("port taken meanwhile")
	}
	defer hold.Close()
	rangeSpec := strconv.Itoa(p) + "-" + strconv.Itoa(p+5)
	ep, err := m.Attach(ctx, "bt-range", "r"+randHex(63), testNetNS(t), AttachOptions{PortBindings: network.PortMap{
		network.MustParsePort("53/udp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: rangeSpec}},
		network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: rangeSpec}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// UDP p is free (only TCP p is held); TCP takes the next.
	if b := ep.Ports[network.MustParsePort("53/udp")]; len(b) != 1 || b[0].HostPort != strconv.Itoa(p) {
		t.Errorf("53/udp in %s: %v", rangeSpec, b)
	}
	if b := ep.Ports[network.MustParsePort("80/tcp")]; len(b) != 1 || b[0].HostPort == strconv.Itoa(p) {
		t.Errorf("80/tcp in %s: %v (port %d is held)", rangeSpec, b, p)
	}
}
