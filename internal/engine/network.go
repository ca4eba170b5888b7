package engine

// The engine's side of networking: which networks a container is on,
// its attachment through internal/network when it starts and its
// detachment on every way a run ends, the hosts and resolv.conf those
// networks imply, and what inspect and ps show of them. docker's network
// verbs are in networkapi.go (connect and disconnect touch containers, so
// the API reaches the network manager through the engine).
//
// A container on the default bridge or a user-defined network gets a
// network namespace of its own, made by the runtime (its spec names a
// network namespace without a path). Between the shim's create and
// Start, its init exists, stopped before the user's process, and its
// namespace is /proc/<pid>/ns/net: Attach connects it there to each of
// its networks, the primary (HostConfig.NetworkMode) first, which alone
// gets the published ports; hosts and resolv.conf are written again with
// the addresses and the embedded DNS server, in place (the runtime has
// bound them already), so the process sees them from its first
// instruction. DetachAll releases the endpoints when the run ends (exit,
// crash, kill, a failed start, rm -f, an exit found by live restore);
// it works after the namespace is gone.
//
// The container's networks are the keys of its NetworkingConfig's
// EndpointsConfig, by network name ("default" is bridge); create names
// the primary there, and connect and disconnect edit it. A record with no
// endpoint settings (an API client that sent none) is on its
// NetworkMode's network.

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	berthnet "github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/shim"
)

// detachTimeout bounds the release of a container's endpoints: CNI DEL
// of each network, run while the container's lock is held.
const detachTimeout = 30 * time.Second

// attached says the mode is one whose networks berth attaches: the
// default bridge or a user-defined network.
func attached(mode container.NetworkMode) bool {
	return mode.IsBridge() || mode.IsUserDefined()
}

// endpointName is the key of a network in EndpointsConfig: docker's
// "default" is the bridge.
func endpointName(n string) string {
	if n == network.NetworkDefault {
		return network.NetworkBridge
	}
	return n
}

// checkNetworking validates the network settings of a create request and
// fills docker's defaults: network mode "bridge" when none is given; the
// endpoint settings keyed by network name, the primary network's among
// them. Without a network manager only bridge, none, host and
// container:<id> exist, each with loopback only.
func (e *Engine) checkNetworking(cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) ([]string, error) {
	var warnings []string
	m := e.cfg.Network
	nm := container.NetworkMode(hc.NetworkMode)
	switch {
	case nm == "" || nm.IsDefault():
		hc.NetworkMode = network.NetworkBridge
		nm = network.NetworkBridge
	case nm.IsBridge(), nm.IsNone(), nm.IsHost():
	case nm.IsContainer():
		if nm.ConnectedContainer() == "" {
			return nil, invalidf("invalid network mode: %s", nm)
		}
		if _, err := e.lookup(nm.ConnectedContainer()); err != nil {
			return nil, err
		}
		if cfg.Hostname != "" || len(cfg.ExposedPorts) > 0 || len(hc.PortBindings) > 0 {
			return nil, invalidf("conflicting options: hostname and ports cannot be set with a container network mode")
		}
	default:
		if m == nil {
			return nil, notFoundf("network %s not found", nm)
		}
		if _, err := e.netInfo(string(nm)); err != nil {
			return nil, err
		}
	}

	eps := map[string]*network.EndpointSettings{}
	if nc != nil {
		for n, es := range nc.EndpointsConfig {
			eps[n] = es
		}
	}
	if m == nil || !attached(nm) {
		// Endpoint settings may name only the container's own network.
		for n := range eps {
			if endpointName(n) != endpointName(string(nm)) {
				if !attached(nm) && m != nil {
					return nil, invalidf("Container cannot be connected to network endpoints: %s", strings.Join(slices.Sorted(maps.Keys(eps)), ", "))
				}
				return nil, notFoundf("network %s not found", n)
			}
		}
	} else {
		primary, err := e.netInfo(string(nm))
		if err != nil {
			return nil, err
		}
		named := map[string]*network.EndpointSettings{}
		for n, es := range eps {
			info, err := e.netInfo(endpointName(n))
			if err != nil {
				return nil, err
			}
			if !attachable(info) {
				return nil, invalidf("Container cannot be connected to network endpoints: %s", strings.Join(slices.Sorted(maps.Keys(eps)), ", "))
			}
			if es == nil {
				es = &network.EndpointSettings{}
			}
			if err := checkEndpoint(info, es); err != nil {
				return nil, err
			}
			if _, dup := named[info.Name]; dup {
				return nil, invalidf("network %s is named twice in the endpoint settings", info.Name)
			}
			named[info.Name] = configuredEndpoint(es)
		}
		if _, ok := named[primary.Name]; !ok {
			named[primary.Name] = &network.EndpointSettings{}
		}
		if nc != nil {
			nc.EndpointsConfig = named
		}
	}

	switch {
	case m == nil && (len(hc.PortBindings) > 0 || hc.PublishAllPorts):
		warnings = append(warnings, "Published ports are recorded but not forwarded: berthd runs without networks.")
	case nm.IsHost() && len(hc.PortBindings) > 0:
		warnings = append(warnings, "Published ports are discarded when using host network mode")
	}
	return warnings, nil
}

