package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/network/dns"
	"github.com/moby/moby/api/types/network"
)

// Config is what a Manager needs.
type Config struct {
	// DataRoot holds the networks: <id>.json and <id>.conflist
	// (berthd: <data-root>/network).
	DataRoot string
	// ExecRoot holds the state that lives as long as the containers:
	// the CNI result cache, host-local's leases and the endpoint records
	// (berthd: <exec-root>/network).
	ExecRoot string
	// PluginDirs are searched for the CNI plugins; DefaultPluginDirs when
	// empty.
	PluginDirs []string
	// DefaultBridge names the default network's bridge; "berth0" when
	// empty.
	DefaultBridge string
	// DefaultSubnet is the default network's subnet; the first free
	// docker pool when zero.
	DefaultSubnet netip.Prefix
	// Firewall is "nftables" or "iptables"; detected when empty.
	Firewall string
	// DNSUpstreams are the servers the embedded DNS forwards names it
	// does not own to; the host's resolv.conf's when nil.
	DNSUpstreams []netip.AddrPort
	// HostResolvConf is the host's resolver configuration;
	// /etc/resolv.conf when empty.
	HostResolvConf string
	// DNSPort is the embedded DNS server's port on each gateway; 53 when
	// zero.
	DNSPort uint16
	// Pool is how many network namespaces each network in use keeps
	// attached ahead of need, for containers that need nothing they lack
	// (Take); 0 keeps none.
	Pool int
	// Logf reports what the manager cannot return (a stray it could not
	// remove during Reconcile); discarded when nil.
	Logf func(format string, args ...any)
}

// Manager owns berth's networks: their records and CNI configuration
// lists, their host side (bridges, routes, firewall rules), the
// containers' endpoints and the embedded DNS server. Safe for concurrent
// use.
type Manager struct {
	cfg  Config
	cni  *libcni.CNIConfig
	fw   firewall
	dns  *dns.Server
	logf func(string, ...any)

	mu       sync.Mutex
	networks map[string]*record // by ID
	// busy counts attaches in progress per network, so that Remove
	// does not race them; attaching holds "<container>/<network>" of
	// each, so that one container is not attached twice at once.
	busy      map[string]int
	attaching map[string]bool
	// ports holds the host ports reserved per container.
	ports map[string][]reservation

	// realizeMu serialises ensureRealized (the first attach to the
	// default bridge makes its host side); realized, under mu, records
	// the networks whose host side this manager made.
	realizeMu sync.Mutex
	realized  map[string]bool

	// pools are the networks' namespaces attached ahead of need, by
	// network ID; taken holds the entries Take reserved, by
	// "<container>/<network>", until Attach adopts them. closed: Close
	// began, no entry is made any more. Under mu.
	pools  map[string]*netPool
	taken  map[string]*endpointRecord
	closed bool
	// poolIdle (on mu) is signalled when a pool's busy count drops
	// to 0.
	poolIdle *sync.Cond
}

// DefaultPluginDirs are where berthd looks for the CNI plugins: bin/cni
// beside its binary (make build), ../lib/berth/cni beside it (make
// install), then the system's.
func DefaultPluginDirs() []string {
	var dirs []string
	if d := os.Getenv("BERTH_CNI_PATH"); d != "" {
		dirs = append(dirs, filepath.SplitList(d)...)
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		dirs = append(dirs, filepath.Join(dir, "cni"), filepath.Join(dir, "..", "lib", "berth", "cni"))
	}
	return append(dirs, "/usr/local/lib/berth/cni", "/usr/lib/berth/cni")
}

// Paths below ExecRoot.
func (m *Manager) cacheDir() string    { return filepath.Join(m.cfg.ExecRoot, "cni-cache") }
func (m *Manager) ipamDir() string     { return filepath.Join(m.cfg.ExecRoot, "ipam") }
func (m *Manager) endpointDir() string { return filepath.Join(m.cfg.ExecRoot, "endpoints") }
func (m *Manager) recordPath(id string) string {
	return filepath.Join(m.cfg.DataRoot, id+".json")
}
func (m *Manager) conflistPath(id string) string {
	return filepath.Join(m.cfg.DataRoot, id+".conflist")
}

