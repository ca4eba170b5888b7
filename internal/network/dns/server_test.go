package dns

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// The tests run on loopback only: the "containers" are 127.0.0.x source
// addresses, the upstream a fake server on 127.0.0.1.

type upstream struct {
	addr netip.AddrPort
	mu   sync.Mutex
	seen []string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		u.mu.Lock()
		u.seen = append(u.seen, q.Question[0].Name)
		u.mu.Unlock()
		r := new(mdns.Msg)
		r.SetReply(q)
		r.Answer = append(r.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 1}, A: net.IPv4(192, 0, 2, 7)})
		w.WriteMsg(r)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return u
}

func (u *upstream) queries() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// freeAddr is a free UDP+TCP port on ip.
func freeAddr(t *testing.T, ip string) netip.AddrPort {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		a := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		pc.Close()
		if ln, err := net.Listen("tcp", a.String()); err == nil {
			ln.Close()
			return a
		}
	}
	t.Fatal("no free port")
	return netip.AddrPort{}
}

// ask sends one question from the source address src.
func ask(t *testing.T, server netip.AddrPort, src, name string, qtype uint16, network string) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: network, Timeout: 2 * time.Second}
	if network == "tcp" {
		c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	} else {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	}
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), qtype)
	r, _, err := c.Exchange(q, server.String())
	if err != nil {
		t.Fatalf("%s %s from %s: %v", mdns.TypeToString[qtype], name, src, err)
	}
	return r
}

func answers(r *mdns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		case *mdns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	slices.Sort(out)
	return out
}

