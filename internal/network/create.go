package network

import (
	"cmp"
	"context"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/network"
)

// validName is docker's rule for network names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validBridgeName checks a host interface name: at most 15 bytes (IFNAMSIZ
// less the NUL) of letters, digits, '_', '.' and '-', so that it is safe
// in an nft or iptables rule.
func validBridgeName(s string) error {
	if s == "" || len(s) > 15 || s == "." || s == ".." || !regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`).MatchString(s) {
		return invalidf("invalid bridge name %q: want 1-15 letters, digits, '_', '.' or '-'", s)
	}
	return nil
}

// Create makes a user-defined bridge network, as `docker network create`:
// its record and CNI configuration list, then its host side (bridge,
// routes, firewall rules) and its DNS server. A subnet not given is the
// first of docker's default pools that overlaps neither another network
// nor a host route; a given one that does is refused.
func (m *Manager) Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	r, err := m.newRecord(req)
	if err != nil {
		return network.CreateResponse{}, err
	}
	unlock, err := hostLock()
	if err != nil {
		return network.CreateResponse{}, err
	}
	defer unlock()
	routes, err := hostRoutes(ctx)
	if err != nil {
		return network.CreateResponse{}, err
	}

	m.mu.Lock()
	for _, o := range m.networks {
		if o.Name == r.Name {
			m.mu.Unlock()
			return network.CreateResponse{}, conflictf("network with name %s already exists", r.Name)
		}
		if o.Bridge != "" && o.Bridge == r.Bridge {
			m.mu.Unlock()
			return network.CreateResponse{}, conflictf("bridge name %s is already used by network %s", r.Bridge, o.Name)
		}
	}
	taken := m.takenSubnets("")
	m.mu.Unlock()

	v4, v6 := r.EnableIPv4, r.EnableIPv6
	for i, c := range r.IPAM.Config {
		if err := subnetClash(c.Subnet, taken, routes, ""); err != nil {
			return network.CreateResponse{}, err
		}
		taken = append(taken, c.Subnet)
		if c.Subnet.Addr().Is4() {
			v4 = false
		} else {
			v6 = false
		}
		if !c.Gateway.IsValid() {
			r.IPAM.Config[i].Gateway = firstHost(c.Subnet)
		}
	}
	if v4 {
		s, err := pickSubnet4(taken, routes)
		if err != nil {
			return network.CreateResponse{}, err
		}
		r.IPAM.Config = append(r.IPAM.Config, network.IPAMConfig{Subnet: s, Gateway: firstHost(s)})
	}
	if v6 {
		s, err := pickSubnet6(taken, routes)
		if err != nil {
			return network.CreateResponse{}, err
		}
		r.IPAM.Config = append(r.IPAM.Config, network.IPAMConfig{Subnet: s, Gateway: firstHost(s)})
	}

	// IPv4 first, as docker lists them.
	slices.SortStableFunc(r.IPAM.Config, func(a, b network.IPAMConfig) int {
		return cmp.Compare(a.Subnet.Addr().BitLen(), b.Subnet.Addr().BitLen())
	})

	m.mu.Lock()
	if err := m.save(r); err != nil {
		m.mu.Unlock()
		return network.CreateResponse{}, err
	}
	m.networks[r.ID] = r
	m.mu.Unlock()
	if err := m.realizeLocked(ctx, r, routes, taken); err != nil {
		m.unrealizeLocked(context.WithoutCancel(ctx), r)
		m.mu.Lock()
		m.forget(r)
		m.mu.Unlock()
		return network.CreateResponse{}, err
	}
	m.mu.Lock()
	m.realized[r.ID] = true
	m.mu.Unlock()
	return network.CreateResponse{ID: r.ID}, nil
}

// newRecord validates a create request into a record (no subnet chosen
// yet when the request names none).
func (m *Manager) newRecord(req network.CreateRequest) (*record, error) {
	if !validName.MatchString(req.Name) {
		return nil, invalidf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	switch req.Name {
	case network.NetworkBridge, network.NetworkHost, network.NetworkNone, network.NetworkDefault:
		return nil, forbiddenf("operation is not permitted on predefined %s network ", req.Name)
	}
	switch req.Driver {
	case "", driverBridge:
	default:
		return nil, invalidf("network driver %q is not supported: berth has the bridge driver only", req.Driver)
	}
	switch {
	case req.Scope != "" && req.Scope != "local":
		return nil, invalidf("network scope %q is not supported: berth's networks are local", req.Scope)
	case req.ConfigOnly || req.ConfigFrom != nil:
		return nil, invalidf("config-only networks are not supported")
	case req.Ingress:
		return nil, invalidf("ingress networks are a swarm feature, not supported")
	}
	id := newID()
	r := &record{Network: network.Network{
		Name: req.Name, ID: id, Created: time.Now().UTC(), Scope: "local", Driver: driverBridge,
		EnableIPv4: req.EnableIPv4 == nil || *req.EnableIPv4,
		EnableIPv6: req.EnableIPv6 != nil && *req.EnableIPv6,
		Internal:   req.Internal, Attachable: req.Attachable,
		IPAM:    network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
		Options: map[string]string{}, Labels: map[string]string{},
	}}
	maps.Copy(r.Options, req.Options)
	maps.Copy(r.Labels, req.Labels)
	if !r.EnableIPv4 && !r.EnableIPv6 {
		return nil, invalidf("IPv4 or IPv6 must be enabled")
	}
	if req.IPAM != nil {
		switch req.IPAM.Driver {
		case "", "default":
		default:
			return nil, invalidf("IPAM driver %q is not supported: berth has the default driver only", req.IPAM.Driver)
		}
		maps.Copy(r.IPAM.Options, req.IPAM.Options)
		fams := map[bool]bool{}
		for _, c := range req.IPAM.Config {
			if err := checkIPAMConfig(c); err != nil {
				return nil, err
			}
			v4 := c.Subnet.Addr().Is4()
			if fams[v4] {
				return nil, invalidf("more than one %s subnet: berth's networks have one subnet per address family", family(v4))
			}
			fams[v4] = true
			if v4 && !r.EnableIPv4 {
				return nil, invalidf("subnet %s: IPv4 is disabled on this network", c.Subnet)
			}
			if !v4 && !r.EnableIPv6 {
				return nil, invalidf("subnet %s: IPv6 subnets need --ipv6", c.Subnet)
			}
			c.Subnet = c.Subnet.Masked()
			c.AuxAddress = nil
			r.IPAM.Config = append(r.IPAM.Config, c)
		}
	}

	r.Bridge = "br-" + shortID(id)
	if b, ok := req.Options[optBridgeName]; ok {
		if err := validBridgeName(b); err != nil {
			return nil, err
		}
		r.Bridge = b
	}
	var err error
	if r.ICC, err = boolOption(req.Options, optICC, true); err != nil {
		return nil, err
	}
	if r.Masquerade, err = boolOption(req.Options, optMasquerade, true); err != nil {
		return nil, err
	}
	if v, ok := req.Options[optHostBindingV4]; ok {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return nil, invalidf("invalid value %q for option %s: want an IPv4 address", v, optHostBindingV4)
		}
		r.HostBinding = a
	}
	if v, ok := req.Options[optMTU]; ok {
		mtu, err := strconv.Atoi(v)
		if err != nil || mtu < 68 || mtu > 65535 {
			return nil, invalidf("invalid value %q for option %s: want an MTU within 68-65535", v, optMTU)
		}
		r.MTU = mtu
	}
	return r, nil
}

func family(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}

// checkIPAMConfig checks one --subnet/--gateway/--ip-range triple.
func checkIPAMConfig(c network.IPAMConfig) error {
	if !c.Subnet.IsValid() {
		if c.Gateway.IsValid() || c.IPRange.IsValid() {
			return invalidf("a gateway or an IP range needs a subnet")
		}
		return invalidf("invalid IPAM configuration: no subnet")
	}
	s := c.Subnet.Masked()
	if s.Addr().Is4() && s.Bits() > 30 || s.Addr().Is6() && s.Bits() > 126 {
		return invalidf("subnet %s is too small for containers", c.Subnet)
	}
	if s.Addr().IsLoopback() || s.Addr().IsMulticast() || s.Addr().IsLinkLocalUnicast() || s.Addr().IsUnspecified() {
		return invalidf("subnet %s is not usable for containers (loopback, multicast, link-local or unspecified)", c.Subnet)
	}
	if c.Gateway.IsValid() && (!s.Contains(c.Gateway) || c.Gateway == s.Addr() || (c.Gateway.Is4() && c.Gateway == lastAddr(s))) {
		return invalidf("invalid gateway %s: not a host address of subnet %s", c.Gateway, s)
	}
	if c.IPRange.IsValid() {
		rg := c.IPRange.Masked()
		if rg.Addr().Is4() != s.Addr().Is4() || rg.Bits() < s.Bits() || !s.Contains(rg.Addr()) {
			return invalidf("invalid ip-range %s: not within subnet %s", c.IPRange, s)
		}
	}
	return nil
}
