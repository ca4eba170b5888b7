// Package network is berthd's networking: docker's bridge networks built
// on the CNI spec (libcni and the upstream plugins bridge and host-local,
// portmap for published ports), an embedded DNS server (package dns) for
// name resolution on user-defined networks, and the files a container's
// /etc/hosts and /etc/resolv.conf hold. The engine is its only caller.
//
// # What the engine calls
//
// At start, once, before serving:
//
//	m, err := network.New(ctx, network.Config{DataRoot: <data-root>/network, ExecRoot: <exec-root>/network})
//	err = m.Reconcile(ctx, func(id string) bool { /* the container is running */ })
//
// Container create: nothing here (check the network exists: m.Inspect).
//
// Container start, before the spec is written: for the primary network,
//
//	path, ok := m.Take(netRef, id, network.AttachOptions{...})
//
// and with ok the spec's network namespace joins path instead of being
// made (a namespace attached ahead of need: pool.go); Attach below then
// finds the attachment made and only records it.
//
// After the shim created the container (its init exists; its namespace
// is /proc/<pid>/ns/net) and before Start:
//
//	for each network of the container, in order:
//	    ep, err := m.Attach(ctx, netRef, id, "/proc/<pid>/ns/net", network.AttachOptions{
//	        Name, Hostname, Aliases, IPv4, IPv6, MAC, DNS,
//	        PortBindings, ExposedPorts, PublishAll}) // ports with the first network only
//	hosts, _ := network.Hosts(network.HostsOptions{Hostname, Domainname, Addrs: the eps' addresses,
//	    ExtraHosts, HostGateway: ep.Gateway4})
//	host, _ := network.ReadHostResolvConf("/etc/resolv.conf")
//	resolv, _ := network.ResolvConf(host, network.ResolvOptions{
//	    Embedded: the first user network's ep.DNSServer (zero on the default bridge), DNS, Search, Options})
//	write them into the container's data directory (bound at /etc/hosts, /etc/resolv.conf), then Start
//	inspect: ep.Settings() per network; `docker port`: m.Ports(id)
//
// --network none: network.LoopbackUp("/proc/<pid>/ns/net"). --network
// host and container:<id> need nothing here.
//
// network connect / disconnect of a running container: m.Attach (as
// above, then rewrite hosts) and m.Detach(ctx, netRef, id).
//
// Container stop, exit, crash, rm (and a failed start):
//
//	m.DetachAll(ctx, id) // works after the namespace is gone and after a berthd restart
//
// Networks: Create (docker's CreateRequest), Inspect, List (docker's ls
// filters), Remove, Prune, Gateway; Firewall names the backend in use. The predefined "bridge" (docker's
// default bridge: bridge berth0, no name resolution), "host" and "none"
// are listed as docker lists them; host and none are the engine's to
// implement (no namespace, or an empty one) and cannot be attached here.
//
// # Files
//
//	<data-root>/network/<id>.json       the network (docker's description + berth's derived settings)
//	<data-root>/network/<id>.conflist   its CNI configuration list, regenerated from the record
//	<exec-root>/network/cni-cache/      libcni's results cache: DEL works after a restart
//	<exec-root>/network/ipam/<id>/      host-local's leases (lease.go: which berthd changes itself, and when)
//	<exec-root>/network/endpoints/<container>/<network>.json   one attachment
//	<exec-root>/network/pool/<entry>.json   a pool entry (pool.go), not a container's
//	<exec-root>/network/netns/<entry>       its namespace, bind-mounted
//
// # Safety and invariants
//
//   - A subnet exists only on a bridge berth made. Before the bridge, an
//     `unreachable` route for the subnet is added with a metric above the
//     bridge's link route, so no packet for a container address can follow
//     the host's default route out of the machine, even while the bridge
//     is down or gone. The bridge has its gateway address before it is up.
//   - A subnet chosen for a network overlaps no other network's and no
//     host route (docker's pools: the /16s of 172.17-31, then the /20s of
//     192.168); a subnet asked for that does is refused. Choosing and
//     making happen under a host-wide lock shared by every berthd.
//   - Firewall: nftables (table inet berth) where nft works, else
//     iptables; the portmap plugin uses the same backend. Isolation,
//     internal networks, ICC and masquerade are per network (docker's
//     semantics, see netRules), never per container, so a container that
//     dies without DEL leaves no rule of berth's behind.
//   - Every attach is recorded ("adding") before ADD and every detach
//     ("removing") before DEL; Reconcile undoes what a crash interrupted.
//     DEL enters a namespace path only while it still names the namespace
//     ADD saw (a reused /proc/<pid> could name another's).
//   - A pool entry serves one container and is destroyed after it, never
//     handed to another; it is never listed nor named in DNS before a
//     container takes it; network rm and Close drain a network's
//     entries and Reconcile removes those a crash left. Its ADD runs in
//     the background at nice 19; its release after the container starts
//     no plugin (pool.go's releaseAddress, lease.go).
//   - The embedded DNS server never forwards a name it owns, and forwards
//     nothing for containers whose networks are all internal.
//
// Not done: published ports on [::] for a container without an IPv6
// address (docker's userland proxy does that); the install step also
// builds the firewall, tuning and loopback plugins, which berth does not
// run (isolation is berth's own rules, lo is brought up in-process). The
// host's own firewall (ufw and the like, an iptables FORWARD policy of
// DROP) is respected, not worked around: its drops win.
package network
