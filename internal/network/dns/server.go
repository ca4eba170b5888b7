package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// ttl is the time to live of the answers for containers' names (docker's).
const ttl = 600

// maxForwards bounds the queries being forwarded at once, so that a
// container flooding the server with names of its choosing holds at most
// this many upstream exchanges.
const maxForwards = 64

// Config is what a Server needs.
type Config struct {
	// Upstreams returns the servers for names the server does not own,
	// for a container that named none of its own (--dns). Called per
	// forwarded query so that a changed host resolv.conf takes effect.
	Upstreams func() []netip.AddrPort
	// Timeout bounds one upstream exchange; 2 s when zero.
	Timeout time.Duration
	// Logf reports serving errors; discarded when nil.
	Logf func(format string, args ...any)
}

// Record is one container's names on one network.
type Record struct {
	// Network is the network's ID; NetworkName its name, which also
	// qualifies the container's names ("web.mynet").
	Network     string
	NetworkName string
	// Container is the container's ID.
	Container string
	// Names are the names the container answers to on the network:
	// its name, its aliases, its short ID, its hostname.
	Names []string
	// Addrs are its addresses on the network.
	Addrs []netip.Addr
	// Upstreams are the container's own servers (--dns), used instead of
	// Config.Upstreams for the names it asks that the server does not own.
	Upstreams []netip.AddrPort
}

type recordKey struct{ container, network string }

// listener is one network's pair of servers on its gateway.
type listener struct {
	network  string
	internal bool
	addr     netip.AddrPort
	udp, tcp *mdns.Server
}

// Server is berth's embedded DNS server: it answers the names of the
// containers on the networks the asking container shares with them, and
// forwards every other name to the upstream servers, as docker's
// 127.0.0.11 does. One Server listens on the gateway of every
// user-defined network.
type Server struct {
	cfg      Config
	forwards chan struct{}

	mu        sync.RWMutex
	records   map[recordKey]Record
	listeners map[string][]*listener // by network
	internal  map[string]bool        // networks that never forward
}

// NewServer returns a server that listens nowhere yet.
func NewServer(cfg Config) *Server {
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Upstreams == nil {
		cfg.Upstreams = func() []netip.AddrPort { return nil }
	}
	return &Server{
		cfg:       cfg,
		forwards:  make(chan struct{}, maxForwards),
		records:   map[recordKey]Record{},
		listeners: map[string][]*listener{},
		internal:  map[string]bool{},
	}
}

// Listen serves the network on addr (UDP and TCP). An internal network's
// containers get no forwarding unless another of their networks is not
// internal. Listening again on the same address is a no-op.
func (s *Server) Listen(network string, addr netip.AddrPort, internal bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.internal[network] = internal
	for _, l := range s.listeners[network] {
		if l.addr == addr {
			return nil
		}
	}
	l := &listener{network: network, internal: internal, addr: addr}
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		return fmt.Errorf("listen udp %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) { s.serve(l, w, q) })
	l.udp = &mdns.Server{PacketConn: pc, Handler: h, UDPSize: 65535}
	l.tcp = &mdns.Server{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 8 * time.Second }}
	for _, srv := range []*mdns.Server{l.udp, l.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.cfg.Logf("embedded DNS on %s: %v", addr, err)
			}
		}()
		<-started
	}
	s.listeners[network] = append(s.listeners[network], l)
	return nil
}

// Unlisten stops serving the network.
func (s *Server) Unlisten(network string) {
	s.mu.Lock()
	ls := s.listeners[network]
	delete(s.listeners, network)
	delete(s.internal, network)
	s.mu.Unlock()
	for _, l := range ls {
		l.udp.Shutdown()
		l.tcp.Shutdown()
	}
}

// Close stops every listener.
func (s *Server) Close() {
	s.mu.RLock()
	var nets []string
	for n := range s.listeners {
		nets = append(nets, n)
	}
	s.mu.RUnlock()
	for _, n := range nets {
		s.Unlisten(n)
	}
}

// Add sets the container's record on the network, replacing any.
func (s *Server) Add(r Record) {
	r.Names = slices.Clone(r.Names)
	for i, n := range r.Names {
		r.Names[i] = canonical(n)
	}
	s.mu.Lock()
	s.records[recordKey{r.Container, r.Network}] = r
	s.mu.Unlock()
}

// Remove drops the container's record on the network.
func (s *Server) Remove(container, network string) {
	s.mu.Lock()
	delete(s.records, recordKey{container, network})
	s.mu.Unlock()
}

