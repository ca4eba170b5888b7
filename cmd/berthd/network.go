package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/network"
)

// openNetwork makes berthd's network manager: its records under
// <data-root>/network, its run-time state under <exec-root>/network. The
// engine reconciles it with the containers it finds (engine.New).
func openNetwork(ctx context.Context, o options, log *slog.Logger) (*network.Manager, error) {
	cfg := network.Config{
		DataRoot:      filepath.Join(o.dataRoot, "network"),
		ExecRoot:      filepath.Join(o.execRoot, "network"),
		DefaultBridge: o.bridge,
		Firewall:      o.firewall,
		Pool:          o.netPool,
		Logf: func(format string, args ...any) {
			log.Warn(fmt.Sprintf(format, args...))
		},
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = "berth0"
	}
	if o.netPool < 0 || o.netPool > 64 {
		return nil, fmt.Errorf("invalid --network-pool %d: want 0 to 64", o.netPool)
	}
	switch o.firewall {
	case "", "nftables", "iptables":
	default:
		return nil, fmt.Errorf("invalid --firewall-backend %q: want nftables or iptables", o.firewall)
	}
	for _, s := range o.dns {
		ap, err := dnsServer(s)
		if err != nil {
			return nil, err
		}
		cfg.DNSUpstreams = append(cfg.DNSUpstreams, ap)
	}
	if o.bip != "" {
		p, err := bridgeIP(o.bip)
		if err != nil {
			return nil, err
		}
		cfg.DefaultSubnet = p
	} else if p, ok := idleBridgeSubnet(ctx, cfg.DefaultBridge); ok {
		// The bridge outlived the data root that made it (a data root
		// wiped): keep its subnet, as dockerd keeps docker0's address,
		// rather than give it a second one. Only when nothing is on it:
		// a bridge in use is another berthd's, whose containers have
		// addresses this one's leases do not know.
		cfg.DefaultSubnet = p
	}
	m, err := network.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	return m, nil
}

// dnsServer reads --dns: an address, or an address and port.
func dnsServer(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("invalid --dns %q: want an IP address, or IP:port", s)
	}
	return ap, nil
}

// bridgeIP reads --bip: the default bridge's gateway address with the
// subnet's length. berth's gateway is the subnet's first address.
func bridgeIP(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("invalid --bip %q: want an IPv4 address with a prefix length of at most 30, e.g. 172.17.0.1/16", s)
	}
	if first := p.Masked().Addr().Next(); p.Addr() != first && p.Addr() != p.Masked().Addr() {
		return netip.Prefix{}, fmt.Errorf("invalid --bip %q: the default bridge's gateway is its subnet's first address, %s", s, first)
	}
	return p.Masked(), nil
}

// idleBridgeSubnet is the subnet of an existing bridge named name that
// no interface is attached to: the first of its IPv4 addresses that is
// its subnet's first (berth's gateways are).
func idleBridgeSubnet(ctx context.Context, name string) (netip.Prefix, bool) {
	out, err := exec.CommandContext(ctx, "ip", "-j", "-4", "addr", "show", "dev", name, "type", "bridge").Output()
	if err != nil {
		return netip.Prefix{}, false
	}
	ports, err := exec.CommandContext(ctx, "ip", "-j", "link", "show", "master", name).Output()
	if err != nil || strings.TrimSpace(string(ports)) != "[]" {
		return netip.Prefix{}, false
	}
	var links []struct {
		Addrs []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return netip.Prefix{}, false
	}
	for _, a := range links[0].Addrs {
		ip, err := netip.ParseAddr(strings.TrimSpace(a.Local))
		if err != nil || a.Scope != "global" {
			continue
		}
		if p, err := ip.Prefix(a.PrefixLen); err == nil && p.Addr().Next() == ip {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
