package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestNetworkCommands: docker network ls, inspect, create, rm and prune
// answer in docker's shapes, through the docker CLI and berth; bad input
// is a clear error that leaves nothing behind (an overlapping subnet, a
// name taken, an unknown network, removing a network a running container
// is on).
func TestNetworkCommands(t *testing.T) {
	ref := seed(t)
	d := netDaemon(t)
	d.mustDocker(t, "pull", "-q", ref)

	// The predefined networks.
	var ls []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(d.mustDocker(t, "network", "ls", "--format", "{{json .}}")), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("network ls --format json: %q: %v", line, err)
		}
		ls = append(ls, m)
	}
	drivers := map[string]any{}
	for _, m := range ls {
		drivers[m["Name"].(string)] = m["Driver"]
		if m["Scope"] != "local" || len(m["ID"].(string)) != 12 {
			t.Errorf("network ls row %v", m)
		}
	}
	if len(ls) != 3 || drivers["bridge"] != "bridge" || drivers["host"] != "host" || drivers["none"] != "null" {
		t.Errorf("network ls of a new daemon: %v", ls)
	}
	table := d.mustDocker(t, "network", "ls")
	if !strings.HasPrefix(table, "NETWORK ID") || !strings.Contains(table, "DRIVER") {
		t.Errorf("network ls table:\n%s", table)
	}

	id := strings.TrimSpace(d.mustDocker(t, "network", "create", "--subnet", "10.231.20.0/24", "--gateway", "10.231.20.254",
		"--ip-range", "10.231.20.128/25", "--label", "team=net", "-o", "com.docker.network.bridge.name=btcmd0", "alpha"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q", id)
	}
	n := d.inspectNetwork(t, "alpha")
	if n.ID != id || n.Driver != "bridge" || n.Scope != "local" || n.Internal || !n.EnableIPv4 || n.Labels["team"] != "net" ||
		len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Subnet.String() != "10.231.20.0/24" || n.IPAM.Config[0].Gateway.String() != "10.231.20.254" ||
		n.IPAM.Driver != "default" || n.Containers == nil {
		t.Errorf("network inspect alpha: %+v", n)
	}
	if got := strings.TrimSpace(d.mustDocker(t, "network", "inspect", "-f", "{{.Name}} {{.Driver}}", id[:10])); got != "alpha bridge" {
		t.Errorf("network inspect by ID prefix with a template: %q", got)
	}
	// Its bridge exists on the host with the gateway's address, and a
	// container's address comes from the range.
	mustContain(t, "the network's bridge", run(t, nil, nil, "ip", "-o", "-4", "addr", "show", "dev", "btcmd0").Stdout, "inet 10.231.20.254/24")
	out := d.mustDocker(t, "run", "--rm", "--network", "alpha", ref, "ip", "-o", "-4", "addr", "show", "eth0")
	mustContain(t, "address from --ip-range", out, "inet 10.231.20.1")
	mustContain(t, "network ls --filter label", d.mustDocker(t, "network", "ls", "--filter", "label=team=net", "--format", "{{.Name}}"), "alpha")
	mustContain(t, "berth network ls", d.mustBerth(t, "network", "ls"), "alpha", "bridge", "local")
	mustContain(t, "berth network inspect", d.mustBerth(t, "network", "inspect", "alpha"), `"Name": "alpha"`, `"Subnet": "10.231.20.0/24"`)

	// Bad input.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "--subnet", "10.231.20.0/25", "overlap"}, "overlaps"},
		{[]string{"network", "create", "alpha"}, "already exists"},
		{[]string{"network", "create", "bridge"}, "operation is not permitted on predefined bridge network"},
		{[]string{"network", "create", "-d", "overlay", "ov"}, "not supported"},
		{[]string{"network", "inspect", "nosuch"}, "nosuch"},
		{[]string{"network", "rm", "nosuch"}, "not found"},
		{[]string{"network", "rm", "bridge"}, "pre-defined"},
		{[]string{"run", "--rm", "--network", "nosuch", ref, "true"}, "network nosuch not found"},
		{[]string{"run", "--rm", "--network", "bridge", "--network-alias", "x", ref, "true"}, "network-scoped alias"},
		{[]string{"run", "--rm", "--network", "alpha", "--ip", "10.99.0.5", ref, "true"}, "10.99.0.5"},
	} {
		r := d.docker(t, c.args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("docker %s: exit %d, stderr %q, want an error with %q", strings.Join(c.args, " "), r.Code, r.Stderr, c.want)
		}
		if c.args[0] != "run" {
			continue
		}
		if r := d.berth(t, c.args...); r.Code != 125 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("berth %s: exit %d, stderr %q, want 125 and an error with %q", strings.Join(c.args, " "), r.Code, r.Stderr, c.want)
		}
	}
	if r := d.berth(t, "run", "--rm", "--network", "alpha", "--ip", "10.231.20.300", ref, "true"); r.Code != 125 || !strings.Contains(r.Stderr, `"10.231.20.300" is not a valid IPv4 address for --ip`) {
		t.Errorf("berth run --ip 10.231.20.300: %+v", r)
	}
	// Docker's status for what no request may do to a predefined network.
	for _, c := range []struct{ method, path, body string }{
		{"DELETE", "/networks/bridge", ""},
		{"DELETE", "/networks/host", ""},
		{"POST", "/networks/create", `{"Name":"none"}`},
	} {
		resp, err := d.request(t, c.method, c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("%s %s: status %d, want 403", c.method, c.path, resp.StatusCode)
		}
	}
	if names := strings.Fields(d.mustDocker(t, "network", "ls", "--format", "{{.Name}}")); len(names) != 4 {
		t.Errorf("networks after the bad input: %v", names)
	}
	if ids := strings.Fields(d.mustDocker(t, "ps", "-q")); len(ids) != 0 {
		t.Errorf("containers running after the bad input: %v", ids)
	}

	// A network in use cannot be removed; once its container stops it
	// can. Prune takes the unused ones and leaves the rest.
	d.mustDocker(t, "run", "-d", "--name", "user", "--network", "alpha", ref, "sleep", "100")
	r := d.docker(t, "network", "rm", "alpha")
	if r.Code == 0 || !strings.Contains(r.Stderr, "active endpoints") {
		t.Errorf("network rm of a network in use: exit %d %s", r.Code, r.Stderr)
	}
	d.mustDocker(t, "network", "create", "unused1")
	d.mustBerth(t, "network", "create", "unused2")
	out = d.mustDocker(t, "network", "prune", "-f")
	mustContain(t, "network prune", out, "Deleted Networks:", "unused1", "unused2")
	if strings.Contains(out, "alpha") {
		t.Errorf("network prune removed a network in use:\n%s", out)
	}
	d.mustDocker(t, "rm", "-f", "user")
	mustContain(t, "network rm", d.mustDocker(t, "network", "rm", "alpha"), "alpha")
	if r := run(t, nil, nil, "ip", "link", "show", "dev", "btcmd0"); r.Code == 0 {
		t.Errorf("the bridge of a removed network is still there")
	}
	if names := strings.Fields(d.mustDocker(t, "network", "ls", "--format", "{{.Name}}")); len(names) != 3 {
		t.Errorf("networks at the end: %v", names)
	}
}
