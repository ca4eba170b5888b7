package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// HostsOptions are what a container's /etc/hosts says.
type HostsOptions struct {
	// Hostname and Domainname name the container; its own addresses
	// (Addrs, from its endpoints) get a line with them.
	Hostname   string
	Domainname string
	Addrs      []netip.Addr
	// ExtraHosts are --add-host entries: "name:ip" or "name=ip"; the ip
	// "host-gateway" is HostGateway.
	ExtraHosts  []string
	HostGateway netip.Addr
}

// Hosts generates a container's /etc/hosts as docker does: the loopback
// and IPv6 names, the --add-host entries, then the container's addresses
// with its hostname.
func Hosts(o HostsOptions) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::\tip6-localnet\n")
	b.WriteString("ff00::\tip6-mcastprefix\n")
	b.WriteString("ff02::1\tip6-allnodes\n")
	b.WriteString("ff02::2\tip6-allrouters\n")
	for _, h := range o.ExtraHosts {
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, ok = strings.Cut(h, ":")
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if !ok || !validHostname(name) {
			return nil, invalidf("invalid argument %q for \"--add-host\" flag: bad format for add-host", h)
		}
		if ip == "host-gateway" {
			if !o.HostGateway.IsValid() {
				return nil, invalidf("invalid argument %q for \"--add-host\" flag: host-gateway needs a network with a gateway", h)
			}
			ip = o.HostGateway.String()
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, invalidf("invalid argument %q for \"--add-host\" flag: invalid IP address %q", h, ip)
		}
		fmt.Fprintf(&b, "%s\t%s\n", a, name)
	}
	if o.Hostname != "" {
		if !validHostname(o.Hostname) || (o.Domainname != "" && !validHostname(o.Domainname)) {
			return nil, invalidf("invalid hostname %q", o.Hostname)
		}
		names := o.Hostname
		if o.Domainname != "" {
			names = o.Hostname + "." + o.Domainname + " " + o.Hostname
		}
		for _, a := range o.Addrs {
			fmt.Fprintf(&b, "%s\t%s\n", a, names)
		}
	}
	return b.Bytes(), nil
}

// validHostname refuses what would break the file's line structure.
func validHostname(s string) bool {
	return s != "" && len(s) <= 255 && !strings.ContainsAny(s, " \t\r\n#\x00")
}

// ResolvOptions are what a container's /etc/resolv.conf says.
type ResolvOptions struct {
	// Embedded is the embedded DNS server (Endpoint.DNSServer) on a
	// user-defined network; zero elsewhere.
	Embedded netip.Addr
	// DNS, Search and Options are --dns, --dns-search and --dns-option;
	// each replaces the host's when given.
	DNS     []netip.Addr
	Search  []string
	Options []string
	// HostNetwork: the container shares the host's network namespace,
	// where the host's loopback servers work.
	HostNetwork bool
}

// Docker's servers for a container whose host has only loopback ones,
// which a container's own network namespace cannot reach.
var fallbackServers = []string{"8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"}

// resolvConf is a parsed resolv.conf.
type resolvConf struct {
	servers []netip.Addr
	search  []string
	options []string
}

// parseResolvConf reads the lines a container's resolv.conf keeps:
// nameserver, search (domain counts as search), options.
func parseResolvConf(data []byte) resolvConf {
	var rc resolvConf
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				// "fe80::1%eth0" carries a zone; netip keeps it.
				if a, err := netip.ParseAddr(f[1]); err == nil {
					rc.servers = append(rc.servers, a)
				}
			}
		case "search", "domain":
			rc.search = slices.Clone(f[1:])
		case "options":
			rc.options = append(rc.options, f[1:]...)
		}
	}
	return rc
}

// ResolvConf generates a container's /etc/resolv.conf from the host's
// (hostConf), as docker does. On a user-defined network it names the
// embedded server only (which forwards to the container's --dns servers,
// else the host's); elsewhere the host's servers, its loopback ones left
// out (unreachable from the container's namespace) and Google's used
// when none is left; on the host's network the host's as they are.
// --dns-search and --dns-option replace the host's search and options.
func ResolvConf(hostConf []byte, o ResolvOptions) ([]byte, error) {
	for _, s := range append(slices.Clone(o.Search), o.Options...) {
		if s == "" || strings.ContainsAny(s, " \t\r\n\x00") {
			return nil, invalidf("invalid DNS search domain or option %q", s)
		}
	}
	host := parseResolvConf(hostConf)
	var servers []string
	switch {
	case o.Embedded.IsValid() && !o.HostNetwork:
		servers = []string{o.Embedded.String()}
	case len(o.DNS) > 0:
		for _, a := range o.DNS {
			if !a.IsValid() {
				return nil, invalidf("invalid --dns address")
			}
			servers = append(servers, a.String())
		}
	default:
		for _, a := range host.servers {
			if o.HostNetwork || !a.IsLoopback() {
				servers = append(servers, a.String())
			}
		}
		if len(servers) == 0 && !o.HostNetwork {
			servers = fallbackServers
		}
	}
	search, options := host.search, host.options
	if len(o.Search) > 0 {
		search = o.Search
		if len(search) == 1 && search[0] == "." {
			search = nil // docker: --dns-search=. means none
		}
	}
	if len(o.Options) > 0 {
		options = o.Options
	}
	var b bytes.Buffer
	b.WriteString("# Generated by berth.\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes(), nil
}

// upstreams are the servers the embedded DNS forwards to: the configured
// ones, else the host's resolv.conf's. berthd runs in the host's network
// namespace, so the host's loopback servers (a local stub) work here.
func (m *Manager) upstreams() []netip.AddrPort {
	if m.cfg.DNSUpstreams != nil {
		return m.cfg.DNSUpstreams
	}
	data, err := os.ReadFile(m.cfg.HostResolvConf)
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range parseResolvConf(data).servers {
		out = append(out, netip.AddrPortFrom(a, 53))
	}
	return out
}

// systemdResolvConf holds systemd-resolved's upstream servers when the
// host's resolv.conf points at its 127.0.0.53 stub.
const systemdResolvConf = "/run/systemd/resolve/resolv.conf"

// ReadHostResolvConf reads the host's resolver configuration at path
// (/etc/resolv.conf): systemd-resolved's upstream file instead when path
// names only its local stub, as docker reads it. A missing file is empty.
func ReadHostResolvConf(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	rc := parseResolvConf(data)
	stub := len(rc.servers) > 0
	for _, a := range rc.servers {
		if a != netip.AddrFrom4([4]byte{127, 0, 0, 53}) {
			stub = false
		}
	}
	if stub {
		if up, err := os.ReadFile(systemdResolvConf); err == nil {
			return up, nil
		}
	}
	return data, nil
}
