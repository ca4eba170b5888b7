package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The network tests run berthd with a default bridge of their own name
// (never berth0, which a berthd of the machine may own) that they never
// use, so it is never made, and with the embedded DNS forwarding to a
// closed port on 127.0.0.1: a name no container owns gets no answer and
// no query ever leaves the machine. Every network a test makes is on a
// bridge berthd creates; the tests reach containers only from loopback
// and from other containers on those bridges.

var (
	cniOnce sync.Once
	cniErr  error
)

// needPlugins makes the CNI plugins findable by the berthd under test:
// bin/cni beside it when make build ran, else bin/cni of the checkout
// (built by hack/cni-plugins.sh, cached) through BERTH_CNI_PATH.
func needPlugins(t *testing.T) {
	t.Helper()
	cniOnce.Do(func() {
		if os.Getenv("BERTH_CNI_PATH") != "" {
			return
		}
		dir := filepath.Join(moduleRoot(), "bin", "cni")
		if _, err := os.Stat(filepath.Join(dir, "portmap")); err != nil {
			out, err := exec.Command(filepath.Join(moduleRoot(), "hack", "cni-plugins.sh")).CombinedOutput()
			if err != nil {
				cniErr = fmt.Errorf("hack/cni-plugins.sh: %v\n%s", err, out)
				return
			}
		}
		cniErr = os.Setenv("BERTH_CNI_PATH", dir)
	})
	if cniErr != nil {
		t.Fatal(cniErr)
	}
}

// netDaemon is a berthd for the network tests; its containers and
// networks are removed when the test ends, before it stops.
func netDaemon(t *testing.T) *daemon {
	t.Helper()
	requireRoot(t)
	dockerCLI(t)
	needPlugins(t)
	d := startDaemon(t, "--dns", "127.0.0.1:9")
	t.Cleanup(func() {
		if nets := strings.Fields(d.docker(t, "network", "ls", "-q", "--filter", "type=custom").Stdout); len(nets) > 0 {
			if r := d.docker(t, append([]string{"network", "rm"}, nets...)...); r.Code != 0 {
				t.Errorf("network rm at the end: %s", r.Stderr)
			}
		}
	})
	d.removeAllContainers(t)
	return d
}

// netInfo is what the tests read of docker network inspect.
type netInfo struct {
	Name       string
	ID         string `json:"Id"`
	Driver     string
	Scope      string
	Internal   bool
	EnableIPv4 bool
	IPAM       struct {
		Driver string
		Config []struct {
			Subnet  netip.Prefix
			Gateway netip.Addr
		}
	}
	Options    map[string]string
	Labels     map[string]string
	Containers map[string]struct {
		Name        string
		EndpointID  string
		MacAddress  string
		IPv4Address netip.Prefix
	}
}

// inspectNetwork reads one network with docker network inspect.
func (d *daemon) inspectNetwork(t *testing.T, name string) netInfo {
	t.Helper()
	var out []netInfo
	if err := json.Unmarshal([]byte(d.mustDocker(t, "network", "inspect", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("network inspect %s: %v %+v", name, err, out)
	}
	return out[0]
}

// bridgeOf is the host bridge of a network berthd made.
func (n netInfo) bridge() string {
	if b := n.Options["com.docker.network.bridge.name"]; b != "" {
		return b
	}
	return "br-" + n.ID[:12]
}

// ctrNet is what the tests read of a container's network settings.
type ctrNet struct {
	IPAddress   netip.Addr
	IPPrefixLen int
	Gateway     netip.Addr
	MacAddress  string
	Aliases     []string
	DNSNames    []string
	NetworkID   string
}

// containerNets reads a container's networks with docker inspect.
func (d *daemon) containerNets(t *testing.T, name string) map[string]ctrNet {
	t.Helper()
	var out []struct {
		NetworkSettings struct {
			Networks map[string]ctrNet
		}
	}
	if err := json.Unmarshal([]byte(d.mustDocker(t, "inspect", "--type", "container", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return out[0].NetworkSettings.Networks
}

// startWeb runs a busybox httpd on port 8080 serving body, detached, on
// the given run options, and waits until it listens.
func (d *daemon) startWeb(t *testing.T, ref, name, body string, opts ...string) {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name}, opts...)
	args = append(args, ref, "sh", "-c", "mkdir -p /www && echo "+body+" > /www/index.html && exec httpd -f -p 8080 -h /www")
	d.mustDocker(t, args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// netstat lists the listening socket once httpd has bound it.
		r := d.docker(t, "exec", name, "netstat", "-ltn")
		if r.Code == 0 && strings.Contains(r.Stdout, ":8080") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd in %s does not listen: %+v", name, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet fetches a URL on the loopback from the test process.
func httpGet(t *testing.T, url string) (string, error) {
	t.Helper()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("test error: %s is not on the loopback", url)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var ipv4Token = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

// firewallLines are the lines of the host's firewall rules that concern
// the network: they name its bridge or an address in its subnet (the
// network's own rules, the published ports' DNAT of its containers).
func firewallLines(t *testing.T, bridge string, subnet netip.Prefix) []string {
	t.Helper()
	var dump []byte
	var err error
	if _, lerr := exec.LookPath("nft"); lerr == nil {
		dump, err = exec.Command("nft", "list", "ruleset").Output()
	} else {
		dump, err = exec.Command("iptables-save").Output()
	}
	if err != nil {
		t.Fatalf("dump the firewall rules: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(dump), "\n") {
		hit := strings.Contains(line, `"`+bridge+`"`) || strings.Contains(line, " "+bridge+" ")
		for _, tok := range ipv4Token.FindAllString(line, -1) {
			if a, err := netip.ParseAddr(tok); err == nil && subnet.Contains(a) {
				hit = true
			}
		}
		if hit {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// inTime is a shell command running cmd for at most secs seconds. The
// command must not be the container's PID 1, which ignores timeout's
// SIGTERM: the shell stays to report its status. (busybox wget's own
// -T crashes in busybox 1.35.)
func inTime(secs int, cmd string) string {
	return fmt.Sprintf("timeout %d %s; exit $?", secs, cmd)
}
