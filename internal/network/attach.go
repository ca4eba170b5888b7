package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/moby/moby/api/types/network"
)

// AttachOptions are a container's settings on one network, from its
// create request (docker's EndpointSettings and HostConfig).
type AttachOptions struct {
	// Name is the container's name (no leading slash); Hostname its
	// host name. Both become DNS names on user-defined networks.
	Name     string
	Hostname string
	// Aliases are the network-scoped aliases (--network-alias).
	Aliases []string
	// IPv4 and IPv6 ask for fixed addresses (--ip, --ip6).
	IPv4, IPv6 netip.Addr
	// MAC asks for a fixed hardware address (--mac-address).
	MAC net.HardwareAddr
	// PortBindings are the published ports (-p); with PublishAll (-P)
	// every ExposedPorts port without a binding gets a random host port.
	// Pass them for one network only (docker publishes on the first).
	PortBindings network.PortMap
	ExposedPorts network.PortSet
	PublishAll   bool
	// DNS are the container's own name servers (--dns): the embedded
	// server forwards its queries there instead of to the host's.
	DNS []netip.Addr
}

// lookupNetwork finds a network by full ID, name, or unique ID prefix, as
// docker does.
// Preconditions: m.mu held.
func (m *Manager) lookupNetwork(ref string) (*record, error) {
	if ref == "" {
		return nil, invalidf("network name or ID is empty")
	}
	if r, ok := m.networks[ref]; ok {
		return r, nil
	}
	for _, r := range m.networks {
		if r.Name == ref {
			return r, nil
		}
	}
	var found []*record
	for _, r := range m.networks {
		if strings.HasPrefix(r.ID, ref) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return nil, noSuchNetwork(ref)
	case 1:
		return found[0], nil
	}
	return nil, invalidf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(found))
}