// attachable says containers can be attached to the network: berth's
// bridges, not host or none.
func attachable(info network.Inspect) bool { return info.Driver == "bridge" }

// isDefaultBridge says the network is docker's default bridge.
func isDefaultBridge(info network.Inspect) bool {
	return info.Options["com.docker.network.bridge.default_bridge"] == "true"
}

// checkEndpoint refuses endpoint settings docker refuses on the network.
func checkEndpoint(info network.Inspect, es *network.EndpointSettings) error {
	if isDefaultBridge(info) {
		if len(es.Aliases) > 0 {
			return invalidf("network-scoped alias is supported only for containers in user defined networks")
		}
		if c := es.IPAMConfig; c != nil && (c.IPv4Address.IsValid() || c.IPv6Address.IsValid()) {
			return invalidf("user specified IP address is supported on user defined networks only")
		}
	}
	for _, a := range es.Aliases {
		if a == "" || len(a) > 253 || strings.ContainsAny(a, " \t\r\n/\x00") {
			return invalidf("invalid network alias %q", a)
		}
	}
	if c := es.IPAMConfig; c != nil {
		for _, a := range []netip.Addr{c.IPv4Address, c.IPv6Address} {
			if a.IsValid() && !inSubnet(info, a) {
				return invalidf("invalid address %s: it does not belong to any of network %s's subnets or is reserved", a, info.Name)
			}
		}
	}
	if len(es.MacAddress) > 0 && len(es.MacAddress) != 6 {
		return invalidf("invalid MAC address %s", es.MacAddress)
	}
	return nil
}

// inSubnet says a is a host address of one of the network's subnets,
// not its gateway.
func inSubnet(info network.Inspect, a netip.Addr) bool {
	for _, c := range info.IPAM.Config {
		s := c.Subnet.Masked()
		if s.Contains(a) && a != s.Addr() && a != c.Gateway {
			return true
		}
	}
	return false
}

// configuredEndpoint keeps what a user may set of an endpoint (docker's
// EndpointSettings mixes settings and state).
func configuredEndpoint(es *network.EndpointSettings) *network.EndpointSettings {
	return &network.EndpointSettings{
		IPAMConfig: es.IPAMConfig.Copy(),
		Links:      slices.Clone(es.Links),
		Aliases:    slices.Clone(es.Aliases),
		DriverOpts: maps.Clone(es.DriverOpts),
		GwPriority: es.GwPriority,
		MacAddress: slices.Clone(es.MacAddress),
	}
}

// netInfo looks a network up by name, ID or ID prefix.
func (e *Engine) netInfo(ref string) (network.Inspect, error) {
	if e.cfg.Network == nil {
		return network.Inspect{}, notFoundf("network %s not found", ref)
	}
	return e.cfg.Network.Inspect(ref)
}

// networksOf are the names of the networks the container is configured
// on, the primary first, then the others by name. Callers hold c.mu.
func networksOf(rec *record) []string {
	mode := container.NetworkMode(rec.HostConfig.NetworkMode)
	if !attached(mode) {
		return nil
	}
	primary := endpointName(string(mode))
	var names []string
	if nc := rec.NetworkingConfig; nc != nil && len(nc.EndpointsConfig) > 0 {
		for n := range nc.EndpointsConfig {
			names = append(names, endpointName(n))
		}
	} else {
		names = []string{primary}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if i := slices.Index(names, primary); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, primary)
	}
	return names
}

