// Package lookup answers the DNS questions a stock Caddy asks for its
// dynamic upstreams (the "a" and "srv" sources of reverse_proxy), so that a
// replica starting or stopping, or a host coming or going, changes an
// answer here instead of Caddy's config: Caddy reloads its whole config on
// every admin API change, and a lookup changes nothing but what one host's
// requests reach.
//
// It is a tiny authoritative server for names dockroute made up: A and AAAA
// for the names it was given; SRV for a host's name under HostSuffix (the
// host's addresses and ports, each as a name under IPSuffix that spells
// the address); NXDOMAIN for every other name; no recursion.
// It answers over UDP and, for answers too long for a datagram, TCP, as Go's
// resolver (Caddy's) expects.
package lookup

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Answers maps a name (lower case, with its final dot) to its addresses.
type Answers map[string][]netip.Addr

// Hosts tells where a host's requests go (the host in lower case,
// without a final dot): the SRV answer for its name under HostSuffix; ok
// is false for a host it does not know. It is asked per question, so that
// a change of hosts costs nothing until one is asked for.
type Hosts func(host string) (targets []netip.AddrPort, ok bool)

// The names of hosts and addresses: Caddy asks for the SRV records of
// "HOST" + HostSuffix, whose targets are IPName(addr) (a target must be a
// name), then dials each target, asking for its A or AAAA record. The
// address is spelled in the name, so any address dockroute ever gave out
// is answered, whatever the table says now. ".internal" is reserved for
// private use (ICANN, 2024): no real name can clash.
const (
	HostSuffix = ".hosts.dockroute.internal."
	IPSuffix   = ".ip.dockroute.internal."
)

// IPName is the name that Answer answers with a's address.
func IPName(a netip.Addr) string {
	a = a.Unmap()
	b := a.AsSlice()
	return hex.EncodeToString(b) + IPSuffix
}

// parseIPName reads IPName's name back.
func parseIPName(name string) (netip.Addr, bool) {
	label, ok := strings.CutSuffix(name, IPSuffix)
	if !ok || len(label) != 8 && len(label) != 32 {
		return netip.Addr{}, false
	}
	b, err := hex.DecodeString(label)
	if err != nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(b)
	return a.Unmap(), ok
}

const (
	// udpLimit is the answer size every DNS client takes over UDP; larger
	// ones need the asker's EDNS0 size (Go asks 1232).
	udpLimit = 512
	// ednsLimit caps the EDNS0 size dockroute honours: 1232 bytes is the
	// size that avoids IP fragmentation (DNS Flag Day 2020).
	ednsLimit = 1232
	// tcpIdle is how long a TCP connection may sit without a question.
	tcpIdle = 10 * time.Second
)

// Server answers from the last Answers it was given. Its zero value
// answers NXDOMAIN for everything; it is safe for concurrent use.
type Server struct {
	answers atomic.Pointer[Answers]
	hosts   atomic.Pointer[hostSet]
	log     *slog.Logger
	// Queries counts the questions answered, for metrics and tests.
	Queries atomic.Int64
}

// New returns a server that logs to log.
func New(log *slog.Logger) *Server { return &Server{log: log} }

// Set replaces every answer at once: a question sees the old set or the
// new, never a mix. a must not be changed afterwards.
func (s *Server) Set(a Answers) { s.answers.Store(&a) }

// hostSet is what SetHosts was given.
type hostSet struct {
	hosts Hosts
	other []netip.AddrPort
}

// SetHosts replaces the SRV answers at once: h's for its hosts, other for
// every other name under HostSuffix (nil: NXDOMAIN). h is called from the
// server's goroutines, concurrently.
func (s *Server) SetHosts(h Hosts, other []netip.AddrPort) {
	s.hosts.Store(&hostSet{hosts: h, other: other})
}

// service returns the SRV answer for name; ok is false for a name that is
// not a host's.
func (s *Server) service(name string) (targets []netip.AddrPort, ok bool) {
	host, isHost := strings.CutSuffix(strings.ToLower(name), HostSuffix)
	hs := s.hosts.Load()
	if !isHost || hs == nil || host == "" {
		return nil, false
	}
	if hs.hosts != nil {
		if t, ok := hs.hosts(host); ok {
			return t, true
		}
	}
	return hs.other, hs.other != nil
}

// lookup returns name's addresses; ok is false for a name not given.
func (s *Server) lookup(name string) (addrs []netip.Addr, ok bool) {
	a := s.answers.Load()
	if a == nil {
		return nil, false
	}
	addrs, ok = (*a)[strings.ToLower(name)]
	return addrs, ok
}

// Listen binds UDP and TCP on addr (host:port) and returns the function
// that serves them until its context ends, and the address bound (addr
// may ask for any port). Binding here, not in serve, makes an address in
// use fail the start-up instead of a goroutine.
func (s *Server) Listen(addr string) (serve func(context.Context), bound string, err error) {
	pc, ln, err := bind(addr)
	if err != nil {
		return nil, "", err
	}
	return func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { s.serveUDP(pc) })
		wg.Go(func() { s.serveTCP(ln) })
		<-ctx.Done()
		pc.Close()
		ln.Close()
		wg.Wait()
	}, pc.LocalAddr().String(), nil
}

// anyPortTries bounds how often bind picks another port when asked for
// any port.
const anyPortTries = 32

