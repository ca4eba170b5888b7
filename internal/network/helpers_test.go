package network

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// requireRoot skips a test that programs the host's network.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes bridges, veths, network namespaces and firewall rules")
	}
}

var (
	pluginsOnce sync.Once
	pluginsDir  string
	pluginsErr  error
)

// plugins is bin/cni, built by hack/cni-plugins.sh when missing (the
// script is cached: instant when make build ran it).
func plugins(t testing.TB) string {
	t.Helper()
	pluginsOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			pluginsErr = err
			return
		}
		pluginsDir = filepath.Join(root, "bin", "cni")
		if _, err := os.Stat(filepath.Join(pluginsDir, "bridge")); err == nil {
			return
		}
		out, err := exec.Command(filepath.Join(root, "hack", "cni-plugins.sh")).CombinedOutput()
		if err != nil {
			pluginsErr = fmt.Errorf("hack/cni-plugins.sh: %v\n%s", err, out)
		}
	})
	if pluginsErr != nil {
		t.Fatal(pluginsErr)
	}
	return pluginsDir
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// fakeUpstream is a DNS server on 127.0.0.1 that answers every A query
// with 192.0.2.99 and counts the queries: the embedded server's upstream
// in tests, so that nothing is ever forwarded off the machine.
type fakeUpstream struct {
	addr    netip.AddrPort
	mu      sync.Mutex
	queries []string
}

func newFakeUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		f.mu.Lock()
		f.queries = append(f.queries, q.Question[0].Name)
		f.mu.Unlock()
		r := new(mdns.Msg)
		r.SetReply(q)
		if q.Question[0].Qtype == mdns.TypeA {
			r.Answer = append(r.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 5}, A: net.IPv4(192, 0, 2, 99)})
		}
		w.WriteMsg(r)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return f
}

func (f *fakeUpstream) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

// testConfig is a Manager's configuration in temporary roots with its
// own default bridge name and the fake upstream, for tests that start
// managers themselves (a second one after a crash).
func testConfig(t testing.TB) (Config, *fakeUpstream) {
	t.Helper()
	up := newFakeUpstream(t)
	dir := shmDir(t)
	return Config{
		DataRoot:      filepath.Join(dir, "data"),
		ExecRoot:      filepath.Join(dir, "exec"),
		PluginDirs:    []string{plugins(t)},
		DefaultBridge: "bt" + randHex(6),
		DNSUpstreams:  []netip.AddrPort{up.addr},
		Logf:          t.Logf,
	}, up
}

// testManager is a Manager in temporary roots with its own default bridge
// name and the fake upstream; cleanup removes every network it made,
// the default bridge's host side included.
func testManager(t testing.TB, firewall string) (*Manager, *fakeUpstream) {
	t.Helper()
	requireRoot(t)
	cfg, up := testConfig(t)
	cfg.Firewall = firewall
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { teardown(t, m) })
	return m, up
}

// teardown detaches every endpoint and removes every network m made.
func teardown(t testing.TB, m *Manager) {
	ctx := context.Background()
	eps, _ := m.readEndpoints("")
	for _, e := range eps {
		if err := m.DetachAll(ctx, e.ContainerID); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}
	m.mu.Lock()
	var rs []*record
	for _, r := range m.networks {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	for _, r := range rs {
		switch {
		case r.Default && len(r.subnets()) > 0:
			if err := m.unrealize(ctx, r); err != nil {
				t.Errorf("teardown default bridge: %v", err)
			}
		case r.isBridge() && !r.Default:
			if err := m.Remove(ctx, r.ID); err != nil {
				t.Errorf("teardown network %s: %v", r.Name, err)
			}
		}
	}
	m.Close()
}

// shmDir is a temporary directory on tmpfs: berthd's exec-root is on
// tmpfs too, and the root disk's file creation is slow here.
func shmDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "berth-network-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testNetNS is a named network namespace (ip netns add), removed at
// cleanup; its path is what a container's /proc/<pid>/ns/net would be.
func testNetNS(t testing.TB) string {
	t.Helper()
	name := "bt-" + randHex(8)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return "/run/netns/" + name
}

// serve starts a TCP server inside the namespace that answers each
// connection with greeting and closes it. Its listening socket is made in
// the namespace; accepting happens on any thread.
func serve(t *testing.T, netns string, port int, greeting string) {
	t.Helper()
	var ln net.Listener
	err := inNetNS(netns, func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, greeting+"\n")
			c.Close()
		}
	}()
}

// fetch connects from inside the namespace (host when netns is "") to
// addr and reads one line.
func fetch(netns, addr string, timeout time.Duration) (string, error) {
	var line string
	do := func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		line, err = bufio.NewReader(c).ReadString('\n')
		line = strings.TrimSpace(line)
		return err
	}
	if netns == "" {
		return line, do()
	}
	return line, inNetNS(netns, do)
}

