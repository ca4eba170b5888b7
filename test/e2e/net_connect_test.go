package e2e

import (
	"strings"
	"testing"
)

// TestNetworkConnectDisconnect: a running container gets a second
// interface on connect (with its alias resolvable there and a hosts line
// for the new address) and loses it on disconnect; a stopped container
// connected to a network has it from its next start.
func TestNetworkConnectDisconnect(t *testing.T) {
	ref := seed(t)
	d := netDaemon(t)
	d.mustDocker(t, "pull", "-q", ref)
	d.mustDocker(t, "network", "create", "--subnet", "10.231.8.0/24", "one")
	d.mustDocker(t, "network", "create", "--subnet", "10.231.9.0/24", "two")

	d.startWeb(t, ref, "svc", "svc-body", "--network", "one")
	ifaces := func(name string) string {
		return d.mustDocker(t, "exec", name, "ip", "-o", "-4", "addr", "show")
	}
	if got := ifaces("svc"); !strings.Contains(got, "eth0") || strings.Contains(got, "eth1") {
		t.Fatalf("before connect: %s", got)
	}

	d.mustDocker(t, "network", "connect", "--alias", "api", "--ip", "10.231.9.50", "two", "svc")
	mustContain(t, "interfaces after connect", ifaces("svc"), "eth1", "inet 10.231.9.50/24")
	mustContain(t, "hosts after connect", d.mustDocker(t, "exec", "svc", "cat", "/etc/hosts"), "10.231.9.50\t")
	nets := d.containerNets(t, "svc")
	if len(nets) != 2 || nets["two"].IPAddress.String() != "10.231.9.50" {
		t.Errorf("inspect after connect: %+v", nets)
	}
	if _, ok := d.inspectNetwork(t, "two").Containers[strings.TrimSpace(d.mustDocker(t, "inspect", "-f", "{{.Id}}", "svc"))]; !ok {
		t.Errorf("network inspect two does not list svc")
	}
	if out := d.mustDocker(t, "run", "--rm", "--network", "two", ref, "sh", "-c", inTime(5, "wget -qO- http://api:8080/")); out != "svc-body\n" {
		t.Errorf("wget api on two after connect: %q", out)
	}

	// A second connect to the same network is refused.
	if r := d.docker(t, "network", "connect", "two", "svc"); r.Code == 0 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("second connect: exit %d %s", r.Code, r.Stderr)
	}

	d.mustDocker(t, "network", "disconnect", "two", "svc")
	if got := ifaces("svc"); strings.Contains(got, "eth1") || !strings.Contains(got, "eth0") {
		t.Errorf("after disconnect: %s", got)
	}
	if strings.Contains(d.mustDocker(t, "exec", "svc", "cat", "/etc/hosts"), "10.231.9.50") {
		t.Errorf("hosts keeps the address of the network left")
	}
	if len(d.inspectNetwork(t, "two").Containers) != 0 {
		t.Errorf("network two still lists a container")
	}
	if r := d.docker(t, "network", "disconnect", "two", "svc"); r.Code == 0 || !strings.Contains(r.Stderr, "is not connected") {
		t.Errorf("disconnect of a container not connected: exit %d %s", r.Code, r.Stderr)
	}
	// The network can go now that nothing is on it.
	d.mustDocker(t, "network", "rm", "two")

	// A created container connected before its start has both networks.
	d.mustDocker(t, "network", "create", "--subnet", "10.231.10.0/24", "three")
	d.mustDocker(t, "create", "--name", "late", "--network", "one", ref, "sleep", "100")
	d.mustBerth(t, "network", "connect", "three", "late")
	d.mustDocker(t, "start", "late")
	mustContain(t, "interfaces of a container connected while created", ifaces("late"), "inet 10.231.8.", "inet 10.231.10.")
	d.mustBerth(t, "network", "disconnect", "three", "late")
	if got := ifaces("late"); strings.Contains(got, "10.231.10.") {
		t.Errorf("berth network disconnect: %s", got)
	}
}
