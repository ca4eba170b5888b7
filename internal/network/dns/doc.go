// Package dns is berth's embedded DNS server: the name service of
// user-defined networks. berthd runs one Server; it listens (UDP and TCP)
// on the gateway address of every user-defined network, and the engine
// points each container's /etc/resolv.conf at its network's gateway.
//
// Who sees what: a query is answered from the records of the networks the
// asking container (found by its source address) is attached to, so
// containers resolve each other only through a network they share, by
// name, alias, short ID, hostname or "name.network", whichever gateway
// they ask; a client that is no container sees no names. A name the server
// owns is answered for every type (no records when it has none of the
// type) and never forwarded; every other name goes to the container's own
// --dns servers, else the host's resolvers, and not at all for a
// container whose networks are all internal. Forwarding is bounded
// (maxForwards exchanges at once) so a container cannot make the server
// hold unbounded work.
//
// The wire format is github.com/miekg/dns's; this package holds no
// codec of its own. Imported by internal/network only.
package dns
