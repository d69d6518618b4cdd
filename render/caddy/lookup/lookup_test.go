package lookup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// start serves s on a loopback port and returns a resolver asking it
// exactly as Caddy's "a" source does (Go's resolver, dialing the address).
func start(t *testing.T, s *Server) *net.Resolver {
	t.Helper()
	serve, addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func addrs(t *testing.T, r *net.Resolver, name string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := r.LookupIPAddr(ctx, name)
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out, err
}

func TestAnswersFromTheLastSet(t *testing.T) {
	s := New(slog.Default())
	r := start(t, s)
	s.Set(Answers{"r1.dockroute.internal.": {netip.MustParseAddr("172.17.0.2"), netip.MustParseAddr("fd00::3")}})
	got, err := addrs(t, r, "r1.dockroute.internal.")
	if err != nil || !slices.Equal(got, []string{"172.17.0.2", "fd00::3"}) {
		t.Fatalf("got %v, %v; want both families", got, err)
	}
	// Names are case-insensitive (resolvers may randomise case).
	if got, err := addrs(t, r, "R1.DockRoute.Internal."); err != nil || len(got) != 2 {
		t.Fatalf("upper case: got %v, %v", got, err)
	}
	s.Set(Answers{"r1.dockroute.internal.": {netip.MustParseAddr("172.17.0.9")}})
	if got, err := addrs(t, r, "r1.dockroute.internal."); err != nil || !slices.Equal(got, []string{"172.17.0.9"}) {
		t.Fatalf("after Set: got %v, %v", got, err)
	}
}

func TestUnknownNameIsNXDOMAIN(t *testing.T) {
	s := New(slog.Default())
	r := start(t, s)
	_, err := addrs(t, r, "nothing.dockroute.internal.") // before any Set
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("before Set: got %v, want not found", err)
	}
	s.Set(Answers{"r1.dockroute.internal.": {netip.MustParseAddr("10.0.0.1")}})
	if _, err := addrs(t, r, "r2.dockroute.internal."); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("got %v, want not found", err)
	}
}

