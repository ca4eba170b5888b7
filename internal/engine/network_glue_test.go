package engine

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func netRecord(mode string, eps ...string) *record {
	rec := &record{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)}}
	if eps != nil {
		rec.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
		for _, n := range eps {
			rec.NetworkingConfig.EndpointsConfig[n] = &network.EndpointSettings{}
		}
	}
	return rec
}

// The primary network (the mode's) comes first, then the others by
// name; "default" is bridge; modes without networks of their own have
// none; a record without endpoint settings is on its mode's network.
func TestNetworksOf(t *testing.T) {
	for _, c := range []struct {
		rec  *record
		want []string
	}{
		{netRecord("bridge"), []string{"bridge"}},
		{netRecord("bridge", "default"), []string{"bridge"}},
		{netRecord("front", "zeta", "front", "alpha"), []string{"front", "alpha", "zeta"}},
		{netRecord("front", "alpha"), []string{"alpha"}}, // the primary was disconnected
		{netRecord("none", "none"), nil},
		{netRecord("host"), nil},
		{netRecord("container:abc"), nil},
	} {
		if got := networksOf(c.rec); !slices.Equal(got, c.want) {
			t.Errorf("networksOf(%s, %v) = %v, want %v", c.rec.HostConfig.NetworkMode, c.rec.NetworkingConfig, got, c.want)
		}
	}
}

// materialize names the networks a record is on explicitly, so that
// connect and disconnect edit a list that says what start attaches.
func TestMaterialize(t *testing.T) {
	rec := netRecord("bridge")
	materialize(rec)
	if _, ok := rec.NetworkingConfig.EndpointsConfig["bridge"]; !ok || len(rec.NetworkingConfig.EndpointsConfig) != 1 {
		t.Errorf("materialize of a record without settings: %v", rec.NetworkingConfig.EndpointsConfig)
	}
	rec = netRecord("bridge", "default")
	rec.NetworkingConfig.EndpointsConfig["default"].Links = []string{"x"}
	materialize(rec)
	es, ok := rec.NetworkingConfig.EndpointsConfig["bridge"]
	if !ok || len(rec.NetworkingConfig.EndpointsConfig) != 1 || !slices.Equal(es.Links, []string{"x"}) {
		t.Errorf("materialize keeps the settings of \"default\" as bridge's: %v", rec.NetworkingConfig.EndpointsConfig)
	}
}

// ps lists every binding of a published port, and an exposed port
// without one once, by port number.
func TestPortSummaries(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	pm := network.PortMap{
		network.MustParsePort("8080/tcp"): {{HostIP: lo, HostPort: "32768"}, {HostIP: netip.IPv6Loopback(), HostPort: "32768"}},
		network.MustParsePort("53/udp"):   nil,
	}
	got := portSummaries(pm)
	want := []container.PortSummary{
		{PrivatePort: 53, Type: "udp"},
		{IP: lo, PrivatePort: 8080, PublicPort: 32768, Type: "tcp"},
		{IP: netip.IPv6Loopback(), PrivatePort: 8080, PublicPort: 32768, Type: "tcp"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("portSummaries = %+v, want %+v", got, want)
	}
	if got := portSummaries(nil); got == nil || len(got) != 0 {
		t.Errorf("portSummaries(nil) = %#v, want an empty list", got)
	}
}

// Endpoint settings docker refuses: aliases and fixed addresses on the
// default bridge, an address outside the network's subnets or its
// gateway, a MAC that is not 6 bytes.
func TestCheckEndpoint(t *testing.T) {
	user := network.Inspect{Network: network.Network{Name: "front", Driver: "bridge", IPAM: network.IPAM{Config: []network.IPAMConfig{
		{Subnet: netip.MustParsePrefix("10.1.2.0/24"), Gateway: netip.MustParseAddr("10.1.2.1")}}}}}
	def := user
	def.Name = "bridge"
	def.Options = map[string]string{"com.docker.network.bridge.default_bridge": "true"}
	ip := func(s string) *network.EndpointIPAMConfig {
		return &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(s)}
	}
	for _, c := range []struct {
		info network.Inspect
		es   network.EndpointSettings
		ok   bool
	}{
		{user, network.EndpointSettings{Aliases: []string{"www"}, IPAMConfig: ip("10.1.2.7")}, true},
		{user, network.EndpointSettings{IPAMConfig: ip("10.1.3.7")}, false},
		{user, network.EndpointSettings{Aliases: []string{"a b"}}, false},
		{user, network.EndpointSettings{Aliases: []string{""}}, false},
		{user, network.EndpointSettings{IPAMConfig: ip("10.1.2.1")}, false},
		{user, network.EndpointSettings{IPAMConfig: ip("10.1.2.0")}, false},
		{user, network.EndpointSettings{MacAddress: network.HardwareAddr{2, 0, 0, 0, 0}}, false},
		{def, network.EndpointSettings{Aliases: []string{"www"}}, false},
		{def, network.EndpointSettings{IPAMConfig: ip("10.1.2.7")}, false},
		{def, network.EndpointSettings{MacAddress: network.HardwareAddr{2, 0, 0, 0, 0, 1}}, true},
	} {
		if err := checkEndpoint(c.info, &c.es); (err == nil) != c.ok {
			t.Errorf("checkEndpoint(%s, %+v) = %v", c.info.Name, c.es, err)
		}
	}
}