// endpointConfig is the container's settings for the network (empty when
// it has none). Callers hold c.mu.
func endpointConfig(rec *record, name string) *network.EndpointSettings {
	if nc := rec.NetworkingConfig; nc != nil {
		for n, es := range nc.EndpointsConfig {
			if endpointName(n) == name && es != nil {
				return es
			}
		}
	}
	return &network.EndpointSettings{}
}

// attachOptions are the container's settings on one network; the
// primary network gets the published ports. Callers hold c.mu.
func attachOptions(rec *record, name string, primary bool) berthnet.AttachOptions {
	es := endpointConfig(rec, name)
	o := berthnet.AttachOptions{
		Name:     strings.TrimPrefix(rec.Name, "/"),
		Hostname: rec.Config.Hostname,
		DNS:      slices.Clone(rec.HostConfig.DNS),
	}
	endpointOptions(&o, es)
	if primary {
		o.PortBindings = rec.HostConfig.PortBindings
		o.ExposedPorts = rec.Config.ExposedPorts
		o.PublishAll = rec.HostConfig.PublishAllPorts
	}
	return o
}

// endpointOptions sets what endpoint settings ask of an attachment: the
// aliases, a fixed address and MAC (copies, the settings stay the
// record's).
func endpointOptions(o *berthnet.AttachOptions, es *network.EndpointSettings) {
	o.Aliases = slices.Clone(es.Aliases)
	if c := es.IPAMConfig; c != nil {
		o.IPv4, o.IPv6 = c.IPv4Address, c.IPv6Address
	}
	if len(es.MacAddress) > 0 {
		o.MAC = net.HardwareAddr(slices.Clone(es.MacAddress))
	}
}

// poolNetwork lets the container's runtime join a network namespace
// attached to its primary network ahead of need (the network manager's
// pool) instead of making one, when the container needs nothing such a
// namespace lacks: startNetworking's Attach then finds the attachment
// made. Nothing changes for a container the pool cannot serve (published
// ports, a fixed address or MAC, a user namespace, an empty pool). The
// returned undo drops the reservation of a start that fails before
// startNetworking. Callers hold c.mu.
func (e *Engine) poolNetwork(c *ctr, spec *specs.Spec) (undo func()) {
	m := e.cfg.Network
	none := func() {}
	if m == nil || spec.Linux == nil || !attached(container.NetworkMode(c.rec.HostConfig.NetworkMode)) {
		return none
	}
	net := -1
	for i, ns := range spec.Linux.Namespaces {
		switch ns.Type {
		case specs.UserNamespace:
			// The pool's namespaces belong to the host's user
			// namespace, not to the container's.
			return none
		case specs.NetworkNamespace:
			if ns.Path != "" {
				return none
			}
			net = i
		}
	}
	names := networksOf(c.rec)
	if net < 0 || len(names) == 0 {
		return none
	}
	path, ok := m.Take(names[0], c.id, attachOptions(c.rec, names[0], true))
	if !ok {
		return none
	}
	spec.Linux.Namespaces[net].Path = path
	return func() { e.stopNetworking(c) }
}

