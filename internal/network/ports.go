package network

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"
)

// portMapping is one published port: a host address and port forwarded
// to a container port.
type portMapping struct {
	// HostIP is the host address; unspecified (0.0.0.0 or ::) for all.
	HostIP        netip.Addr `json:"hostIP"`
	HostPort      uint16     `json:"hostPort"`
	ContainerPort uint16     `json:"containerPort"`
	Proto         string     `json:"proto"`
}

// reservation is a host port held by berthd for a mapping: a socket bound
// to the address and port (never listening), so that no other container
// and no host process takes the port while the container has it.
type reservation struct {
	m  portMapping
	fd int
}

func releasePorts(rs []reservation) {
	for _, r := range rs {
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
	}
}

// portRequest is one binding asked for: a host port range (0-0 for a
// random port) for a container port.
type portRequest struct {
	hostIP        netip.Addr
	first, last   uint16
	containerPort uint16
	proto         string
}

// portRequests turns docker's port bindings (and -P's exposed ports)
// into requests, in a stable order. A binding without a host address
// uses def.
func portRequests(bindings network.PortMap, exposed network.PortSet, publishAll bool, def netip.Addr) ([]portRequest, error) {
	var reqs []portRequest
	ports := make([]network.Port, 0, len(bindings))
	for p := range bindings {
		ports = append(ports, p)
	}
	if publishAll {
		for p := range exposed {
			if len(bindings[p]) == 0 && !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
	}
	slices.SortFunc(ports, func(a, b network.Port) int {
		return cmp.Or(cmp.Compare(a.Num(), b.Num()), cmp.Compare(a.Proto(), b.Proto()))
	})
	for _, p := range ports {
		if !p.IsValid() || p.Num() == 0 {
			return nil, invalidf("invalid container port %q", p)
		}
		proto := strings.ToLower(string(p.Proto()))
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return nil, invalidf("invalid protocol %q for port %d: want tcp, udp or sctp", proto, p.Num())
		}
		bs := bindings[p]
		if len(bs) == 0 {
			if !publishAll {
				continue
			}
			bs = []network.PortBinding{{}}
		}
		for _, b := range bs {
			ip := b.HostIP
			if !ip.IsValid() {
				ip = def
			}
			ip = ip.Unmap()
			first, last, err := parseHostPorts(b.HostPort)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, portRequest{hostIP: ip, first: first, last: last, containerPort: p.Num(), proto: proto})
		}
	}
	return reqs, nil
}

// parseHostPorts reads "", "8080" or "8000-8010".
func parseHostPorts(s string) (first, last uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	f, err1 := strconv.ParseUint(lo, 10, 16)
	l := f
	var err2 error
	if isRange {
		l, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || l < f || (f == 0 && (isRange || l != 0)) {
		return 0, 0, invalidf("invalid host port %q: want a port or a range (8000-8010) within 1-65535", s)
	}
	return uint16(f), uint16(l), nil
}

// reservePorts binds a host port for every request: the asked port, the
// first free one of a range, or a random ephemeral port (the kernel's
// pick from net.ipv4.ip_local_port_range, as docker's -P). On error
// nothing stays bound.
func reservePorts(reqs []portRequest) ([]reservation, error) {
	var held []reservation
	for _, q := range reqs {
		var r reservation
		var err error
		if q.first == 0 {
			r, err = bindPort(q.hostIP, 0, q.proto)
		} else {
			for p := uint32(q.first); p <= uint32(q.last); p++ {
				if r, err = bindPort(q.hostIP, uint16(p), q.proto); err == nil || !errors.Is(err, unix.EADDRINUSE) {
					break
				}
			}
		}
		if err != nil {
			releasePorts(held)
			if errors.Is(err, unix.EADDRINUSE) {
				return nil, fmt.Errorf("Bind for %s failed: port is already allocated", hostPortString(q))
			}
			return nil, fmt.Errorf("bind host port %s/%s: %w", hostPortString(q), q.proto, err)
		}
		r.m.ContainerPort = q.containerPort
		held = append(held, r)
	}
	return held, nil
}

func hostPortString(q portRequest) string {
	ports := strconv.Itoa(int(q.first))
	if q.last != q.first {
		ports += "-" + strconv.Itoa(int(q.last))
	}
	if q.hostIP.Is6() {
		return "[" + q.hostIP.String() + "]:" + ports
	}
	return q.hostIP.String() + ":" + ports
}

// bindPort binds (never listens on) ip:port for proto; port 0 lets the
// kernel choose.
func bindPort(ip netip.Addr, port uint16, proto string) (reservation, error) {
	fam := unix.AF_INET
	if ip.Is6() {
		fam = unix.AF_INET6
	}
	typ, p := unix.SOCK_STREAM, 0
	switch proto {
	case "udp":
		typ = unix.SOCK_DGRAM
	case "sctp":
		typ, p = unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP
	}
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, p)
	if err != nil {
		return reservation{}, fmt.Errorf("socket: %w", err)
	}
	var sa unix.Sockaddr
	if ip.Is6() {
		// [::] must not also take the IPv4 port: 0.0.0.0 has its own
		// reservation.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			unix.Close(fd)
			return reservation{}, err
		}
		sa = &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return reservation{}, err
	}
	if port == 0 {
		got, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return reservation{}, err
		}
		switch a := got.(type) {
		case *unix.SockaddrInet4:
			port = uint16(a.Port)
		case *unix.SockaddrInet6:
			port = uint16(a.Port)
		}
	}
	return reservation{fd: fd, m: portMapping{HostIP: ip, HostPort: port, Proto: proto}}, nil
}

// portMap is docker's view of the mappings, for inspect and `port`.
func portMap(ms []portMapping) network.PortMap {
	pm := network.PortMap{}
	for _, m := range ms {
		p, ok := network.PortFrom(m.ContainerPort, network.IPProtocol(m.Proto))
		if !ok {
			continue
		}
		pm[p] = append(pm[p], network.PortBinding{HostIP: m.HostIP, HostPort: strconv.Itoa(int(m.HostPort))})
	}
	return pm
}

// cniPortMappings is the portmap plugin's runtime configuration.
func cniPortMappings(ms []portMapping) []map[string]any {
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		e := map[string]any{"hostPort": int(m.HostPort), "containerPort": int(m.ContainerPort), "protocol": m.Proto}
		if !m.HostIP.IsUnspecified() {
			e["hostIP"] = m.HostIP.String()
		}
		out = append(out, e)
	}
	return out
}
