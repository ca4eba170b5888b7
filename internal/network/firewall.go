package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
)

// The host firewall backends berth programs; the portmap plugin is told
// the same one.
const (
	backendNFTables = "nftables"
	backendIPTables = "iptables"
)

// netRules is what a network asks of the host firewall, docker's bridge
// semantics:
//   - isolation: nothing is forwarded between two berth bridges, except a
//     connection to a published port (it was DNATed);
//   - internal: nothing is forwarded into or out of the bridge, and the
//     host's addresses other than the gateway are unreachable from it;
//   - ICC off: nothing is forwarded between the bridge's own ports;
//   - masquerade (not internal): traffic from the subnet leaving through
//     another interface takes the host's address.
type netRules struct {
	ID         string
	Bridge     string
	Subnets    []netip.Prefix
	Gateways   []netip.Addr
	Internal   bool
	ICC        bool
	Masquerade bool
}

func rulesOf(r *record) netRules {
	return netRules{
		ID:         r.ID,
		Bridge:     r.Bridge,
		Subnets:    r.subnets(),
		Gateways:   r.gateways(),
		Internal:   r.Internal,
		ICC:        r.ICC,
		Masquerade: r.Masquerade && !r.Internal,
	}
}

// firewall programs the host's packet filter for berth's networks. Each
// implementation keeps a network's rules apart from every other
// network's and from the host's own, so that ensure and remove touch only
// that network's.
type firewall interface {
	// backend names the implementation, as the portmap plugin's
	// "backend" option spells it.
	backend() string
	// ensure installs the network's rules, replacing any it had.
	ensure(ctx context.Context, n netRules) error
	// remove deletes the network's rules; absent rules are no error.
	remove(ctx context.Context, n netRules) error
	// networks lists the short IDs of the networks that have rules, to
	// find leaks and strays.
	networks(ctx context.Context) ([]string, error)
	// prune removes berth's table or chains when no network of any
	// berthd has rules left. Preconditions: the host lock held, so that
	// no other berthd is making a network meanwhile.
	prune(ctx context.Context) error
}

// shortID is the 12-character form of a network ID that names its rules.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// newFirewall picks the backend: the one named, or nftables when the nft
// command works, else iptables.
func newFirewall(ctx context.Context, name string) (firewall, error) {
	switch name {
	case backendNFTables:
		return &nftFirewall{table: "berth"}, nil
	case backendIPTables:
		return &iptFirewall{}, nil
	case "":
	default:
		return nil, fmt.Errorf("unknown firewall backend %q: want %s or %s", name, backendNFTables, backendIPTables)
	}
	if err := exec.CommandContext(ctx, "nft", "list", "tables").Run(); err == nil {
		return &nftFirewall{table: "berth"}, nil
	}
	if err := exec.CommandContext(ctx, "iptables", "-w", "-S", "FORWARD").Run(); err == nil {
		return &iptFirewall{}, nil
	}
	return nil, errors.New("no host firewall: berth's bridge networks need nftables (nft) or iptables")
}