// startNetworking gives a created container its network before its
// process runs: loopback up in a namespace of its own, then, on the
// default bridge or user-defined networks, an endpoint on each and the
// hosts and resolv.conf they imply. The host's and another container's
// namespace need nothing. On error the caller's undo runs
// stopNetworking. Callers hold c.mu.
func (e *Engine) startNetworking(ctx context.Context, c *ctr, t *shim.Client) error {
	mode := container.NetworkMode(c.rec.HostConfig.NetworkMode)
	if mode.IsHost() || mode.IsContainer() {
		return nil
	}
	pid := t.InitPid()
	if pid <= 0 {
		st, err := t.State(ctx)
		if err != nil {
			return err
		}
		pid = st.Pid
	}
	if pid <= 0 {
		return fmt.Errorf("container %s: the runtime reported no process to attach networks to", c.id)
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	m := e.cfg.Network
	if m == nil || !attached(mode) {
		if err := berthnet.LoopbackUp(netns); err != nil {
			return fmt.Errorf("container %s: %w", c.id, err)
		}
		return nil
	}
	var eps []berthnet.Endpoint
	for i, name := range networksOf(c.rec) {
		ep, err := m.Attach(ctx, name, c.id, netns, attachOptions(c.rec, name, i == 0))
		if err != nil {
			// A start that fails is the daemon's failure (500), as
			// dockerd answers it, whatever the network layer's class:
			// the docker CLI waits for a --rm container's removal,
			// which the API server does for those alone.
			return fmt.Errorf("container %s: network %s: %v", c.id, name, err)
		}
		eps = append(eps, *ep)
		e.emitNetwork(events.ActionConnect, ep.NetworkID, ep.NetworkName, c.id)
	}
	return e.writeNetworkFiles(c, eps, true)
}

// stopNetworking releases the container's endpoints: its addresses,
// veths, published ports and DNS names. Callers hold c.mu.
func (e *Engine) stopNetworking(c *ctr) {
	m := e.cfg.Network
	if m == nil {
		return
	}
	// What was attached, for the events; DetachAll also undoes
	// endpoints an interrupted attach or detach left half made.
	eps, _ := m.Endpoints(c.id)
	ctx, cancel := context.WithTimeout(context.Background(), detachTimeout)
	defer cancel()
	if err := m.DetachAll(ctx, c.id); err != nil {
		e.logf("container %s: release its networks: %v", c.id, err)
		return
	}
	for _, ep := range eps {
		e.emitNetwork(events.ActionDisconnect, ep.NetworkID, ep.NetworkName, c.id)
	}
}

// reconcileNetworks releases the endpoints of containers that are not
// running (their exits were handled while no berthd watched, or a crash
// interrupted an attach), once live restore knows which run and before
// any restart policy starts one: Reconcile must not run beside an Attach.
func (e *Engine) reconcileNetworks() {
	m := e.cfg.Network
	if m == nil {
		return
	}
	live := map[string]bool{}
	e.mu.RLock()
	ctrs := slices.Collect(maps.Values(e.ctrs))
	e.mu.RUnlock()
	for _, c := range ctrs {
		c.mu.Lock()
		live[c.id] = c.task != nil
		c.mu.Unlock()
	}
	if err := m.Reconcile(e.ctx, func(id string) bool { return live[id] }); err != nil {
		e.logf("reconcile networks: %v", err)
	}
}

// orderedEndpoints are the container's endpoints in the order of its
// networks. Callers hold c.mu.
func (e *Engine) orderedEndpoints(c *ctr) ([]berthnet.Endpoint, error) {
	byName, err := e.cfg.Network.Endpoints(c.id)
	if err != nil {
		return nil, err
	}
	var out []berthnet.Endpoint
	for _, n := range networksOf(c.rec) {
		if ep, ok := byName[n]; ok {
			out = append(out, ep)
			delete(byName, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[n])
	}
	return out, nil
}

// writeNetworkFiles writes the container's hosts (its addresses on eps)
// and, with resolv, its resolv.conf (the embedded DNS server of its
// first user-defined network, else the host's servers). The files are
// rewritten in place: the runtime has bound them into the container, and
// a new file would not be what it sees. Callers hold c.mu.
func (e *Engine) writeNetworkFiles(c *ctr, eps []berthnet.Endpoint, resolv bool) error {
	cfg, hc := c.rec.Config, c.rec.HostConfig
	ho := berthnet.HostsOptions{Hostname: cfg.Hostname, Domainname: cfg.Domainname, ExtraHosts: hc.ExtraHosts}
	var embedded netip.Addr
	for _, ep := range eps {
		for _, p := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if p.IsValid() {
				ho.Addrs = append(ho.Addrs, p.Addr())
			}
		}
		if !ho.HostGateway.IsValid() {
			ho.HostGateway = cmpAddr(ep.Gateway4, ep.Gateway6)
		}
		if !embedded.IsValid() {
			embedded = ep.DNSServer
		}
	}
	hosts, err := berthnet.Hosts(ho)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, hostsFile), hosts, 0o644); err != nil {
		return fmt.Errorf("container %s: write hosts: %w", c.id, err)
	}
	if !resolv {
		return nil
	}
	host, err := berthnet.ReadHostResolvConf(hostResolvConf)
	if err != nil {
		return fmt.Errorf("read %s: %w", hostResolvConf, err)
	}
	data, err := berthnet.ResolvConf(host, berthnet.ResolvOptions{Embedded: embedded, DNS: hc.DNS, Search: hc.DNSSearch, Options: hc.DNSOptions})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, resolvFile), data, 0o644); err != nil {
		return fmt.Errorf("container %s: write resolv.conf: %w", c.id, err)
	}
	return nil
}