// TestLongAnswersGoOverTCP: 300 replicas do not fit a datagram; the
// truncated answer sends Go's resolver to TCP, which carries all of them.
func TestLongAnswersGoOverTCP(t *testing.T) {
	s := New(slog.Default())
	r := start(t, s)
	var many []netip.Addr
	for i := range 300 {
		many = append(many, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
	}
	s.Set(Answers{"big.dockroute.internal.": many})
	got, err := addrs(t, r, "big.dockroute.internal.")
	if err != nil || len(got) != 300 {
		t.Fatalf("got %d addresses, %v; want 300", len(got), err)
	}
}

func question(t testing.TB, id uint16, name string, typ dnsmessage.Type, edns uint16) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	b.StartQuestions()
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	if edns > 0 {
		b.StartAdditionals()
		var h dnsmessage.ResourceHeader
		h.SetEDNS0(int(edns), dnsmessage.RCodeSuccess, false)
		b.OPTResource(h, dnsmessage.OPTResource{})
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestAnswerShape checks what the resolver test cannot see: the ID and
// question are echoed, the answer is authoritative, TTL 0, and an EDNS0
// question gets an OPT back.
func TestAnswerShape(t *testing.T) {
	s := New(slog.Default())
	s.Set(Answers{"a.dockroute.internal.": {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}})
	var m dnsmessage.Message
	if err := m.Unpack(s.Answer(question(t, 4242, "a.dockroute.internal.", dnsmessage.TypeA, 1232), udpLimit)); err != nil {
		t.Fatal(err)
	}
	if m.ID != 4242 || !m.Response || !m.Authoritative || m.RCode != dnsmessage.RCodeSuccess || len(m.Questions) != 1 {
		t.Fatalf("header %+v", m.Header)
	}
	if len(m.Answers) != 1 || m.Answers[0].Header.TTL != 0 || m.Answers[0].Body.(*dnsmessage.AResource).A != [4]byte{10, 0, 0, 1} {
		t.Fatalf("answers %+v; want only the IPv4 address, TTL 0", m.Answers)
	}
	if len(m.Additionals) != 1 || m.Additionals[0].Header.Type != dnsmessage.TypeOPT {
		t.Fatalf("additionals %+v; want an OPT", m.Additionals)
	}
	// A type it has nothing of: no error, no records.
	m = dnsmessage.Message{}
	if err := m.Unpack(s.Answer(question(t, 7, "a.dockroute.internal.", dnsmessage.TypeMX, 0), udpLimit)); err != nil {
		t.Fatal(err)
	}
	if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 || len(m.Additionals) != 0 {
		t.Fatalf("MX: %+v", m)
	}
	// Not a question: no answer at all (no reflection of responses).
	resp := s.Answer(question(t, 7, "a.dockroute.internal.", dnsmessage.TypeA, 0), udpLimit)
	if s.Answer(resp, udpLimit) != nil {
		t.Fatal("answered a response")
	}
}

// FuzzAnswer feeds arbitrary datagrams to Answer: whatever it answers must
// be a well-formed DNS response with the asker's ID, within the limit.
// Seeds: testdata/fuzz/FuzzAnswer.
func FuzzAnswer(f *testing.F) {
	f.Add(question(f, 1, "a.dockroute.internal.", dnsmessage.TypeA, 0))
	f.Add(question(f, 2, "a.dockroute.internal.", dnsmessage.TypeAAAA, 4096))
	f.Add(question(f, 3, "b.example.", dnsmessage.TypeA, 0))
	s := New(slog.Default())
	many := []netip.Addr{netip.MustParseAddr("fd00::1")}
	for i := range 100 {
		many = append(many, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	s.Set(Answers{"a.dockroute.internal.": many})
	f.Fuzz(func(t *testing.T, req []byte) {
		resp := s.Answer(req, udpLimit)
		if resp == nil {
			return
		}
		if len(resp) > ednsLimit {
			t.Fatalf("answer of %d bytes over UDP", len(resp))
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		var p dnsmessage.Parser
		h, _ := p.Start(req)
		if !m.Response || m.ID != h.ID {
			t.Fatalf("answer %+v to question ID %d", m.Header, h.ID)
		}
	})
}

// takenTCP is net.Listen for bind, but its first n ports are taken, as
// an outgoing connection takes one. Taking real ports would be the real
// thing, but two fifths of the machine's ephemeral ports (enough for a
// test that fails without the retry) are ports other tests running beside
// this one, and Docker's published ports, may be about to bind.
type takenTCP struct{ n, calls int }

func (tt *takenTCP) listen(network, addr string) (net.Listener, error) {
	tt.calls++
	if tt.calls <= tt.n {
		return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	return net.Listen(network, addr)
}

func TestAnyPortAvoidsTakenTCPPorts(t *testing.T) {
	tt := &takenTCP{n: 5}
	pc, ln, err := bindWith("127.0.0.1:0", tt.listen)
	if err != nil {
		t.Fatalf("any port, the first 5 TCP ports taken: %v", err)
	}
	defer pc.Close()
	defer ln.Close()
	if tt.calls != 6 || pc.LocalAddr().(*net.UDPAddr).Port != ln.Addr().(*net.TCPAddr).Port {
		t.Fatalf("%d tries, UDP %v and TCP %v: want 6 tries ending on one port", tt.calls, pc.LocalAddr(), ln.Addr())
	}

	// Every port taken: it gives up, with the reason.
	tt = &takenTCP{n: 1 << 30}
	if _, _, err := bindWith("127.0.0.1:0", tt.listen); !errors.Is(err, syscall.EADDRINUSE) || tt.calls != anyPortTries {
		t.Fatalf("every TCP port taken: %v after %d tries, want address in use after %d", err, tt.calls, anyPortTries)
	}
}

// TestPortAskedForIsNotChanged: a taken port the operator named fails
// the start-up rather than binding somewhere else.
func TestPortAskedForIsNotChanged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if pc, l, err := bind(ln.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		if err == nil {
			pc.Close()
			l.Close()
		}
		t.Fatalf("binding a taken TCP port: %v, want address in use", err)
	}
}

// TestHostServices: a host's name under HostSuffix is answered with SRV
// records whose targets are names spelling each address, as Caddy's "srv"
// source asks (Go's LookupSRV, then a dial of each target); any other
// host gets the fallback, and without one NXDOMAIN.
func TestHostServices(t *testing.T) {
	s := New(slog.Default())
	r := start(t, s)
	s.SetHosts(func(host string) ([]netip.AddrPort, bool) {
		if host != "a.test" {
			return nil, false
		}
		return []netip.AddrPort{netip.MustParseAddrPort("172.17.0.2:8080"), netip.MustParseAddrPort("[fd00::3]:8080")}, true
	}, nil)
	ctx := context.Background()
	_, srvs, err := r.LookupSRV(ctx, "", "", "A.Test"+HostSuffix)
	if err != nil || len(srvs) != 2 {
		t.Fatalf("got %v, %v", srvs, err)
	}
	var got []string
	for _, srv := range srvs {
		ips, err := r.LookupIPAddr(ctx, srv.Target)
		if err != nil || len(ips) != 1 {
			t.Fatalf("target %s: %v %v", srv.Target, ips, err)
		}
		got = append(got, net.JoinHostPort(ips[0].IP.String(), fmt.Sprint(srv.Port)))
	}
	slices.Sort(got)
	if want := []string{"172.17.0.2:8080", "[fd00::3]:8080"}; !slices.Equal(got, want) {
		t.Fatalf("dialled %v, want %v", got, want)
	}
	if _, _, err := r.LookupSRV(ctx, "", "", "b.test"+HostSuffix); !isNotFound(err) {
		t.Fatalf("unknown host without a fallback: %v", err)
	}
	s.SetHosts(nil, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")})
	if _, srvs, err := r.LookupSRV(ctx, "", "", "b.test"+HostSuffix); err != nil || len(srvs) != 1 || srvs[0].Port != 9 {
		t.Fatalf("unknown host with a fallback: %v %v", srvs, err)
	}
	// A name under IPSuffix that spells no address is no name.
	if _, err := r.LookupIPAddr(ctx, "zz"+IPSuffix); !isNotFound(err) {
		t.Fatalf("a bad address name: %v", err)
	}
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