// Attach connects the container's network namespace (netnsPath, e.g.
// /proc/<pid>/ns/net of its created init, or a bind-mounted namespace)
// to the network: a veth on the network's bridge, an address, a default
// route unless the network is internal, the published ports, and its
// names in the embedded DNS. Idempotent per (container, network) only in
// that attaching twice is refused, as docker refuses.
//
// Postconditions: on error nothing of the attempt is left (address,
// veth, rules, ports, record).
func (m *Manager) Attach(ctx context.Context, ref, containerID, netnsPath string, o AttachOptions) (*Endpoint, error) {
	if containerID == "" || strings.ContainsAny(containerID, "/-\x00") || containerID == "." || containerID == ".." {
		return nil, invalidf("invalid container ID %q", containerID)
	}
	dev, ino, err := netnsID(netnsPath)
	if err != nil {
		return nil, invalidf("network namespace of container %s: %v", containerID, err)
	}
	if hdev, hino, err := netnsID("/proc/thread-self/ns/net"); err == nil && hdev == dev && hino == ino {
		return nil, invalidf("network namespace %s is the host's: berth attaches only a container's own", netnsPath)
	}

	m.mu.Lock()
	r, err := m.lookupNetwork(ref)
	if err == nil {
		err = m.checkAttach(r, containerID, &o)
	}
	var ifName string
	if err == nil {
		ifName, err = m.nextIfName(containerID)
	}
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	key := containerID + "/" + r.ID
	if m.attaching[key] {
		m.mu.Unlock()
		return nil, conflictf("container %s is being attached to network %s already", containerID, r.Name)
	}
	m.attaching[key] = true
	m.busy[r.ID]++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.busy[r.ID]--
		delete(m.attaching, key)
		m.mu.Unlock()
	}()

	// A namespace from the pool, reserved by Take for this container
	// and joined by its runtime: the attachment is made already.
	m.mu.Lock()
	pe := m.taken[key]
	delete(m.taken, key)
	m.mu.Unlock()
	if pe != nil {
		if ifName == "eth0" && pe.NetNSDev == dev && pe.NetNSIno == ino {
			return m.adopt(r, pe, containerID, o)
		}
		m.releaseLater(r, pe)
	}

	if err := m.ensureRealized(ctx, r); err != nil {
		return nil, err
	}
	if ifName == "eth0" {
		if err := LoopbackUp(netnsPath); err != nil {
			return nil, fmt.Errorf("attach container %s: %w", containerID, err)
		}
	}

	def := r.HostBinding
	if !def.IsValid() {
		def = netip.IPv4Unspecified()
	}
	reqs, err := portRequests(o.PortBindings, o.ExposedPorts, o.PublishAll, def)
	if err != nil {
		return nil, err
	}
	held, err := reservePorts(reqs)
	if err != nil {
		return nil, err
	}
	e := &endpointRecord{
		State: stateAdding, ContainerID: containerID, NetworkID: r.ID, EndpointID: newID(), IfName: ifName,
		NetNS: netnsPath, NetNSDev: dev, NetNSIno: ino,
	}
	m.setOptions(r, e, o)
	for _, h := range held {
		e.Ports = append(e.Ports, h.m)
	}
	// An address asked for may be a pool entry's.
	if o.IPv4.IsValid() || o.IPv6.IsValid() {
		unhold := m.holdFor(ctx, r, func(pe *endpointRecord) bool {
			return (o.IPv4.IsValid() && pe.IPv4.Addr() == o.IPv4) || (o.IPv6.IsValid() && pe.IPv6.Addr() == o.IPv6)
		})
		defer unhold()
	}
	if err := m.writeEndpoint(e); err != nil {
		releasePorts(held)
		return nil, err
	}

	list, err := m.cniList(r, e)
	if err == nil {
		var res *current.Result
		res, err = m.cniAdd(ctx, list, e)
		if err != nil && m.evict(ctx, r, nil) > 0 {
			// The pool's entries may have held the last free
			// addresses: undo the attempt and try once more.
			if derr := m.cniDel(context.WithoutCancel(ctx), list, e); derr == nil {
				res, err = m.cniAdd(ctx, list, e)
			}
		}
		if err == nil {
			err = fillResult(e, res)
		}
	}
	if err == nil {
		e.State = stateAttached
		err = m.writeEndpoint(e)
	}
	if err != nil {
		// Undo the attempt: DEL releases what ADD made (with or
		// without its cached result), then the record goes.
		if derr := m.cniDel(context.WithoutCancel(ctx), list, e); derr != nil {
			m.logf("undo attach of %s to %s: %v", containerID, r.Name, derr)
		} else {
			m.removeEndpoint(e)
		}
		releasePorts(held)
		return nil, fmt.Errorf("attach container %s to network %s: %w", containerID, r.Name, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.ports[containerID] = append(m.ports[containerID], held...)
	if r.resolves() {
		m.dns.Add(dnsRecord(r, e))
	}
	ep := m.endpointOf(e)
	return &ep, nil
}

// setOptions records what the container asked for on the network.
func (m *Manager) setOptions(r *record, e *endpointRecord, o AttachOptions) {
	e.Name, e.Aliases = o.Name, slices.Clone(o.Aliases)
	e.RequestIP4, e.RequestIP6 = o.IPv4, o.IPv6
	if o.MAC != nil {
		e.RequestMAC = o.MAC.String()
	}
	e.Upstreams = nil
	for _, d := range o.DNS {
		e.Upstreams = append(e.Upstreams, netip.AddrPortFrom(d, 53))
	}
	e.DNSNames = nil
	if r.resolves() {
		e.DNSNames = dnsNames(o.Name, o.Aliases, e.ContainerID, o.Hostname)
	}
}

// checkAttach refuses what docker refuses.
// Preconditions: m.mu held.
func (m *Manager) checkAttach(r *record, containerID string, o *AttachOptions) error {
	switch {
	case r.Driver == driverHost:
		return invalidf("container cannot be disconnected from host network or connected to host network")
	case r.Driver == driverNull:
		return invalidf("container cannot be connected to network none: it is the absence of a network")
	case !r.isBridge():
		return invalidf("network %s: driver %q cannot attach containers", r.Name, r.Driver)
	}
	if _, err := m.readEndpointOf(containerID, r.ID); err == nil {
		return conflictf("endpoint with name %s already exists in network %s", cmpOr(o.Name, containerID), r.Name)
	}
	if r.Default {
		if len(o.Aliases) > 0 {
			return invalidf("network-scoped alias is supported only for containers in user defined networks")
		}
		if o.IPv4.IsValid() || o.IPv6.IsValid() {
			return invalidf("user specified IP address is supported on user defined networks only")
		}
	}
	for _, a := range []netip.Addr{o.IPv4, o.IPv6} {
		if !a.IsValid() {
			continue
		}
		ok := false
		for _, c := range r.IPAM.Config {
			if c.Subnet.Contains(a) {
				ok = a != c.Gateway && a != c.Subnet.Masked().Addr() && !(a.Is4() && a == lastAddr(c.Subnet))
			}
		}
		if !ok {
			return invalidf("invalid address %s: it does not belong to any of network %s's subnets or is reserved", a, r.Name)
		}
	}
	if o.MAC != nil && len(o.MAC) != 6 {
		return invalidf("invalid MAC address %s", o.MAC)
	}
	for _, a := range o.Aliases {
		if a == "" || strings.ContainsAny(a, " \t\n/") || len(a) > 253 {
			return invalidf("invalid network alias %q", a)
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// nextIfName is the container's first free ethN.
// Preconditions: m.mu held.
func (m *Manager) nextIfName(containerID string) (string, error) {
	eps, err := m.readEndpoints(containerID)
	if err != nil {
		return "", err
	}
	for i := 0; ; i++ {
		name := fmt.Sprintf("eth%d", i)
		if !slices.ContainsFunc(eps, func(e *endpointRecord) bool { return e.IfName == name }) {
			return name, nil
		}
	}
}

// dnsNames are docker's DNSNames: the name, the aliases, the short ID,
// the hostname, each once.
func dnsNames(name string, aliases []string, id, hostname string) []string {
	var out []string
	for _, n := range append(append([]string{name}, aliases...), shortID(id), hostname) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ensureRealized makes the network's host side if this manager has not:
// the default bridge's on the first attach to it, a user network's whose
// making failed at start. The bridge plugin would make a missing bridge
// itself, without the unreachable route and the firewall rules.
func (m *Manager) ensureRealized(ctx context.Context, r *record) error {
	m.realizeMu.Lock()
	defer m.realizeMu.Unlock()
	m.mu.Lock()
	done := m.realized[r.ID]
	m.mu.Unlock()
	if done {
		return nil
	}
	if err := m.realize(ctx, r); err != nil {
		return err
	}
	m.mu.Lock()
	m.realized[r.ID] = true
	m.mu.Unlock()
	return nil
}

// cniList is the network's configuration list for the endpoint, as
// libcni reads it.
func (m *Manager) cniList(r *record, e *endpointRecord) (*libcni.NetworkConfigList, error) {
	data, err := r.conflist(m.ipamDir(), m.fw.backend(), len(e.Ports) > 0)
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(data)
}

// runtimeConf is the CNI runtime configuration of an endpoint; netns is
// the namespace path to pass ("" when it is gone).
func runtimeConf(e *endpointRecord, netns string) *libcni.RuntimeConf {
	caps := map[string]any{}
	if len(e.Ports) > 0 {
		caps["portMappings"] = cniPortMappings(e.Ports)
	}
	if e.RequestMAC != "" {
		caps["mac"] = e.RequestMAC
	}
	var ips []string
	for _, a := range []netip.Addr{e.RequestIP4, e.RequestIP6} {
		if a.IsValid() {
			ips = append(ips, a.String())
		}
	}
	if len(ips) > 0 {
		caps["ips"] = ips
	}
	return &libcni.RuntimeConf{ContainerID: cniID(e), NetNS: netns, IfName: e.IfName, CapabilityArgs: caps}
}

func (m *Manager) cniAdd(ctx context.Context, list *libcni.NetworkConfigList, e *endpointRecord) (*current.Result, error) {
	res, err := m.cni.AddNetworkList(ctx, list, runtimeConf(e, e.NetNS))
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

// cniDel runs DEL for the endpoint: with libcni's cached result when ADD
// completed, with the configuration alone when it did not. The plugins
// release by container ID and interface, so both undo a partial ADD.
func (m *Manager) cniDel(ctx context.Context, list *libcni.NetworkConfigList, e *endpointRecord) error {
	if list == nil {
		return errors.New("no configuration list")
	}
	return m.cni.DelNetworkList(ctx, list, runtimeConf(e, delNetNS(e)))
}

// fillResult copies the container's addresses, gateways and MAC from the
// bridge plugin's result.
func fillResult(e *endpointRecord, res *current.Result) error {
	for _, ipc := range res.IPs {
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i < 0 || i >= len(res.Interfaces) || res.Interfaces[i].Sandbox == "" {
				continue
			}
			e.MAC = res.Interfaces[i].Mac
		}
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		ones, _ := ipc.Address.Mask.Size()
		gw, _ := netip.AddrFromSlice(ipc.Gateway)
		if a.Is4() {
			e.IPv4, e.Gateway4 = netip.PrefixFrom(a, ones), gw.Unmap()
		} else {
			e.IPv6, e.Gateway6 = netip.PrefixFrom(a, ones), gw
		}
	}
	if !e.IPv4.IsValid() && !e.IPv6.IsValid() {
		return errors.New("the bridge plugin returned no address for the container")
	}
	return nil
}

// readEndpointOf reads one endpoint record.
func (m *Manager) readEndpointOf(containerID, networkID string) (*endpointRecord, error) {
	eps, err := m.readEndpoints(containerID)
	if err != nil {
		return nil, err
	}
	for _, e := range eps {
		if e.NetworkID == networkID {
			return e, nil
		}
	}
	return nil, notFoundf("container %s is not connected to network %s", containerID, networkID)
}

// Detach disconnects the container from the network: DEL (the veth, the
// address, the published ports' rules), its DNS names, its host ports.
// Works after the container's namespace is gone and after a berthd
// restart (the CNI cache keeps what ADD returned).
func (m *Manager) Detach(ctx context.Context, ref, containerID string) error {
	m.mu.Lock()
	r, err := m.lookupNetwork(ref)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	e, err := m.readEndpointOf(containerID, r.ID)
	m.mu.Unlock()
	if err != nil {
		return conflictf("container %s is not connected to network %s", containerID, r.Name)
	}
	return m.detach(ctx, r, e, false)
}

// DetachAll disconnects the container from every network it is on: the
// engine's step when the container stops or is removed. An endpoint from
// the pool is gone from the container when DetachAll returns (its DNS
// names, its record); its DEL runs in the background, on the pool
// entry's own ID (see pool.go). A reservation Take made and Attach did
// not adopt is dropped.
func (m *Manager) DetachAll(ctx context.Context, containerID string) error {
	m.untake(containerID)
	m.mu.Lock()
	eps, err := m.readEndpoints(containerID)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range eps {
		m.mu.Lock()
		r := m.networks[e.NetworkID]
		m.mu.Unlock()
		errs = append(errs, m.detach(ctx, r, e, true))
	}
	return errors.Join(errs...)
}

// detach undoes one endpoint; r is nil when its network is gone. later
// lets a pooled endpoint's DEL run in the background.
func (m *Manager) detach(ctx context.Context, r *record, e *endpointRecord, later bool) error {
	if e.Pooled {
		return m.detachPooled(ctx, r, e, later)
	}
	e.State = stateRemoving
	if err := m.writeEndpoint(e); err != nil {
		return err
	}
	if r != nil {
		list, err := m.cniList(r, e)
		if err == nil {
			err = m.cniDel(ctx, list, e)
		}
		if err != nil {
			return fmt.Errorf("detach container %s from network %s: %w", e.ContainerID, r.Name, err)
		}
	}
	m.forgetEndpoint(e)
	return m.removeEndpoint(e)
}

// detachPooled undoes an endpoint from the pool: the container loses it
// at once, and the entry, back in the pool's records ("removing"), is
// released (DEL, unmount) before detachPooled returns or, with later,
// in the background. The pool's work counter is raised before the
// endpoint record goes, so a Remove that sees no endpoint waits for
// the release.
func (m *Manager) detachPooled(ctx context.Context, r *record, e *endpointRecord, later bool) error {
	pe := poolForm(e)
	pe.State = stateRemoving
	if err := m.writePoolRecord(pe); err != nil {
		return err
	}
	var p *netPool
	m.mu.Lock()
	if later && r != nil && !m.closed {
		p = m.poolLocked(r.ID)
		p.busy++
	}
	m.mu.Unlock()
	m.forgetEndpoint(e)
	if err := m.removeEndpoint(e); err != nil {
		if p != nil {
			m.workDone(p)
		}
		return err
	}
	if p == nil {
		return m.releaseEntry(ctx, r, pe)
	}
	go func() {
		defer m.workDone(p)
		if err := m.releaseEntry(m.bgContext(), r, pe); err != nil {
			m.logf("%v", err)
		}
	}()
	return nil
}

// forgetEndpoint drops the endpoint's DNS names and host ports.
func (m *Manager) forgetEndpoint(e *endpointRecord) {
	m.mu.Lock()
	m.dns.Remove(e.ContainerID, e.NetworkID)
	var keep []reservation
	for _, h := range m.ports[e.ContainerID] {
		if slices.Contains(e.Ports, h.m) {
			releasePorts([]reservation{h})
		} else {
			keep = append(keep, h)
		}
	}
	if len(keep) == 0 {
		delete(m.ports, e.ContainerID)
	} else {
		m.ports[e.ContainerID] = keep
	}
	m.mu.Unlock()
}

// Endpoints are the container's attachments, by network name.
func (m *Manager) Endpoints(containerID string) (map[string]Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	eps, err := m.readEndpoints(containerID)
	if err != nil {
		return nil, err
	}
	out := map[string]Endpoint{}
	for _, e := range eps {
		if e.State != stateAttached {
			continue
		}
		ep := m.endpointOf(e)
		out[ep.NetworkName] = ep
	}
	return out, nil
}