func cmpAddr(a, b netip.Addr) netip.Addr {
	if a.IsValid() {
		return a
	}
	return b
}

// createEtcFiles writes a new container's hostname, hosts and
// resolv.conf. On the default bridge or a user-defined network they are
// the network layer's (checked now, written again with the addresses at
// start); elsewhere the engine's own.
func (e *Engine) createEtcFiles(dir string, cfg *container.Config, hc *container.HostConfig) error {
	mode := container.NetworkMode(hc.NetworkMode)
	m := e.cfg.Network
	if m == nil || !attached(mode) {
		return writeEtcFiles(dir, cfg, hc)
	}
	if err := os.WriteFile(filepath.Join(dir, hostnameFile), []byte(cfg.Hostname+"\n"), 0o644); err != nil {
		return err
	}
	// The default bridge has no gateway before its first use: a stand-in
	// lets "host-gateway" be checked; start writes the real one.
	gw, err := m.Gateway(string(mode))
	if err != nil {
		gw = netip.IPv4Unspecified()
	}
	hosts, err := berthnet.Hosts(berthnet.HostsOptions{Hostname: cfg.Hostname, Domainname: cfg.Domainname, ExtraHosts: hc.ExtraHosts, HostGateway: gw})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, hostsFile), hosts, 0o644); err != nil {
		return err
	}
	host, err := berthnet.ReadHostResolvConf(hostResolvConf)
	if err != nil {
		return fmt.Errorf("read %s: %w", hostResolvConf, err)
	}
	resolv, err := berthnet.ResolvConf(host, berthnet.ResolvOptions{DNS: hc.DNS, Search: hc.DNSSearch, Options: hc.DNSOptions})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, resolvFile), resolv, 0o644)
}

// networkSettings is inspect's NetworkSettings. On the default bridge
// and user-defined networks: every network the container is configured
// on, with its address, gateway, MAC and DNS names while it runs, and the
// published ports with the host ports chosen. Callers hold c.mu.
func (e *Engine) networkSettings(c *ctr) *container.NetworkSettings {
	ns := c.networkSettings()
	m := e.cfg.Network
	if m == nil || !attached(container.NetworkMode(c.rec.HostConfig.NetworkMode)) {
		return ns
	}
	ns.Networks = map[string]*network.EndpointSettings{}
	for _, n := range networksOf(c.rec) {
		ns.Networks[n] = configuredEndpoint(endpointConfig(c.rec, n))
	}
	if !c.rec.State.running() {
		return ns
	}
	eps, err := m.Endpoints(c.id)
	if err != nil {
		e.logf("container %s: endpoints: %v", c.id, err)
		return ns
	}
	for name, ep := range eps {
		s := ep.Settings()
		if cfg, ok := ns.Networks[name]; ok {
			s.IPAMConfig, s.Links, s.DriverOpts, s.GwPriority = cfg.IPAMConfig, cfg.Links, cfg.DriverOpts, cfg.GwPriority
		}
		ns.Networks[name] = s
		for p, bs := range ep.Ports {
			ns.Ports[p] = append(ns.Ports[p], bs...)
		}
	}
	if c.rec.State.Pid > 0 {
		ns.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", c.rec.State.Pid)
	}
	return ns
}

// portSummaries are ps's ports: each published binding, and the exposed
// ports without one, by port number.
func portSummaries(pm network.PortMap) []container.PortSummary {
	out := []container.PortSummary{}
	for _, p := range slices.SortedFunc(maps.Keys(pm), func(a, b network.Port) int { return int(a.Num()) - int(b.Num()) }) {
		if len(pm[p]) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range pm[p] {
			var port uint16
			fmt.Sscanf(b.HostPort, "%d", &port)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: port, Type: string(p.Proto())})
		}
	}
	return out
}

// emitNetwork sends docker's network event.
func (e *Engine) emitNetwork(action events.Action, id, name, containerID string) {
	if e.cfg.Events == nil {
		return
	}
	attrs := map[string]string{"name": name, "type": "bridge"}
	if containerID != "" {
		attrs["container"] = containerID
	}
	now := time.Now()
	e.cfg.Events(events.Message{
		Type:     events.NetworkEventType,
		Action:   action,
		Actor:    events.Actor{ID: id, Attributes: attrs},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	})
}
