package main

import (
	"net/netip"
	"testing"
)

func TestDNSServerFlag(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.2":       "10.0.0.2:53",
		"127.0.0.1:5353": "127.0.0.1:5353",
		"[::1]:53":       "[::1]:53",
		"fd00::1":        "[fd00::1]:53",
	} {
		got, err := dnsServer(in)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("dnsServer(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "example.com", "10.0.0.2:0", "10.0.0.2:x"} {
		if _, err := dnsServer(in); err == nil {
			t.Errorf("dnsServer(%q) accepted", in)
		}
	}
}

func TestBridgeIPFlag(t *testing.T) {
	for in, want := range map[string]string{
		"172.17.0.1/16":  "172.17.0.0/16",
		"10.9.0.0/24":    "10.9.0.0/24",
		"192.168.5.1/30": "192.168.5.0/30",
	} {
		got, err := bridgeIP(in)
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("bridgeIP(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	// Not the subnet's first address, not IPv4, too small, not a CIDR.
	for _, in := range []string{"172.17.0.5/16", "fd00::1/64", "10.0.0.1/31", "10.0.0.1"} {
		if _, err := bridgeIP(in); err == nil {
			t.Errorf("bridgeIP(%q) accepted", in)
		}
	}
}