// New loads the networks under cfg.DataRoot, creating the predefined
// bridge, host and none on first use, and starts the embedded DNS server
// on every user-defined network. The host side of the default bridge is
// made on the first attach to it, so a berthd whose containers use
// --network none never touches the host's network. Call Reconcile next.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.DataRoot == "" || cfg.ExecRoot == "" {
		return nil, errors.New("network: DataRoot and ExecRoot are required")
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs()
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = "berth0"
	}
	if cfg.HostResolvConf == "" {
		cfg.HostResolvConf = "/etc/resolv.conf"
	}
	if cfg.DNSPort == 0 {
		cfg.DNSPort = 53
	}
	if err := validBridgeName(cfg.DefaultBridge); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	fw, err := newFirewall(ctx, cfg.Firewall)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:       cfg,
		fw:        fw,
		logf:      cfg.Logf,
		networks:  map[string]*record{},
		busy:      map[string]int{},
		attaching: map[string]bool{},
		ports:     map[string][]reservation{},
		realized:  map[string]bool{},
		pools:     map[string]*netPool{},
		taken:     map[string]*endpointRecord{},
	}
	m.poolIdle = sync.NewCond(&m.mu)
	if m.logf == nil {
		m.logf = func(string, ...any) {}
	}
	m.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, m.cacheDir(), newPluginExec())
	m.dns = dns.NewServer(dns.Config{Upstreams: m.upstreams, Logf: m.logf})
	for _, d := range []string{m.cacheDir(), m.ipamDir(), m.endpointDir(), m.poolDir(), m.netnsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	if err := m.predefine(); err != nil {
		return nil, err
	}
	// User-defined networks exist on the host from their creation, as
	// docker's do: make them again after a reboot, and serve their DNS.
	for _, r := range m.networks {
		if !r.isBridge() || r.Default {
			continue
		}
		if err := m.realize(ctx, r); err != nil {
			m.logf("network %s: %v", r.Name, err)
			continue
		}
		m.realized[r.ID] = true
	}
	if err := m.loadEndpoints(); err != nil {
		return nil, err
	}
	return m, nil
}

// Close releases the pool's entries (see pool.go), stops the DNS server
// and releases the host ports held for the containers. The networks,
// their bridges and the containers' endpoints stay: a berthd that starts
// again takes them over.
func (m *Manager) Close() error {
	if err := m.closePools(); err != nil {
		m.logf("network pool: %v", err)
	}
	m.dns.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, rs := range m.ports {
		releasePorts(rs)
		delete(m.ports, id)
	}
	return nil
}

// Firewall names the host firewall backend in use: "nftables" or
// "iptables".
func (m *Manager) Firewall() string { return m.fw.backend() }

// load reads every network record.
func (m *Manager) load() error {
	entries, err := os.ReadDir(m.cfg.DataRoot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.cfg.DataRoot, name))
		if err != nil {
			return err
		}
		r := &record{}
		if err := json.Unmarshal(data, r); err != nil {
			return fmt.Errorf("network record %s: %w", name, err)
		}
		if r.ID+".json" != name {
			return fmt.Errorf("network record %s: holds network %q", name, r.ID)
		}
		m.networks[r.ID] = r
	}
	return nil
}

// save writes the record, then its configuration list.
func (m *Manager) save(r *record) error {
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(m.recordPath(r.ID), data, 0o600); err != nil {
		return err
	}
	if !r.isBridge() {
		return nil
	}
	list, err := r.conflist(m.ipamDir(), m.fw.backend(), true)
	if err != nil {
		return err
	}
	return writeFileAtomic(m.conflistPath(r.ID), list, 0o600)
}

// predefine creates docker's three predefined networks when missing.
func (m *Manager) predefine() error {
	have := map[string]bool{}
	for _, r := range m.networks {
		have[r.Name] = true
	}
	now := time.Now().UTC()
	for _, p := range []struct{ name, driver string }{{network.NetworkBridge, driverBridge}, {network.NetworkHost, driverHost}, {network.NetworkNone, driverNull}} {
		if have[p.name] {
			continue
		}
		r := &record{Network: network.Network{
			Name: p.name, ID: newID(), Created: now, Scope: "local", Driver: p.driver,
			EnableIPv4: p.driver == driverBridge,
			IPAM:       network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
			Options:    map[string]string{}, Labels: map[string]string{},
		}}
		if p.driver == driverBridge {
			r.Default, r.ICC, r.Masquerade = true, true, true
			r.Bridge = m.cfg.DefaultBridge
			r.MTU = 1500
			r.Options = map[string]string{
				optDefaultBridge: "true",
				optICC:           "true",
				optMasquerade:    "true",
				optHostBindingV4: "0.0.0.0",
				optBridgeName:    m.cfg.DefaultBridge,
				optMTU:           "1500",
			}
		}
		if err := m.save(r); err != nil {
			return err
		}
		m.networks[r.ID] = r
	}
	return nil
}

