package network

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// nftFirewall keeps berth's rules in one nftables table, `inet berth`,
// apart from the host's own tables. Its base chains dispatch on the
// bridge (or the source subnet, for masquerade) through verdict maps
// into one chain per network, so that a network's rules come and go as
// map elements and chains, never by rule handles:
//
//	forward      iifname vmap @fwd_in  -> n-<id>-in    (leaving the bridge)
//	             oifname vmap @fwd_out -> n-<id>-out   (entering the bridge)
//	input        iifname vmap @local_in -> n-<id>-local (internal networks)
//	postrouting  ip saddr vmap @masq4, ip6 saddr vmap @masq6 -> n-<id>-masq
//
// The set @bridges holds every berth bridge, which isolation matches.
// Accepting here does not override a drop in another table (the host's
// firewall keeps the last word on what it forbids).
type nftFirewall struct {
	table string
}

func (f *nftFirewall) backend() string { return backendNFTables }

// nft runs one nft script as one transaction.
func (f *nftFirewall) nft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// base creates the table, sets, maps and base chains. It runs as its own
// transaction: nft 1.0 cannot add an element to an interval map created
// in the same transaction.
func (f *nftFirewall) base(ctx context.Context) error {
	t := "inet " + f.table
	var b strings.Builder
	fmt.Fprintf(&b, "add table %s\n", t)
	fmt.Fprintf(&b, "add set %s bridges { type ifname; }\n", t)
	for _, m := range []string{"fwd_in", "fwd_out", "local_in"} {
		fmt.Fprintf(&b, "add map %s %s { type ifname : verdict; }\n", t, m)
	}
	fmt.Fprintf(&b, "add map %s masq4 { type ipv4_addr : verdict; flags interval; }\n", t)
	fmt.Fprintf(&b, "add map %s masq6 { type ipv6_addr : verdict; flags interval; }\n", t)
	fmt.Fprintf(&b, "add chain %s forward { type filter hook forward priority filter; policy accept; }\n", t)
	fmt.Fprintf(&b, "add chain %s input { type filter hook input priority filter; policy accept; }\n", t)
	fmt.Fprintf(&b, "add chain %s postrouting { type nat hook postrouting priority srcnat; policy accept; }\n", t)
	for _, c := range []string{"forward", "input", "postrouting"} {
		fmt.Fprintf(&b, "flush chain %s %s\n", t, c)
	}
	fmt.Fprintf(&b, "add rule %s forward iifname vmap @fwd_in\n", t)
	fmt.Fprintf(&b, "add rule %s forward oifname vmap @fwd_out\n", t)
	fmt.Fprintf(&b, "add rule %s input iifname vmap @local_in\n", t)
	fmt.Fprintf(&b, "add rule %s postrouting ip saddr vmap @masq4\n", t)
	fmt.Fprintf(&b, "add rule %s postrouting ip6 saddr vmap @masq6\n", t)
	return f.nft(ctx, b.String())
}

// chains are a network's chain names.
func (f *nftFirewall) chains(n netRules) (in, out, local, masq string) {
	p := "n-" + shortID(n.ID)
	return p + "-in", p + "-out", p + "-local", p + "-masq"
}

// removeScript deletes every piece of the network. Each piece is added
// first, so that the transaction does not fail on a piece that is
// already gone: deletion is idempotent.
func (f *nftFirewall) removeScript(b *strings.Builder, n netRules) {
	t := "inet " + f.table
	in, out, local, masq := f.chains(n)
	br := quoteIfname(n.Bridge)
	for _, c := range []string{in, out, local, masq} {
		fmt.Fprintf(b, "add chain %s %s\n", t, c)
	}
	fmt.Fprintf(b, "add element %s bridges { %s }\n", t, br)
	fmt.Fprintf(b, "add element %s fwd_in { %s : jump %s }\n", t, br, in)
	fmt.Fprintf(b, "add element %s fwd_out { %s : jump %s }\n", t, br, out)
	fmt.Fprintf(b, "add element %s local_in { %s : jump %s }\n", t, br, local)
	for _, s := range n.Subnets {
		fmt.Fprintf(b, "add element %s %s { %s : jump %s }\n", t, masqMap(s.Addr().Is4()), s, masq)
	}
	fmt.Fprintf(b, "delete element %s bridges { %s }\n", t, br)
	for _, m := range []string{"fwd_in", "fwd_out", "local_in"} {
		fmt.Fprintf(b, "delete element %s %s { %s }\n", t, m, br)
	}
	for _, s := range n.Subnets {
		fmt.Fprintf(b, "delete element %s %s { %s }\n", t, masqMap(s.Addr().Is4()), s)
	}
	for _, c := range []string{in, out, local, masq} {
		fmt.Fprintf(b, "flush chain %s %s\n", t, c)
		fmt.Fprintf(b, "delete chain %s %s\n", t, c)
	}
}

func masqMap(v4 bool) string {
	if v4 {
		return "masq4"
	}
	return "masq6"
}

// quoteIfname quotes an interface name for nft. Names are validated
// (validBridgeName) before they get here.
func quoteIfname(s string) string { return `"` + s + `"` }

