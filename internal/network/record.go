package network

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/moby/api/types/network"
)

// Docker's bridge driver options that berth honours.
const (
	optBridgeName    = "com.docker.network.bridge.name"
	optICC           = "com.docker.network.bridge.enable_icc"
	optMasquerade    = "com.docker.network.bridge.enable_ip_masquerade"
	optHostBindingV4 = "com.docker.network.bridge.host_binding_ipv4"
	optMTU           = "com.docker.network.driver.mtu"
	optDefaultBridge = "com.docker.network.bridge.default_bridge"
)

// Drivers of the networks berth lists.
const (
	driverBridge = "bridge"
	driverHost   = "host"
	driverNull   = "null"
)

// record is one network as berthd keeps it in <data-root>/network/<id>.json:
// docker's description of the network and what berth derives from its
// options. The CNI configuration list beside it is generated from it.
type record struct {
	network.Network

	// Bridge is the host bridge's name; empty for host and none.
	Bridge string `json:"bridge,omitempty"`
	// MTU of the containers' interfaces; 0 leaves the kernel's.
	MTU int `json:"mtu,omitempty"`
	// ICC lets containers of the network reach each other.
	ICC bool `json:"icc"`
	// Masquerade rewrites the source of traffic leaving the host.
	Masquerade bool `json:"masquerade"`
	// HostBinding is the host address a port binding without one uses.
	HostBinding netip.Addr `json:"hostBinding,omitzero"`
	// Default marks docker's "bridge" network: no name resolution.
	Default bool `json:"default,omitempty"`
}

// subnets are the record's subnets, IPv4 first.
func (r *record) subnets() []netip.Prefix {
	var ps []netip.Prefix
	for _, c := range r.IPAM.Config {
		if c.Subnet.IsValid() {
			ps = append(ps, c.Subnet.Masked())
		}
	}
	return ps
}

// gateways are the record's gateway addresses, one per subnet.
func (r *record) gateways() []netip.Addr {
	var gs []netip.Addr
	for _, c := range r.IPAM.Config {
		if c.Gateway.IsValid() {
			gs = append(gs, c.Gateway)
		}
	}
	return gs
}

// gateway4 and gateway6 are the gateways by family (zero when none).
func (r *record) gateway(v4 bool) netip.Addr {
	for _, g := range r.gateways() {
		if g.Is4() == v4 {
			return g
		}
	}
	return netip.Addr{}
}

// isBridge says the network is one of berth's bridges (not host, none).
func (r *record) isBridge() bool { return r.Driver == driverBridge }

// resolves says containers on the network resolve each other by name:
// user-defined bridges do, docker's default bridge does not.
func (r *record) resolves() bool { return r.isBridge() && !r.Default }

// boolOption reads a docker boolean option, def when absent.
func boolOption(opts map[string]string, key string, def bool) (bool, error) {
	v, ok := opts[key]
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalidf("invalid value %q for option %s: want true or false", v, key)
	}
	return b, nil
}

// cniList is the JSON of a CNI network configuration list.
type cniList struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

type cniRange struct {
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway,omitempty"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
}

type cniIPAM struct {
	Type    string       `json:"type"`
	DataDir string       `json:"dataDir"`
	Ranges  [][]cniRange `json:"ranges"`
}

type cniBridge struct {
	Type         string          `json:"type"`
	Bridge       string          `json:"bridge"`
	IsGateway    bool            `json:"isGateway"`
	IsDefaultGW  bool            `json:"isDefaultGateway"`
	IPMasq       bool            `json:"ipMasq"`
	HairpinMode  bool            `json:"hairpinMode"`
	MTU          int             `json:"mtu,omitempty"`
	IPAM         cniIPAM         `json:"ipam"`
	Capabilities map[string]bool `json:"capabilities"`
}

type cniPortmap struct {
	Type         string          `json:"type"`
	SNAT         bool            `json:"snat"`
	Backend      string          `json:"backend"`
	Capabilities map[string]bool `json:"capabilities"`
}

// cniVersion is the CNI spec version of berth's configuration lists.
const cniVersion = "1.0.0"

// conflist generates the network's CNI configuration list. The bridge
// plugin's masquerade stays off: berth masquerades per network in its own
// firewall rules (the plugin's per-container rules are removed only when
// the container's namespace still exists at DEL, and leak otherwise). The
// bridge is the gateway, and the default route only when the network is
// not internal.
//
// The portmap plugin is in the list only with ports to publish
// (withPorts): a container without any saves its execution on every ADD
// and DEL. An endpoint's list is regenerated from its record for DEL, and
// Reconcile uses the copy libcni cached, so ADD and DEL see the same list.
func (r *record) conflist(ipamDir, firewallBackend string, withPorts bool) ([]byte, error) {
	var ranges [][]cniRange
	for _, c := range r.IPAM.Config {
		cr := cniRange{Subnet: c.Subnet.Masked().String(), Gateway: c.Gateway.String()}
		if c.IPRange.IsValid() {
			cr.RangeStart = firstHost(c.IPRange).String()
			if c.IPRange.Masked().Addr() != c.Subnet.Masked().Addr() {
				cr.RangeStart = c.IPRange.Masked().Addr().String()
			}
			end := lastAddr(c.IPRange)
			if end == lastAddr(c.Subnet) {
				end = lastHost(c.Subnet)
			}
			cr.RangeEnd = end.String()
		}
		ranges = append(ranges, []cniRange{cr})
	}
	list := cniList{
		CNIVersion: cniVersion,
		Name:       r.ID,
		Plugins: []any{
			cniBridge{
				Type:         "bridge",
				Bridge:       r.Bridge,
				IsGateway:    true,
				IsDefaultGW:  !r.Internal,
				HairpinMode:  true,
				MTU:          r.MTU,
				IPAM:         cniIPAM{Type: "host-local", DataDir: ipamDir, Ranges: ranges},
				Capabilities: map[string]bool{"mac": true, "ips": true},
			},
		},
	}
	if withPorts {
		list.Plugins = append(list.Plugins, cniPortmap{Type: "portmap", SNAT: true, Backend: firewallBackend, Capabilities: map[string]bool{"portMappings": true}})
	}
	return json.MarshalIndent(list, "", "\t")
}

// writeFileAtomic writes data to path through a temporary file, fsync and
// rename, so a crash leaves the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