func TestServer(t *testing.T) {
	up := newUpstream(t)
	s := NewServer(Config{Upstreams: func() []netip.AddrPort { return []netip.AddrPort{up.addr} }, Logf: t.Logf})
	defer s.Close()
	lnA, lnInt := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	if err := s.Listen("netA", lnA, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("netA", lnA, false); err != nil {
		t.Fatalf("listening twice on one address: %v", err)
	}
	if err := s.Listen("netI", lnInt, true); err != nil {
		t.Fatal(err)
	}
	// web and api on netA; db on netI only; web also on netI.
	s.Add(Record{Network: "netA", NetworkName: "front", Container: "web", Names: []string{"web", "WWW"}, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("fd00::2")}})
	s.Add(Record{Network: "netA", NetworkName: "front", Container: "api", Names: []string{"api", "www"}, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.3")}})
	s.Add(Record{Network: "netI", NetworkName: "back", Container: "db", Names: []string{"db"}, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.4")}})
	s.Add(Record{Network: "netI", NetworkName: "back", Container: "web", Names: []string{"web"}, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.5")}})

	for _, c := range []struct {
		server   netip.AddrPort
		src      string
		name     string
		qtype    uint16
		want     []string
		rcode    int
		netw     string
		upstream bool
	}{
		// By name, case-insensitively, by alias shared by two (both),
		// by name.network; over UDP and TCP.
		{lnA, "127.0.0.3", "web", mdns.TypeA, []string{"127.0.0.2"}, mdns.RcodeSuccess, "udp", false},
		{lnA, "127.0.0.3", "Web.", mdns.TypeA, []string{"127.0.0.2"}, mdns.RcodeSuccess, "tcp", false},
		{lnA, "127.0.0.3", "www", mdns.TypeA, []string{"127.0.0.2", "127.0.0.3"}, mdns.RcodeSuccess, "udp", false},
		{lnA, "127.0.0.3", "web.front", mdns.TypeA, []string{"127.0.0.2"}, mdns.RcodeSuccess, "udp", false},
		{lnA, "127.0.0.3", "web", mdns.TypeAAAA, []string{"fd00::2"}, mdns.RcodeSuccess, "udp", false},
		// A local name without records of the type: empty, not forwarded.
		{lnA, "127.0.0.3", "api", mdns.TypeAAAA, nil, mdns.RcodeSuccess, "udp", false},
		{lnA, "127.0.0.3", "api", mdns.TypeMX, nil, mdns.RcodeSuccess, "udp", false},
		// Reverse.
		{lnA, "127.0.0.3", "2.0.0.127.in-addr.arpa", mdns.TypePTR, []string{"web.front."}, mdns.RcodeSuccess, "udp", false},
		// api shares no network with db: db is forwarded (and the fake
		// answers), it is not answered from the records.
		{lnA, "127.0.0.3", "db", mdns.TypeA, []string{"192.0.2.7"}, mdns.RcodeSuccess, "udp", true},
		// web is on both networks: it sees db, asking on either.
		{lnA, "127.0.0.2", "db", mdns.TypeA, []string{"127.0.0.4"}, mdns.RcodeSuccess, "udp", false},
		// db is only on the internal network: web.back resolves,
		// nothing else is forwarded.
		{lnInt, "127.0.0.4", "web", mdns.TypeA, []string{"127.0.0.5"}, mdns.RcodeSuccess, "udp", false},
		{lnInt, "127.0.0.4", "elsewhere.test", mdns.TypeA, nil, mdns.RcodeServerFailure, "udp", false},
		{lnInt, "127.0.0.4", "api", mdns.TypeA, nil, mdns.RcodeServerFailure, "udp", false},
		// web has a non-internal network too: it may have names forwarded.
		{lnInt, "127.0.0.5", "elsewhere.test", mdns.TypeA, []string{"192.0.2.7"}, mdns.RcodeSuccess, "udp", true},
		// A container asking another network's server sees its own
		// networks: api cannot read the internal network's names.
		{lnInt, "127.0.0.3", "db", mdns.TypeA, []string{"192.0.2.7"}, mdns.RcodeSuccess, "udp", true},
		{lnInt, "127.0.0.3", "api", mdns.TypeA, []string{"127.0.0.3"}, mdns.RcodeSuccess, "udp", false},
		// A client that is no container sees no names; it has them
		// forwarded only from a network that is not internal.
		{lnA, "127.0.0.9", "api", mdns.TypeA, []string{"192.0.2.7"}, mdns.RcodeSuccess, "udp", true},
		{lnInt, "127.0.0.9", "db", mdns.TypeA, nil, mdns.RcodeServerFailure, "udp", false},
	} {
		before := len(up.queries())
		r := ask(t, c.server, c.src, c.name, c.qtype, c.netw)
		if r.Rcode != c.rcode || !slices.Equal(answers(r), c.want) {
			t.Errorf("%s %s from %s: rcode %s answers %v, want %s %v", mdns.TypeToString[c.qtype], c.name, c.src, mdns.RcodeToString[r.Rcode], answers(r), mdns.RcodeToString[c.rcode], c.want)
		}
		if forwarded := len(up.queries()) > before; forwarded != c.upstream {
			t.Errorf("%s %s from %s: forwarded %v, want %v", mdns.TypeToString[c.qtype], c.name, c.src, forwarded, c.upstream)
		}
	}
	for _, q := range up.queries() {
		if q != "db." && q != "elsewhere.test." && q != "api." {
			t.Errorf("upstream asked %q", q)
		}
	}

	// A container's own --dns servers replace the host's.
	own := newUpstream(t)
	s.Add(Record{Network: "netA", NetworkName: "front", Container: "cli", Names: []string{"cli"}, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.6")}, Upstreams: []netip.AddrPort{own.addr}})
	ask(t, lnA, "127.0.0.6", "mine.test", mdns.TypeA, "udp")
	if q := own.queries(); len(q) != 1 || q[0] != "mine.test." {
		t.Errorf("the container's own server got %v", q)
	}

	// Removed records stop answering; a removed listener stops serving.
	s.Remove("api", "netA")
	if r := ask(t, lnA, "127.0.0.2", "api", mdns.TypeA, "udp"); slices.Contains(answers(r), "127.0.0.3") {
		t.Error("removed record still answered")
	}
	s.Unlisten("netI")
	c := &mdns.Client{Timeout: 300 * time.Millisecond}
	q := new(mdns.Msg)
	q.SetQuestion("db.", mdns.TypeA)
	if _, _, err := c.Exchange(q, lnInt.String()); err == nil {
		t.Error("an unlistened network still answers")
	}
}

// Queries that are not queries, answers sent as queries, and answers too
// big for UDP.
func TestServerOddQueries(t *testing.T) {
	s := NewServer(Config{})
	defer s.Close()
	ln := freeAddr(t, "127.0.0.1")
	if err := s.Listen("n", ln, false); err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for i := range 100 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{127, 1, byte(i / 256), byte(i)}))
	}
	s.Add(Record{Network: "n", Container: "big", Names: []string{"big"}, Addrs: addrs})

	r := ask(t, ln, "127.1.0.0", "big", mdns.TypeA, "udp")
	if !r.Truncated || len(r.Answer) >= 100 {
		t.Errorf("100 addresses over UDP: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	if r := ask(t, ln, "127.1.0.0", "big", mdns.TypeA, "tcp"); r.Truncated || len(r.Answer) != 100 {
		t.Errorf("over TCP: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}

	c := &mdns.Client{Timeout: time.Second}
	notify := new(mdns.Msg)
	notify.SetNotify("big.")
	if r, _, err := c.Exchange(notify, ln.String()); err != nil || r.Rcode != mdns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %v %v", r, err)
	}
	// An answer sent to the server gets no answer back.
	resp := new(mdns.Msg)
	resp.SetQuestion("big.", mdns.TypeA)
	resp.Response = true
	c.Timeout = 300 * time.Millisecond
	if _, _, err := c.Exchange(resp, ln.String()); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("a response sent as a query was answered: %v", err)
	}
	// No upstream at all: SERVFAIL, not a hang.
	if r := ask(t, ln, "127.0.0.1", "elsewhere.test", mdns.TypeA, "udp"); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("no upstream: %s", mdns.RcodeToString[r.Rcode])
	}
}

func TestReverseName(t *testing.T) {
	for name, want := range map[string]string{
		"4.3.2.1.in-addr.arpa": "1.2.3.4",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa": "fd00::1",
		"3.2.1.in-addr.arpa":   "",
		"x.3.2.1.in-addr.arpa": "",
		"1.2.ip6.arpa":         "",
		"example.com":          "",
	} {
		a, ok := reverseName(name)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != want {
			t.Errorf("reverseName(%q) = %q, want %q", name, got, want)
		}
	}
}