// newID is a docker-style 64-hex-digit ID.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// hostLock serialises, across every berthd on the host, the choice of
// subnets and the making of bridges: two daemons must not pick the same
// free subnet, and a subnet is taken once its routes exist.
func hostLock() (unlock func(), err error) {
	const path = "/run/lock/berth-network.lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil
}

// realize makes the network's host side: the default bridge gets its
// subnet now if it has none. Then bridge, routes, firewall rules, DNS.
func (m *Manager) realize(ctx context.Context, r *record) error {
	unlock, err := hostLock()
	if err != nil {
		return err
	}
	defer unlock()
	routes, err := hostRoutes(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	taken := m.takenSubnets(r.ID)
	m.mu.Unlock()
	return m.realizeLocked(ctx, r, routes, taken)
}

// realizeLocked is realize with the host lock held and the host's routes
// and the other networks' subnets read.
func (m *Manager) realizeLocked(ctx context.Context, r *record, routes []route, taken []netip.Prefix) error {
	if len(r.subnets()) == 0 {
		s := m.cfg.DefaultSubnet
		if !s.IsValid() {
			var err error
			if s, err = pickSubnet4(taken, routes); err != nil {
				return err
			}
		}
		m.mu.Lock()
		r.IPAM.Config = []network.IPAMConfig{{Subnet: s.Masked(), Gateway: firstHost(s)}}
		err := m.save(r)
		m.mu.Unlock()
		if err != nil {
			return err
		}
	}
	for _, s := range r.subnets() {
		if err := subnetClash(s, slices.DeleteFunc(slices.Clone(taken), func(p netip.Prefix) bool { return p == s }), routes, r.Bridge); err != nil {
			return fmt.Errorf("network %s: %w", r.Name, err)
		}
	}
	if err := realizeBridge(ctx, r); err != nil {
		return err
	}
	if err := m.fw.ensure(ctx, rulesOf(r)); err != nil {
		return err
	}
	if r.resolves() {
		for _, g := range r.gateways() {
			if err := m.dns.Listen(r.ID, netip.AddrPortFrom(g, m.cfg.DNSPort), r.Internal); err != nil {
				return fmt.Errorf("network %s: embedded DNS: %w", r.Name, err)
			}
		}
	}
	return nil
}

// forget drops the network's files and entry.
// Preconditions: m.mu held.
func (m *Manager) forget(r *record) {
	os.Remove(m.conflistPath(r.ID))
	os.Remove(m.recordPath(r.ID))
	delete(m.networks, r.ID)
	delete(m.realized, r.ID)
}

// unrealize removes the network's host side: DNS, firewall, bridge and
// routes, host-local's state. Every step runs; the first error is
// returned.
func (m *Manager) unrealize(ctx context.Context, r *record) error {
	unlock, err := hostLock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.unrealizeLocked(ctx, r)
}

// unrealizeLocked is unrealize with the host lock held.
func (m *Manager) unrealizeLocked(ctx context.Context, r *record) error {
	m.dns.Unlisten(r.ID)
	var errs []error
	errs = append(errs, m.fw.remove(ctx, rulesOf(r)))
	errs = append(errs, m.fw.prune(ctx))
	errs = append(errs, unrealizeBridge(ctx, r))
	errs = append(errs, os.RemoveAll(filepath.Join(m.ipamDir(), r.ID)))
	return errors.Join(errs...)
}

// takenSubnets are the subnets of every network but except.
// Preconditions: m.mu held.
func (m *Manager) takenSubnets(except string) []netip.Prefix {
	var ps []netip.Prefix
	for _, r := range m.networks {
		if r.ID != except {
			ps = append(ps, r.subnets()...)
		}
	}
	return ps
}