// canonical is a name lower-cased, without its final dot.
func canonical(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// view is what one query may see: the networks of the asking container,
// and whether it may have names forwarded.
type view struct {
	networks  map[string]bool
	forward   bool
	upstreams []netip.AddrPort
}

// viewOf finds the asking container by its source address: among the
// records of the listener's network first, then among every record (a
// container that asks another network's gateway sees its own networks,
// not that one). A client that is no container (the host, or a container
// not attached yet) sees no names at all, and has names forwarded unless
// the listener's network is internal.
// Preconditions: s.mu held for reading.
func (s *Server) viewOf(l *listener, client netip.Addr) view {
	v := view{networks: map[string]bool{}}
	var container string
	for _, local := range []bool{true, false} {
		for k, r := range s.records {
			if (k.network == l.network) == local && slices.Contains(r.Addrs, client) {
				container = k.container
				v.upstreams = r.Upstreams
				break
			}
		}
		if container != "" {
			break
		}
	}
	if container == "" {
		v.forward = !s.internal[l.network]
		return v
	}
	for k := range s.records {
		if k.container == container {
			v.networks[k.network] = true
			if !s.internal[k.network] {
				v.forward = true
			}
		}
	}
	return v
}

// lookup answers name from the records the view sees: the addresses of
// the containers with that name (or "name.network"), and whether the
// name is the server's at all.
// Preconditions: s.mu held for reading.
func (s *Server) lookup(v view, name string) (addrs []netip.Addr, owned bool) {
	for k, r := range s.records {
		if !v.networks[k.network] {
			continue
		}
		match := false
		for _, n := range r.Names {
			if name == n || (r.NetworkName != "" && name == n+"."+strings.ToLower(r.NetworkName)) {
				match = true
				break
			}
		}
		if match {
			owned = true
			for _, a := range r.Addrs {
				if !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
		}
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	return addrs, owned
}

// reverse answers a PTR name for an address of a container the view sees.
// Preconditions: s.mu held for reading.
func (s *Server) reverse(v view, addr netip.Addr) (string, bool) {
	for k, r := range s.records {
		if v.networks[k.network] && slices.Contains(r.Addrs, addr) && len(r.Names) > 0 {
			n := r.Names[0]
			if r.NetworkName != "" {
				n += "." + strings.ToLower(r.NetworkName)
			}
			return mdns.Fqdn(n), true
		}
	}
	return "", false
}

func (s *Server) serve(l *listener, w mdns.ResponseWriter, q *mdns.Msg) {
	resp := s.answer(l, w, q)
	if resp == nil {
		return
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := mdns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.cfg.Logf("embedded DNS: answer %s: %v", w.RemoteAddr(), err)
	}
}

// answer builds the response to q; nil drops the query.
func (s *Server) answer(l *listener, w mdns.ResponseWriter, q *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg)
	if q.Response || q.Opcode != mdns.OpcodeQuery || len(q.Question) != 1 {
		if q.Response {
			return nil // never answer answers
		}
		resp.SetRcode(q, mdns.RcodeNotImplemented)
		return resp
	}
	resp.SetReply(q)
	resp.RecursionAvailable = true
	question := q.Question[0]
	name := canonical(question.Name)
	client := addrOf(w.RemoteAddr())

	s.mu.RLock()
	v := s.viewOf(l, client)
	var rrs []mdns.RR
	owned := false
	switch {
	case question.Qclass != mdns.ClassINET:
	case question.Qtype == mdns.TypePTR:
		if a, ok := reverseName(name); ok {
			if target, ok := s.reverse(v, a); ok {
				owned = true
				rrs = append(rrs, &mdns.PTR{Hdr: hdr(question.Name, mdns.TypePTR), Ptr: target})
			}
		}
	default:
		var addrs []netip.Addr
		addrs, owned = s.lookup(v, name)
		for _, a := range addrs {
			switch {
			case a.Is4() && (question.Qtype == mdns.TypeA || question.Qtype == mdns.TypeANY):
				rrs = append(rrs, &mdns.A{Hdr: hdr(question.Name, mdns.TypeA), A: a.AsSlice()})
			case a.Is6() && (question.Qtype == mdns.TypeAAAA || question.Qtype == mdns.TypeANY):
				rrs = append(rrs, &mdns.AAAA{Hdr: hdr(question.Name, mdns.TypeAAAA), AAAA: a.AsSlice()})
			}
		}
	}
	s.mu.RUnlock()

	if owned {
		// A name the server owns is answered here for every type, with
		// no records when it has none of the type: never forwarded, so
		// that a container's name never leaks to the upstream servers.
		resp.Authoritative = true
		resp.Answer = rrs
		return resp
	}
	if !v.forward {
		resp.SetRcode(q, mdns.RcodeServerFailure)
		return resp
	}
	return s.forward(w, q, v)
}

func hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: ttl}
}

// forward sends q to the upstream servers in turn and relays the first
// answer; SERVFAIL when none answers.
func (s *Server) forward(w mdns.ResponseWriter, q *mdns.Msg, v view) *mdns.Msg {
	fail := new(mdns.Msg)
	fail.SetRcode(q, mdns.RcodeServerFailure)
	select {
	case s.forwards <- struct{}{}:
		defer func() { <-s.forwards }()
	default:
		return fail
	}
	ups := v.upstreams
	if len(ups) == 0 {
		ups = s.cfg.Upstreams()
	}
	netw := "udp"
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		netw = "tcp"
	}
	for _, up := range ups {
		c := &mdns.Client{Net: netw, Timeout: s.cfg.Timeout, UDPSize: 4096}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		r, _, err := c.ExchangeContext(ctx, q, up.String())
		if err == nil && r != nil && r.Truncated && netw == "udp" {
			c.Net = "tcp"
			r, _, err = c.ExchangeContext(ctx, q, up.String())
		}
		cancel()
		if err != nil || r == nil {
			s.cfg.Logf("embedded DNS: forward to %s: %v", up, errOrEmpty(err))
			continue
		}
		r.Id = q.Id
		return r
	}
	return fail
}

func errOrEmpty(err error) error {
	if err == nil {
		return errors.New("empty answer")
	}
	return err
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// reverseName parses a PTR name ("4.3.2.1.in-addr.arpa", nibbles in
// ip6.arpa) into the address it names.
func reverseName(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa"):
		parts := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa"), ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		slices.Reverse(parts)
		a, err := netip.ParseAddr(strings.Join(parts, "."))
		return a, err == nil && a.Is4()
	case strings.HasSuffix(name, ".ip6.arpa"):
		nibbles := strings.Split(strings.TrimSuffix(name, ".ip6.arpa"), ".")
		if len(nibbles) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, n := range nibbles {
			if len(n) != 1 {
				return netip.Addr{}, false
			}
			var v byte
			switch c := n[0]; {
			case c >= '0' && c <= '9':
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			pos := 31 - i // the first nibble is the lowest
			if pos%2 == 0 {
				b[pos/2] |= v << 4
			} else {
				b[pos/2] |= v
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