// bind binds UDP on addr, then TCP on the port UDP got. Asked for any
// port, it tries others when TCP's is taken: the kernel picks UDP's port
// among the ephemeral ports, which every outgoing TCP connection also
// takes from, so the same TCP port is in use now and then (a test run
// here failed so). A port that was asked for is the caller's to change.
func bind(addr string) (net.PacketConn, net.Listener, error) {
	return bindWith(addr, net.Listen)
}

// bindWith is bind with listenTCP for net.Listen.
func bindWith(addr string, listenTCP func(network, addr string) (net.Listener, error)) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for try := 1; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := listenTCP("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if (port != "0" && port != "") || !errors.Is(err, syscall.EADDRINUSE) || try == anyPortTries {
			return nil, nil, err
		}
	}
}

func (s *Server) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			s.log.Warn("upstream lookups: reading a question", "err", err)
			continue
		}
		if resp := s.Answer(buf[:n], udpLimit); resp != nil {
			pc.WriteTo(resp, from)
		}
	}
}

func (s *Server) serveTCP(ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			s.serveConn(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
}

// serveConn answers length-prefixed questions on c until it idles or
// closes (RFC 7766).
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	var size [2]byte
	for {
		c.SetDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		req := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		resp := s.Answer(req, 65535)
		if resp == nil {
			return
		}
		if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp)))); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// Answer returns the response to the DNS message req, at most limit bytes
// long (an EDNS0 size in req may raise a UDP limit); an answer that does
// not fit is sent truncated, without records, so the asker retries over
// TCP. It returns nil for what deserves no answer: a message too broken to
// carry an ID, or a response.
func (s *Server) Answer(req []byte, limit int) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return reply(h, nil, dnsmessage.RCodeFormatError, records{}, false, false)
	}
	edns := false
	if limit == udpLimit {
		limit, edns = udpSize(&p)
	}
	if h.OpCode != 0 {
		return reply(h, &q, dnsmessage.RCodeNotImplemented, records{}, edns, false)
	}
	if q.Class != dnsmessage.ClassINET {
		return reply(h, &q, dnsmessage.RCodeRefused, records{}, edns, false)
	}
	s.Queries.Add(1)
	name := q.Name.String()
	var rec records
	if targets, ok := s.service(name); ok {
		if q.Type == dnsmessage.TypeSRV {
			rec.srv = targets
		}
	} else if a, ok := parseIPName(strings.ToLower(name)); ok {
		rec.addrs = []netip.Addr{a}
	} else if rec.addrs, ok = s.lookup(name); !ok {
		return reply(h, &q, dnsmessage.RCodeNameError, records{}, edns, false)
	}
	rec.addrs = slices.DeleteFunc(slices.Clone(rec.addrs), func(a netip.Addr) bool {
		return !(q.Type == dnsmessage.TypeA && a.Is4() || q.Type == dnsmessage.TypeAAAA && a.Is6() && !a.Is4In6())
	})
	resp := reply(h, &q, dnsmessage.RCodeSuccess, rec, edns, false)
	if len(resp) > limit {
		return reply(h, &q, dnsmessage.RCodeSuccess, records{}, edns, true)
	}
	return resp
}

// records are an answer's records: addresses (A, AAAA) or SRV targets.
type records struct {
	addrs []netip.Addr
	srv   []netip.AddrPort
}

// udpSize reads the asker's EDNS0 UDP size from the additional section:
// the answer limit, and whether the asker speaks EDNS0 at all (then the
// answer carries an OPT record too, RFC 6891).
func udpSize(p *dnsmessage.Parser) (limit int, edns bool) {
	if p.SkipAllQuestions() != nil || p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return udpLimit, false
	}
	for {
		h, err := p.AdditionalHeader()
		if err != nil {
			return udpLimit, false
		}
		if h.Type == dnsmessage.TypeOPT {
			return min(max(int(h.Class), udpLimit), ednsLimit), true
		}
		if p.SkipAdditional() != nil {
			return udpLimit, false
		}
	}
}

// reply builds the answer to the question of req's header h; q is nil when
// the question could not be read.
func reply(h dnsmessage.Header, q *dnsmessage.Question, rcode dnsmessage.RCode, rec records, edns, truncated bool) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{
		ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: rcode == dnsmessage.RCodeSuccess || rcode == dnsmessage.RCodeNameError,
		RecursionDesired: h.RecursionDesired, RCode: rcode, Truncated: truncated,
	})
	b.EnableCompression()
	// Errors below can only come from a name or record that does not
	// encode, and every one of them comes from the question just parsed.
	if q != nil {
		if b.StartQuestions() != nil || b.Question(*q) != nil {
			return nil
		}
		if b.StartAnswers() != nil {
			return nil
		}
		// TTL 0: Caddy caches by its own refresh interval; nothing else
		// should keep these.
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}
		for _, t := range rec.srv {
			target, err := dnsmessage.NewName(IPName(t.Addr()))
			if err != nil || b.SRVResource(rh, dnsmessage.SRVResource{Weight: 1, Port: t.Port(), Target: target}) != nil {
				return nil
			}
		}
		for _, a := range rec.addrs {
			var err error
			if a.Is4() {
				err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
			} else {
				err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
			if err != nil {
				return nil
			}
		}
	}
	if edns {
		if b.StartAdditionals() != nil {
			return nil
		}
		var oh dnsmessage.ResourceHeader
		if oh.SetEDNS0(ednsLimit, dnsmessage.RCodeSuccess, false) != nil || b.OPTResource(oh, dnsmessage.OPTResource{}) != nil {
			return nil
		}
	}
	resp, err := b.Finish()
	if err != nil {
		return nil
	}
	return resp
}
