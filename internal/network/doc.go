// Package network is berthd's networking: docker's bridge networks built
// on the CNI spec (libcni and the upstream plugins bridge and host-local,
// portmap for published ports), an embedded DNS server (package dns) for
// name resolution on user-defined networks, and the files a container's
// /etc/hosts and /etc/resolv.conf hold. The engine is its only caller.
//
// # What the engine calls
//
//	m, err := network.New(ctx, network.Config{DataRoot: <data-root>/network, ExecRoot: <exec-root>/network})
//	m.Reconcile(ctx, liveContainer)          // once at start, before serving
//
//	// container create: nothing (the network is checked by name: m.Inspect)
//	// container start, after the shim created the container (its init
//	// exists, its namespace is /proc/<pid>/ns/net) and before Start:
//	ep, err := m.Attach(ctx, "bridge"|name|id, containerID, "/proc/<pid>/ns/net", network.AttachOptions{...})
//	//   per network; port bindings with the first only
//	hosts, _ := network.Hosts(network.HostsOptions{Hostname, Addrs: ep.IPv4/IPv6 addrs, ExtraHosts, HostGateway: ep.Gateway4})
//	host, _ := network.ReadHostResolvConf("/etc/resolv.conf")
//	resolv, _ := network.ResolvConf(host, network.ResolvOptions{Embedded: ep.DNSServer, DNS, Search, Options})
//	//   written into the container's data dir before Start; inspect uses ep.Settings(), `port` m.Ports(id)
//	// --network none: network.LoopbackUp("/proc/<pid>/ns/net")
//	// network connect / disconnect of a running container: m.Attach / m.Detach
//	// container exit (stop, kill, crash) or rm:
//	m.DetachAll(ctx, containerID)           // works after the namespace is gone
//
// Networks: Create (docker's CreateRequest), Inspect, List (docker's ls
// filters), Remove, Prune, Gateway. The predefined "bridge" (docker's
// default bridge: bridge berth0, no name resolution), "host" and "none"
// are listed as docker lists them; host and none are the engine's to
// implement (no namespace, or an empty one) and cannot be attached here.
//
// # Files
//
//	<data-root>/network/<id>.json       the network (docker's description + berth's derived settings)
//	<data-root>/network/<id>.conflist   its CNI configuration list, regenerated from the record
//	<exec-root>/network/cni-cache/      libcni's results cache: DEL works after a restart
//	<exec-root>/network/ipam/<id>/      host-local's leases
//	<exec-root>/network/endpoints/<container>/<network>.json   one attachment
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
//   - The embedded DNS server never forwards a name it owns, and forwards
//     nothing for containers whose networks are all internal.
//
// Not done: IPv6 port publishing beyond what portmap does with an IPv6
// address; the host's own firewall (ufw and the like, an iptables FORWARD
// policy of DROP) is respected, not worked around: its drops win.
package network
