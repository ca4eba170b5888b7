package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestNetworkPortsIsolationInternal: a port published on 127.0.0.1
// serves from the host to the server in the container, docker port and
// ps show the binding, a second container cannot take a host port in
// use (a clear error, nothing left running); -P publishes the exposed
// ports; containers on different networks cannot reach each other; an
// --internal network has no default route.
func TestNetworkPortsIsolationInternal(t *testing.T) {
	ref := seed(t)
	d := netDaemon(t)
	d.mustDocker(t, "pull", "-q", ref)
	// Bindings without an address take the network's host binding:
	// loopback here, so nothing of the test listens beyond the machine.
	d.mustDocker(t, "network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "pub")
	d.mustDocker(t, "network", "create", "other")
	d.mustDocker(t, "network", "create", "--internal", "sealed")

	d.startWeb(t, ref, "web", "published", "--network", "pub", "-p", "127.0.0.1::8080", "--expose", "9090", "-P")
	port := strings.TrimSpace(d.mustDocker(t, "port", "web", "8080"))
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+$`).MatchString(port) {
		t.Fatalf("docker port web 8080: %q", port)
	}
	body, err := httpGet(t, "http://"+port+"/")
	if err != nil || body != "published\n" {
		t.Fatalf("GET http://%s/ from the host: %q %v", port, body, err)
	}
	all := d.mustDocker(t, "port", "web")
	mustContain(t, "docker port web", all, "8080/tcp -> "+port, "9090/tcp -> 127.0.0.1:")
	mustContain(t, "ps", d.mustDocker(t, "ps", "--format", "{{.Ports}}"), port+"->8080/tcp")
	var ins []struct {
		NetworkSettings struct {
			Ports map[string][]struct{ HostIp, HostPort string }
		}
	}
	if err := json.Unmarshal([]byte(d.mustDocker(t, "inspect", "web")), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("inspect web: %v", err)
	}
	if b := ins[0].NetworkSettings.Ports["8080/tcp"]; len(b) != 1 || b[0].HostIp+":"+b[0].HostPort != port {
		t.Errorf("inspect web: ports %+v", ins[0].NetworkSettings.Ports)
	}
	mustContain(t, "berth port web", d.mustBerth(t, "port", "web", "8080"), port)

	// The host port is taken: the run fails and leaves nothing running.
	r := d.docker(t, "run", "-d", "--name", "clash", "--network", "pub", "-p", port+":8080", ref, "sleep", "100")
	if r.Code == 0 {
		t.Fatalf("a second container took host port %s", port)
	}
	mustContain(t, "run on a host port in use", r.Stderr, strings.TrimPrefix(port, "127.0.0.1:"))
	if st := strings.TrimSpace(d.mustDocker(t, "inspect", "-f", "{{.State.Status}}", "clash")); st == "running" {
		t.Errorf("the container whose port clashed is %s", st)
	}
	if n := d.inspectNetwork(t, "pub"); len(n.Containers) != 1 {
		t.Errorf("network pub holds %d endpoints after the failed start, want web's alone: %+v", len(n.Containers), n.Containers)
	}

	// Isolation: the server's address answers on its network, not from
	// another one.
	ip := d.containerNets(t, "web")["pub"].IPAddress.String()
	if out := d.mustDocker(t, "run", "--rm", "--network", "pub", ref, "sh", "-c", inTime(5, "wget -qO- http://"+ip+":8080/")); out != "published\n" {
		t.Errorf("wget from the same network: %q", out)
	}
	if r := d.docker(t, "run", "--rm", "--network", "other", ref, "sh", "-c", inTime(2, "wget -qO- http://"+ip+":8080/")); r.Code == 0 {
		t.Errorf("a container on another network reached %s:8080: %q", ip, r.Stdout)
	}

	// Internal: no default route; a normal network has one.
	routes := d.mustDocker(t, "run", "--rm", "--network", "sealed", ref, "ip", "route")
	if strings.Contains(routes, "default") || !strings.Contains(routes, "dev eth0") {
		t.Errorf("routes on an internal network:\n%s", routes)
	}
	gw := d.inspectNetwork(t, "other").IPAM.Config[0].Gateway.String()
	mustContain(t, "routes on a normal network", d.mustDocker(t, "run", "--rm", "--network", "other", ref, "ip", "route"), "default via "+gw)

	// Stopped, the server holds no port any more.
	d.mustDocker(t, "stop", "-t", "1", "web")
	if _, err := httpGet(t, "http://"+port+"/"); err == nil {
		t.Errorf("%s still answers after web stopped", port)
	}
	if out := strings.TrimSpace(d.mustDocker(t, "port", "web")); out != "" {
		t.Errorf("docker port of a stopped container: %q", out)
	}
}
