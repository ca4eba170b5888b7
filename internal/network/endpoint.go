package network

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/network/dns"
)

// Endpoint states, in the order an attachment goes through them. An
// endpoint record is written "adding" before the CNI ADD runs and
// "removing" before the DEL, so that whatever a crash interrupts is found
// and undone by Reconcile.
const (
	stateAdding   = "adding"
	stateAttached = "attached"
	stateRemoving = "removing"
)

// endpointRecord is one container's attachment to one network, kept in
// <exec-root>/network/endpoints/<container>/<network>.json.
type endpointRecord struct {
	State       string `json:"state"`
	ContainerID string `json:"containerID"`
	NetworkID   string `json:"networkID"`
	EndpointID  string `json:"endpointID"`
	IfName      string `json:"ifName"`
	// NetNS is the namespace path given to ADD; NetNSDev and NetNSIno
	// identify the namespace it named then. A DEL enters the path only
	// while it still names that namespace: a /proc/<pid>/ns/net whose
	// process is gone may name another process's namespace now.
	NetNS    string `json:"netns"`
	NetNSDev uint64 `json:"netnsDev"`
	NetNSIno uint64 `json:"netnsIno"`
	// Pooled: NetNS is a namespace berth made ahead of need and
	// bind-mounted under <exec-root>/network/netns (a pool entry's, see
	// pool.go): DEL enters it, then it is unmounted. CNIID is then the
	// container ID CNI knows the attachment by, the entry's own, in a
	// container's record (empty in the pool's, whose ContainerID it is).
	Pooled bool   `json:"pooled,omitempty"`
	CNIID  string `json:"cniID,omitempty"`

	Name      string           `json:"name,omitempty"`
	Aliases   []string         `json:"aliases,omitempty"`
	DNSNames  []string         `json:"dnsNames,omitempty"`
	Upstreams []netip.AddrPort `json:"upstreams,omitempty"`

	// What was asked for.
	RequestIP4 netip.Addr `json:"requestIP4,omitzero"`
	RequestIP6 netip.Addr `json:"requestIP6,omitzero"`
	RequestMAC string     `json:"requestMAC,omitempty"`
	// Ports are the published ports, host ports chosen.
	Ports []portMapping `json:"ports,omitempty"`

	// What ADD gave.
	IPv4     netip.Prefix `json:"ipv4,omitzero"`
	IPv6     netip.Prefix `json:"ipv6,omitzero"`
	Gateway4 netip.Addr   `json:"gateway4,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
	MAC      string       `json:"mac,omitempty"`
}

// Endpoint is a container's attachment to a network, as the engine
// needs it: for the container's inspect, /etc/hosts, /etc/resolv.conf
// and `port`.
type Endpoint struct {
	NetworkID   string
	NetworkName string
	EndpointID  string
	// IfName is the interface in the container ("eth0", "eth1", ...).
	IfName string
	// IPv4 and IPv6 are the container's addresses with the subnet's
	// length; Gateway4 and Gateway6 the network's gateways.
	IPv4, IPv6         netip.Prefix
	Gateway4, Gateway6 netip.Addr
	MAC                net.HardwareAddr
	Aliases            []string
	// DNSNames are the names the container answers to on the network
	// (none on the default bridge).
	DNSNames []string
	// Ports are the published ports with the host ports chosen.
	Ports network.PortMap
	// DNSServer is the embedded DNS server's address for the
	// container's resolv.conf; zero on the default bridge, which has no
	// name resolution.
	DNSServer netip.Addr
}

// Settings is docker's EndpointSettings for the container's inspect.
func (e *Endpoint) Settings() *network.EndpointSettings {
	s := &network.EndpointSettings{
		Aliases:     slices.Clone(e.Aliases),
		NetworkID:   e.NetworkID,
		EndpointID:  e.EndpointID,
		Gateway:     e.Gateway4,
		IPv6Gateway: e.Gateway6,
		MacAddress:  network.HardwareAddr(e.MAC),
		DNSNames:    slices.Clone(e.DNSNames),
	}
	if e.IPv4.IsValid() {
		s.IPAddress, s.IPPrefixLen = e.IPv4.Addr(), e.IPv4.Bits()
	}
	if e.IPv6.IsValid() {
		s.GlobalIPv6Address, s.GlobalIPv6PrefixLen = e.IPv6.Addr(), e.IPv6.Bits()
	}
	return s
}

func (m *Manager) endpointPath(container, networkID string) string {
	return filepath.Join(m.endpointDir(), container, networkID+".json")
}

func (m *Manager) writeEndpoint(e *endpointRecord) error {
	if err := os.MkdirAll(filepath.Join(m.endpointDir(), e.ContainerID), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return writeFileAtomic(m.endpointPath(e.ContainerID, e.NetworkID), data, 0o600)
}

func (m *Manager) removeEndpoint(e *endpointRecord) error {
	if err := os.Remove(m.endpointPath(e.ContainerID, e.NetworkID)); err != nil && !os.IsNotExist(err) {
		return err
	}
	// The container's directory goes with its last endpoint.
	os.Remove(filepath.Join(m.endpointDir(), e.ContainerID))
	return nil
}

// readEndpoints reads the container's endpoint records; every
// container's when container is "".
func (m *Manager) readEndpoints(container string) ([]*endpointRecord, error) {
	var dirs []string
	if container != "" {
		dirs = []string{container}
	} else {
		entries, err := os.ReadDir(m.endpointDir())
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, e.Name())
			}
		}
	}
	var out []*endpointRecord
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(m.endpointDir(), d))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		for _, f := range entries {
			if !strings.HasSuffix(f.Name(), ".json") || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			path := filepath.Join(m.endpointDir(), d, f.Name())
			data, err := os.ReadFile(path)
			if err != nil {
				if os.IsNotExist(err) {
					continue // detached meanwhile
				}
				return nil, err
			}
			e := &endpointRecord{}
			if err := json.Unmarshal(data, e); err != nil {
				return nil, fmt.Errorf("endpoint record %s: %w", path, err)
			}
			if e.ContainerID != d || e.NetworkID+".json" != f.Name() {
				return nil, fmt.Errorf("endpoint record %s: names container %q network %q", path, e.ContainerID, e.NetworkID)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// endpointOf is the public view of a record.
// Preconditions: m.mu held.
func (m *Manager) endpointOf(e *endpointRecord) Endpoint {
	ep := Endpoint{
		NetworkID:  e.NetworkID,
		EndpointID: e.EndpointID,
		IfName:     e.IfName,
		IPv4:       e.IPv4, IPv6: e.IPv6,
		Gateway4: e.Gateway4, Gateway6: e.Gateway6,
		Aliases:  slices.Clone(e.Aliases),
		DNSNames: slices.Clone(e.DNSNames),
		Ports:    portMap(e.Ports),
	}
	ep.MAC, _ = net.ParseMAC(e.MAC)
	if r := m.networks[e.NetworkID]; r != nil {
		ep.NetworkName = r.Name
		if r.resolves() {
			if e.Gateway4.IsValid() {
				ep.DNSServer = e.Gateway4
			} else {
				ep.DNSServer = e.Gateway6
			}
		}
	}
	return ep
}

// dnsRecord is the endpoint's entry in the embedded DNS server.
func dnsRecord(r *record, e *endpointRecord) dns.Record {
	var addrs []netip.Addr
	for _, p := range []netip.Prefix{e.IPv4, e.IPv6} {
		if p.IsValid() {
			addrs = append(addrs, p.Addr())
		}
	}
	return dns.Record{Network: r.ID, NetworkName: r.Name, Container: e.ContainerID, Names: e.DNSNames, Addrs: addrs, Upstreams: e.Upstreams}
}

// loadEndpoints gives the attached endpoints found at start their DNS
// names and host ports back. Those of containers that died meanwhile are
// removed by Reconcile.
func (m *Manager) loadEndpoints() error {
	eps, err := m.readEndpoints("")
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range eps {
		r := m.networks[e.NetworkID]
		if e.State != stateAttached || r == nil {
			continue
		}
		if r.resolves() {
			m.dns.Add(dnsRecord(r, e))
		}
		if len(e.Ports) > 0 && len(m.ports[e.ContainerID]) == 0 {
			m.ports[e.ContainerID] = m.rebind(e.Ports)
		}
	}
	return nil
}

// rebind takes the ports of a mapping list back after a restart of
// berthd; a port lost meanwhile is reported and left to its new holder
// (the forwarding rules still send its traffic to the container).
func (m *Manager) rebind(ms []portMapping) []reservation {
	var held []reservation
	for _, pm := range ms {
		r, err := bindPort(pm.HostIP, pm.HostPort, pm.Proto)
		if err != nil {
			m.logf("host port %s:%d/%s: %v", pm.HostIP, pm.HostPort, pm.Proto, err)
			continue
		}
		r.m = pm
		held = append(held, r)
	}
	return held
}

// netnsID identifies the namespace at path (its device and inode).
func netnsID(path string) (dev, ino uint64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Dev, st.Ino, nil
}

// delNetNS is the path a DEL may enter: the recorded one while it still
// names the namespace ADD was given, else "" (the plugins then release
// the address and rules without entering any namespace: the namespace,
// and the veth with it, is gone).
func delNetNS(e *endpointRecord) string {
	if e.NetNS == "" {
		return ""
	}
	dev, ino, err := netnsID(e.NetNS)
	if err != nil || dev != e.NetNSDev || ino != e.NetNSIno {
		return ""
	}
	return e.NetNS
}
