package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// The files every container gets at /etc/hostname, /etc/hosts and
// /etc/resolv.conf, generated into its data directory and bound in, as
// docker does. The network layer will rewrite hosts and resolv.conf when
// it gives containers addresses and DNS.
const (
	hostnameFile = "hostname"
	hostsFile    = "hosts"
	resolvFile   = "resolv.conf"
)

// hostResolvConf is the host's resolver configuration; a variable for
// tests.
var hostResolvConf = "/etc/resolv.conf"

// systemdResolvConf is where systemd-resolved keeps the real upstream
// servers when /etc/resolv.conf points at its 127.0.0.53 stub.
const systemdResolvConf = "/run/systemd/resolve/resolv.conf"

// Docker's fallback name servers when the host has only local ones,
// which a container's own network namespace cannot reach.
var defaultNameservers = []string{"8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"}

// writeEtcFiles writes the container's hostname, hosts and resolv.conf.
func writeEtcFiles(dir string, cfg *container.Config, hc *container.HostConfig) error {
	if err := os.WriteFile(filepath.Join(dir, hostnameFile), []byte(cfg.Hostname+"\n"), 0o644); err != nil {
		return err
	}
	hosts, err := hostsContent(hc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, hostsFile), hosts, 0o644); err != nil {
		return err
	}
	resolv, err := resolvContent(hc)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, resolvFile), resolv, 0o644)
}

// hostsContent is docker's /etc/hosts: the host's own file for a
// container on the host's network, else the loopback names; then the
// --add-host entries. A container with an address (the network layer's
// job) gets a line for its hostname as well.
func hostsContent(hc *container.HostConfig) ([]byte, error) {
	var b bytes.Buffer
	if container.NetworkMode(hc.NetworkMode).IsHost() {
		if data, err := os.ReadFile("/etc/hosts"); err == nil {
			b.Write(data)
			if len(data) > 0 && data[len(data)-1] != '\n' {
				b.WriteByte('\n')
			}
		}
	} else {
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::\tip6-localnet\n")
		b.WriteString("ff00::\tip6-mcastprefix\n")
		b.WriteString("ff02::1\tip6-allnodes\n")
		b.WriteString("ff02::2\tip6-allrouters\n")
	}
	for _, h := range hc.ExtraHosts {
		// docker's form is name:ip (ip may hold colons: IPv6), or
		// name=ip from API 1.44 on.
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, ok = strings.Cut(h, ":")
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if !ok || name == "" || strings.ContainsAny(name, " \t\n") {
			return nil, invalidf("invalid argument %q for \"--add-host\" flag: bad format for add-host", h)
		}
		if ip == "host-gateway" {
			return nil, invalidf("invalid argument %q for \"--add-host\" flag: host-gateway needs a network with a gateway, which berth does not have yet", h)
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, invalidf("invalid argument %q for \"--add-host\" flag: invalid IP address %q", h, ip)
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	return b.Bytes(), nil
}

// resolvContent is docker's resolv.conf: the host's (systemd-resolved's
// upstream file when the host points at the local stub), its local name
// servers dropped (a private network namespace cannot reach them) and
// Google's used when none is left; --dns, --dns-search and --dns-option
// replace what they name. On the host's network the host's file is used
// as it is.
func resolvContent(hc *container.HostConfig) ([]byte, error) {
	for _, ip := range hc.DNS {
		if !ip.IsValid() {
			return nil, invalidf("invalid --dns address")
		}
	}
	for _, s := range append(append([]string(nil), hc.DNSSearch...), hc.DNSOptions...) {
		if strings.ContainsAny(s, " \t\n") {
			return nil, invalidf("invalid DNS search domain or option %q", s)
		}
	}
	data, err := os.ReadFile(hostResolvConf)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", hostResolvConf, err)
	}
	hostNet := container.NetworkMode(hc.NetworkMode).IsHost()
	if !hostNet && usesResolvedStub(data) {
		if up, err := os.ReadFile(systemdResolvConf); err == nil {
			data = up
		}
	}
	var servers, search, options, other []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 || line[0] == '#' || line[0] == ';' {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue
			}
			if a, err := netip.ParseAddr(f[1]); err == nil && !hostNet && a.IsLoopback() {
				continue
			}
			servers = append(servers, f[1])
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		default:
			other = append(other, line)
		}
	}
	if len(hc.DNS) > 0 {
		servers = nil
		for _, ip := range hc.DNS {
			servers = append(servers, ip.String())
		}
	}
	if len(servers) == 0 && !hostNet {
		servers = defaultNameservers
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
		if len(search) == 1 && search[0] == "." {
			search = nil // docker's "no search domains"
		}
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	for _, l := range other {
		fmt.Fprintf(&b, "%s\n", l)
	}
	return b.Bytes(), nil
}

// usesResolvedStub tells whether a resolv.conf names only
// systemd-resolved's local stub.
func usesResolvedStub(data []byte) bool {
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if f[1] != "127.0.0.53" {
				return false
			}
			found = true
		}
	}
	return found
}
