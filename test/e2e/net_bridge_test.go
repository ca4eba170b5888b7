package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestNetworkDefaultBridge: containers run without --network are on the
// default bridge: an address in its subnet, a default route through its
// gateway, published ports served from the host's loopback, each other
// reachable by address, no DNS names and the host's name servers in
// resolv.conf (docker's default bridge has no name resolution; nothing
// here looks a name up, which would ask the host's servers). The
// default bridge outlives berthd, as docker0 outlives dockerd: the
// harness removes its host side (removeHostSides).
func TestNetworkDefaultBridge(t *testing.T) {
	ref := seed(t)
	d := netDaemon(t)
	d.mustDocker(t, "pull", "-q", ref)

	d.startWeb(t, ref, "web", "on-default", "-p", "127.0.0.1::8080")
	n := d.inspectNetwork(t, "bridge")
	bridge := n.Options["com.docker.network.bridge.name"]
	if len(n.IPAM.Config) != 1 || !strings.HasPrefix(bridge, "bt") {
		t.Fatalf("network inspect bridge: %+v", n)
	}
	subnet := n.IPAM.Config[0].Subnet
	gw := n.IPAM.Config[0].Gateway

	ep, ok := d.containerNets(t, "web")["bridge"]
	if !ok || !subnet.Contains(ep.IPAddress) || ep.Gateway != gw || len(ep.DNSNames) != 0 {
		t.Fatalf("inspect of web on the default bridge: %+v (subnet %s)", ep, subnet)
	}
	port := strings.TrimSpace(d.mustDocker(t, "port", "web", "8080/tcp"))
	if body, err := httpGet(t, "http://"+port+"/"); err != nil || body != "on-default\n" {
		t.Errorf("GET http://%s/: %q %v", port, body, err)
	}
	out := d.mustDocker(t, "run", "--rm", ref, "sh", "-c", "ip route; cat /etc/resolv.conf; "+inTime(5, "wget -qO- http://"+ep.IPAddress.String()+":8080/"))
	mustContain(t, "a second container on the default bridge", out, "default via "+gw.String(), "on-default")
	if strings.Contains(out, "nameserver "+gw.String()) {
		t.Errorf("resolv.conf on the default bridge names the gateway:\n%s", out)
	}
	var cs map[string]any
	if err := json.Unmarshal([]byte(d.mustDocker(t, "network", "inspect", "-f", "{{json .Containers}}", "bridge")), &cs); err != nil || len(cs) != 1 {
		t.Errorf("network inspect bridge: containers %v %v", cs, err)
	}
}

// uniqueBridge names a test daemon's default bridge.
func uniqueBridge() string { return fmt.Sprintf("bt%d", time.Now().UnixNano()%1e9) }

// removeHostSides removes, for each network the stopped daemon of
// dataRoot still records, what berthd made of it on the host.
func removeHostSides(t *testing.T, dataRoot string) {
	paths, _ := filepath.Glob(filepath.Join(dataRoot, "network", "*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r struct {
			ID     string `json:"Id"`
			Bridge string `json:"bridge"`
			IPAM   struct {
				Config []struct{ Subnet netip.Prefix }
			}
		}
		if json.Unmarshal(data, &r) != nil || r.Bridge == "" {
			continue
		}
		if _, err := os.Stat("/sys/class/net/" + r.Bridge); err != nil {
			continue // never made (a network no container used), or gone
		}
		var v4 netip.Prefix
		for _, c := range r.IPAM.Config {
			if c.Subnet.Addr().Is4() {
				v4 = c.Subnet
				break
			}
		}
		removeBridgeHostSide(t, r.Bridge, r.ID, v4)
	}
}

// removeBridgeHostSide removes what berthd made of a network on the host
// and leaves: its bridge, its unreachable route, its nftables chains and
// mappings (berth's table inet berth).
func removeBridgeHostSide(t *testing.T, bridge, id string, subnet netip.Prefix) {
	if out, err := exec.Command("ip", "link", "del", "dev", bridge).CombinedOutput(); err != nil {
		t.Errorf("ip link del %s: %v %s", bridge, err, out)
	}
	if subnet.IsValid() {
		exec.Command("ip", "route", "del", "unreachable", subnet.String(), "metric", "4096").Run()
	}
	if len(id) < 12 || !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(id) {
		return
	}
	if err := exec.Command("nft", "list", "table", "inet", "berth").Run(); err != nil {
		return // iptables, or no table left
	}
	// One command at a time: a piece that is not there fails alone.
	p := "n-" + id[:12]
	var cmds []string
	for _, m := range []string{"fwd_in", "fwd_out", "local_in", "bridges"} {
		cmds = append(cmds, fmt.Sprintf(`delete element inet berth %s { "%s" }`, m, bridge))
	}
	if subnet.IsValid() {
		cmds = append(cmds, fmt.Sprintf("delete element inet berth masq4 { %s }", subnet))
	}
	for _, c := range []string{"in", "out", "local", "masq"} {
		cmds = append(cmds, fmt.Sprintf("flush chain inet berth %s-%s", p, c), fmt.Sprintf("delete chain inet berth %s-%s", p, c))
	}
	for _, c := range cmds {
		exec.Command("nft", strings.Fields(c)...).Run()
	}
	if out, _ := exec.Command("nft", "list", "table", "inet", "berth").Output(); strings.Contains(string(out), p) || strings.Contains(string(out), `"`+bridge+`"`) {
		t.Errorf("rules of the default bridge %s are left:\n%s", bridge, out)
	}
}