// resolverIn is a Go resolver that sends every query, from inside the
// namespace, to the name server named in resolvConf, and nowhere else.
func resolverIn(t *testing.T, netns string, resolvConf []byte) *net.Resolver {
	t.Helper()
	servers := parseResolvConf(resolvConf).servers
	if len(servers) != 1 {
		t.Fatalf("resolv.conf names %d servers, want the embedded one:\n%s", len(servers), resolvConf)
	}
	server := netip.AddrPortFrom(servers[0], 53).String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var c net.Conn
		err := inNetNS(netns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, server)
			return err
		})
		return c, err
	}}
}

// nsRun runs a command inside the namespace (ip netns exec needs a name).
func nsRun(t *testing.T, netns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", filepath.Base(netns)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", filepath.Base(netns), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hostState counts what attaching leaves on the host, of this manager's
// only (other tests and packages run beside it): veths on its bridges,
// the namespaces its cycles made (cycleNSPrefix), lease files, CNI cache entries, its
// networks' firewall rules and the portmap rules for its subnets.
type hostState struct {
	veths, netns, leases, cache, fwNets, portRules int
}

func snapshot(t *testing.T, m *Manager) hostState {
	t.Helper()
	var s hostState
	m.mu.Lock()
	bridges := map[string]bool{}
	short := map[string]bool{}
	var subnets []netip.Prefix
	for _, r := range m.networks {
		if r.Bridge != "" {
			bridges[r.Bridge] = true
			short[shortID(r.ID)] = true
			subnets = append(subnets, r.subnets()...)
		}
	}
	m.mu.Unlock()
	out, _ := exec.Command("ip", "-j", "link", "show", "type", "veth").Output()
	var links []struct {
		Master string `json:"master"`
	}
	json.Unmarshal(out, &links)
	for _, l := range links {
		if bridges[l.Master] {
			s.veths++
		}
	}
	out, _ = exec.Command("ip", "netns", "list").Output()
	s.netns = len(regexp.MustCompile(`(?m)^`+cycleNSPrefix(m)).FindAll(out, -1))
	filepath.WalkDir(m.ipamDir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if _, err := netip.ParseAddr(d.Name()); err == nil {
				s.leases++
			}
		}
		return nil
	})
	entries, _ := os.ReadDir(filepath.Join(m.cacheDir(), "results"))
	s.cache = len(entries)
	ids, err := m.fw.networks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if short[id] {
			s.fwNets++
		}
	}
	s.portRules = portRules(subnets)
	return s
}

// portRules counts the portmap plugin's rules (nftables table
// cni_hostport, or its iptables chains) that name an address of subnets.
func portRules(subnets []netip.Prefix) int {
	var text []byte
	if out, err := exec.Command("nft", "list", "table", "ip", "cni_hostport").Output(); err == nil {
		text = append(text, out...)
	}
	if out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output(); err == nil {
		text = append(text, out...)
	}
	n := 0
	addr := regexp.MustCompile(`\d+\.\d+\.\d+\.\d+`)
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.Contains(line, "dnat") && !strings.Contains(line, "masquerade") && !strings.Contains(line, "CNI-") {
			continue
		}
		for _, a := range addr.FindAllString(line, -1) {
			ip, err := netip.ParseAddr(a)
			if err == nil && slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(ip) }) {
				n++
				break
			}
		}
	}
	return n
}

// cycleNSPrefix names the namespaces the cycles of m's test make.
func cycleNSPrefix(m *Manager) string { return "bt-cy-" + m.cfg.DefaultBridge + "-" }

// TestMain puts the host's forwarding switches back as the tests found
// them: the bridge plugin turns them on at the first attach (as docker
// does, and berthd keeps them on), but a test run leaves the machine as
// it was.
func TestMain(m *testing.M) {
	switches := []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding", "/proc/sys/net/ipv6/conf/default/forwarding"}
	was := map[string][]byte{}
	for _, p := range switches {
		if v, err := os.ReadFile(p); err == nil {
			was[p] = v
		}
	}
	tablesBefore, _ := exec.Command("nft", "list", "tables").Output()
	code := m.Run()
	if os.Geteuid() == 0 {
		dropEmptyTables(string(tablesBefore))
		for _, p := range switches {
			if v, ok := was[p]; ok {
				if now, err := os.ReadFile(p); err == nil && string(now) != string(v) {
					os.WriteFile(p, v, 0o644)
				}
			}
		}
	}
	os.Exit(code)
}

// dropEmptyTables deletes the nftables tables the run created that hold
// nothing any more: the skeletons iptables-nft and the portmap plugin
// leave (empty base chains). A table that existed before, or still holds
// a rule that does anything, stays.
func dropEmptyTables(before string) {
	for _, t := range []string{"ip filter", "ip nat", "ip6 filter", "ip6 nat", "ip cni_hostport", "ip6 cni_hostport"} {
		if strings.Contains(before, "table "+t+"\n") {
			continue
		}
		out, err := exec.Command("nft", append([]string{"list", "table"}, strings.Fields(t)...)...).Output()
		if err != nil || regexp.MustCompile(`(?m)dnat|snat|masquerade|drop|reject|accept\s*$|counter|jump [A-Z]`).Match(out) {
			continue
		}
		exec.Command("nft", append([]string{"delete", "table"}, strings.Fields(t)...)...).Run()
	}
}