func (f *nftFirewall) ensure(ctx context.Context, n netRules) error {
	if err := f.base(ctx); err != nil {
		return err
	}
	f.dropMappings(ctx, n)
	t := "inet " + f.table
	in, out, local, masq := f.chains(n)
	br := quoteIfname(n.Bridge)
	var b strings.Builder
	f.removeScript(&b, n)
	for _, c := range []string{in, out} {
		fmt.Fprintf(&b, "add chain %s %s\n", t, c)
	}
	if n.Internal {
		fmt.Fprintf(&b, "add rule %s %s oifname != %s drop\n", t, in, br)
		fmt.Fprintf(&b, "add rule %s %s iifname != %s drop\n", t, out, br)
	} else {
		// A published port is reachable from every network: its
		// connections were DNATed by the portmap rules.
		fmt.Fprintf(&b, "add rule %s %s oifname != %s ct status dnat accept\n", t, in, br)
		fmt.Fprintf(&b, "add rule %s %s oifname != %s oifname @bridges drop\n", t, in, br)
		fmt.Fprintf(&b, "add rule %s %s iifname != %s ct status dnat accept\n", t, out, br)
		fmt.Fprintf(&b, "add rule %s %s iifname != %s iifname @bridges drop\n", t, out, br)
	}
	if !n.ICC {
		fmt.Fprintf(&b, "add rule %s %s oifname %s drop\n", t, in, br)
	}
	fmt.Fprintf(&b, "add element %s bridges { %s }\n", t, br)
	fmt.Fprintf(&b, "add element %s fwd_in { %s : jump %s }\n", t, br, in)
	fmt.Fprintf(&b, "add element %s fwd_out { %s : jump %s }\n", t, br, out)
	if n.Internal {
		fmt.Fprintf(&b, "add chain %s %s\n", t, local)
		var gw4, gw6 []string
		for _, g := range n.Gateways {
			if g.Is4() {
				gw4 = append(gw4, g.String())
			} else {
				gw6 = append(gw6, g.String())
			}
		}
		// The gateway stays reachable: it serves the network's DNS.
		fmt.Fprintf(&b, "add rule %s %s meta nfproto ipv4 fib daddr type local ip daddr != { %s } drop\n", t, local, strings.Join(append(gw4, "127.0.0.1"), ", "))
		fmt.Fprintf(&b, "add rule %s %s meta nfproto ipv6 fib daddr type local ip6 daddr != { %s } drop\n", t, local, strings.Join(append(gw6, "fe80::/10"), ", "))
		fmt.Fprintf(&b, "add element %s local_in { %s : jump %s }\n", t, br, local)
	}
	if n.Masquerade {
		fmt.Fprintf(&b, "add chain %s %s\n", t, masq)
		fmt.Fprintf(&b, "add rule %s %s oifname != %s masquerade\n", t, masq, br)
		for _, s := range n.Subnets {
			fmt.Fprintf(&b, "add element %s %s { %s : jump %s }\n", t, masqMap(s.Addr().Is4()), s, masq)
		}
	}
	return f.nft(ctx, b.String())
}

// dropMappings deletes the maps' elements for the network's bridge and
// subnets, whichever network's chains they jump to, and then the chains
// of the network the bridge was mapped to, if another. A bridge can
// outlive the network that made it: the default bridge, whose name every
// berthd of the host shares, keeps the elements of a data root that is
// gone, and adding an element whose key is mapped to another chain fails
// ("File exists"). Each delete is a transaction of its own, since that
// of an absent element fails too, which is no error here; so is a chain
// of the old network that a mapping of another subnet still uses.
func (f *nftFirewall) dropMappings(ctx context.Context, n netRules) {
	t := "inet " + f.table
	br := quoteIfname(n.Bridge)
	var owner string
	if out, err := exec.CommandContext(ctx, "nft", "list", "map", "inet", f.table, "fwd_in").Output(); err == nil {
		re := regexp.MustCompile(regexp.QuoteMeta(br) + ` : jump n-([0-9a-f]+)-in\b`)
		if m := re.FindSubmatch(out); m != nil {
			owner = string(m[1])
		}
	}
	for _, m := range []string{"fwd_in", "fwd_out", "local_in"} {
		f.nft(ctx, fmt.Sprintf("delete element %s %s { %s }\n", t, m, br))
	}
	for _, s := range n.Subnets {
		f.nft(ctx, fmt.Sprintf("delete element %s %s { %s }\n", t, masqMap(s.Addr().Is4()), s))
	}
	if owner != "" && owner != shortID(n.ID) {
		var b strings.Builder
		f.removeScript(&b, netRules{ID: owner, Bridge: n.Bridge, Subnets: n.Subnets})
		f.nft(ctx, b.String())
	}
}

func (f *nftFirewall) remove(ctx context.Context, n netRules) error {
	if err := exec.CommandContext(ctx, "nft", "list", "table", "inet", f.table).Run(); err != nil {
		return nil // no table: nothing of any network is left
	}
	var b strings.Builder
	f.removeScript(&b, n)
	return f.nft(ctx, b.String())
}

var nftNetChain = regexp.MustCompile(`(?m)^\s*chain n-([0-9a-f]+)-(?:in|out|local|masq) \{`)

func (f *nftFirewall) networks(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "nft", "list", "table", "inet", f.table).Output()
	if err != nil {
		return nil, nil
	}
	var ids []string
	for _, m := range nftNetChain.FindAllSubmatch(out, -1) {
		if id := string(m[1]); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (f *nftFirewall) prune(ctx context.Context) error {
	ids, err := f.networks(ctx)
	if err != nil || len(ids) > 0 {
		return err
	}
	if err := exec.CommandContext(ctx, "nft", "list", "table", "inet", f.table).Run(); err != nil {
		return nil // already gone
	}
	return f.nft(ctx, "delete table inet "+f.table+"\n")
}
