package network

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// hostRoute is one route of the host's routing tables, as `ip -j route`
// reports it.
type hostRoute struct {
	Type   string `json:"type"`
	Dst    string `json:"dst"`
	Dev    string `json:"dev"`
	Metric int    `json:"metric"`
	Table  string `json:"table"`
}

// route is a parsed hostRoute.
type route struct {
	Prefix netip.Prefix
	Type   string
	Dev    string
	Metric int
}

// hostRoutes lists the host's routes of both families in every table,
// default routes left out: a subnet that overlaps one of the others would
// capture or be captured by the host's own traffic.
func hostRoutes(ctx context.Context) ([]route, error) {
	var out []route
	for _, fam := range []string{"-4", "-6"} {
		data, err := exec.CommandContext(ctx, "ip", "-j", fam, "route", "show", "table", "all").Output()
		if err != nil {
			return nil, fmt.Errorf("ip %s route show: %w", fam, commandError(err))
		}
		var rs []hostRoute
		if err := json.Unmarshal(data, &rs); err != nil {
			return nil, fmt.Errorf("ip %s route show: %w", fam, err)
		}
		for _, r := range rs {
			if r.Dst == "default" || r.Type == "multicast" {
				continue
			}
			p, err := parsePrefixOrAddr(r.Dst)
			if err != nil || p.Bits() == 0 {
				continue
			}
			// Every IPv6 interface carries fe80::/64 and the
			// multicast range; berth never allocates from them.
			if p.Addr().Is6() && (p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast()) {
				continue
			}
			out = append(out, route{Prefix: p.Masked(), Type: r.Type, Dev: r.Dev, Metric: r.Metric})
		}
	}
	return out, nil
}

// parsePrefixOrAddr reads "10.0.0.0/8" or a lone address (a host route).
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// commandError adds a command's stderr to its error.
func commandError(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// overlaps reports whether two prefixes share an address.
func overlaps(a, b netip.Prefix) bool {
	return a.Addr().Is4() == b.Addr().Is4() && a.Overlaps(b)
}

// defaultPools4 are docker's default address pools: each /16 of
// 172.17-31, then the /20s of 192.168/16.
func defaultPools4() []netip.Prefix {
	var ps []netip.Prefix
	for i := 17; i <= 31; i++ {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return ps
}

// subnetClash says why p cannot be used: it overlaps another berth
// network's subnet or a host route. Routes on the network's own bridge
// (own) do not count: they are the network's.
func subnetClash(p netip.Prefix, taken []netip.Prefix, routes []route, own string) error {
	for _, t := range taken {
		if overlaps(p, t) {
			return conflictf("invalid pool request: Pool overlaps with other one on this address space (%s overlaps %s)", p, t)
		}
	}
	for _, r := range routes {
		if own != "" && (r.Dev == own || (r.Type == "unreachable" && r.Prefix == p)) {
			continue
		}
		if overlaps(p, r.Prefix) {
			dev := r.Dev
			if dev == "" {
				dev = r.Type
			}
			return conflictf("invalid pool request: subnet %s overlaps the host's route to %s (%s)", p, r.Prefix, dev)
		}
	}
	return nil
}

// pickSubnet4 is the first default pool that clashes with nothing.
func pickSubnet4(taken []netip.Prefix, routes []route) (netip.Prefix, error) {
	for _, p := range defaultPools4() {
		if subnetClash(p, taken, routes, "") == nil {
			return p, nil
		}
	}
	return netip.Prefix{}, conflictf("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}

// pickSubnet6 is a random unique local /64 (RFC 4193: fd00::/8 and a
// random 40-bit global ID), as docker gives an IPv6 network that names no
// subnet.
func pickSubnet6(taken []netip.Prefix, routes []route) (netip.Prefix, error) {
	for range 16 {
		var b [16]byte
		if _, err := rand.Read(b[1:8]); err != nil {
			return netip.Prefix{}, err
		}
		b[0] = 0xfd
		clear(b[8:])
		p := netip.PrefixFrom(netip.AddrFrom16(b), 64)
		if subnetClash(p, taken, routes, "") == nil {
			return p, nil
		}
	}
	return netip.Prefix{}, conflictf("could not find an available IPv6 unique local /64")
}

// firstHost is the first address after the network address: docker's
// default gateway.
func firstHost(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next()
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return last
}

// lastHost is the last address of p that a host may have: before the
// broadcast address in IPv4.
func lastHost(p netip.Prefix) netip.Addr {
	last := lastAddr(p)
	if last.Is4() && p.Bits() < 31 {
		last = last.Prev()
	}
	return last
}
