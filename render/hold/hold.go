// Package hold is dockroute's holding endpoint. While a routed host has no
// ready container — the gap of a deploy between the old container's stop
// and the new one's readiness, a `docker restart`, a crash before its
// restart — the proxy sends the host's requests here instead of answering
// 503. Each request waits until the host has a ready backend again and is
// then forwarded to it, or, once the limit passes, is answered 503 with
// Retry-After. A host with a ready backend is never sent here: the proxy
// goes to the containers directly, so holding costs nothing when warm.
//
// Only the proxy may have a request held: it sends the endpoint's token
// with the route the request matched, both set by the proxy's own config
// (a client's headers of those names are overwritten). The route's guards
// (auth, middlewares, path stripping) have run in the proxy before; the
// endpoint forwards only to the servers the route table gives that route
// at the moment it forwards, so a held request reaches the app that owns
// the host now, never an address remembered from before.
package hold

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// The headers the proxy's config sets on a held route's requests.
const (
	TokenHeader = "X-Dockroute-Hold"
	RouteHeader = "X-Dockroute-Route"
)

// RouteValue is RouteHeader's value for a route: its host and path
// prefix, written together ("example.com/api"; a host has no "/").
func RouteValue(host, path string) string { return host + path }

// PathPrefix starts the path of a holding-endpoint server URL, for a
// proxy that can put a path on one server only (Traefik's preservePath):
// PathPrefix + token + "/" + route + the request's own path. Headers
// would do, but a proxy sets them for every server of a service, and the
// token must never reach an app.
const PathPrefix = "/.dockroute-hold/"

// Path is the server URL path that asks to hold a route's requests.
func Path(token, host, path string) string {
	return PathPrefix + token + "/" + base64.RawURLEncoding.EncodeToString([]byte(RouteValue(host, path)))
}

// Named finds, in a proxy's config, the first server URL that Path wrote,
// and returns its address and token. The file may have been edited: only
// a HOST:PORT address and a token as dockroute makes them (hex) are taken;
// anything else is not found, and a new endpoint is made.
func Named(config []byte) (addr, token string, ok bool) {
	i := bytes.Index(config, []byte(PathPrefix))
	if i < 0 {
		return "", "", false
	}
	start := bytes.LastIndex(config[:i], []byte("://"))
	if start < 0 {
		return "", "", false
	}
	addr = string(config[start+3 : i])
	rest := config[i+len(PathPrefix):]
	end := bytes.IndexByte(rest, '/')
	if end <= 0 || !isHex(rest[:end]) {
		return "", "", false
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" || strings.ContainsAny(addr, " \n\"'/") {
		return "", "", false
	}
	return addr, string(rest[:end]), true
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// fromPath reads what Path wrote before the request's own path, and
// restores that path; ok is false when r's path is not one of Path's.
func fromPath(r *http.Request) (token, rv string, ok bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		return "", "", false
	}
	token, rest, _ = strings.Cut(rest, "/")
	enc, own, _ := strings.Cut(rest, "/")
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	cut := len(PathPrefix) + len(token) + 1 + len(enc)
	r.URL.Path = "/" + own
	if r.URL.RawPath != "" && len(r.URL.RawPath) >= cut {
		r.URL.RawPath = "/" + strings.TrimPrefix(r.URL.RawPath[cut:], "/")
	}
	return token, string(b), true
}

// Endpoint holds and forwards requests. Update gives it each table the
// daemon publishes; Limit and Token are set before it serves.
type Endpoint struct {
	// Limit is how long a request is held before it is answered 503.
	Limit time.Duration
	// Token is the secret the proxy sends in TokenHeader.
	Token string
	// InsecureUpstream skips verifying https backends' certificates, as
	// the proxy does with --upstream-insecure.
	InsecureUpstream bool
	Log              *slog.Logger
	// Sleep, when set, is told of every request the endpoint serves, and
	// asked to wake the containers of a route that sleeps when it has
	// none up (package sleep).
	Sleep Sleeper

	mu      sync.Mutex
	table   route.Table
	changed chan struct{} // closed and replaced by every Update

	held     atomic.Int64 // requests waiting now
	released atomic.Uint64
	expired  atomic.Uint64
	next     atomic.Uint64 // round robin over a route's servers

	unreached  sync.Map // netip.Addr → true: servers said unreachable
	once       sync.Once
	proxy      *httputil.ReverseProxy
	transports map[string]http.RoundTripper // by route.Proto
}

// Sleeper counts the requests of routes whose containers sleep when idle,
// and wakes them.
type Sleeper interface {
	// Begin counts a request for the route as under way until end is
	// called: the container is not idle while it is.
	Begin(host, path string) (end func())
	// Wake starts the route's sleeping containers, if it has any, and
	// returns at once; the table shows them once they are ready.
	Wake(host, path string)
}

// Update installs the table the proxy is being given: held requests whose
// route now has servers are forwarded at once, without waiting for the
// proxy to load its new config.
func (e *Endpoint) Update(t route.Table) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.table = t
	if e.changed != nil {
		close(e.changed)
	}
	e.changed = make(chan struct{})
}

// Stats says how many requests are held now, and how many were released
// to a backend or answered 503 since the start.
func (e *Endpoint) Stats() (held int64, released, expired uint64) {
	return e.held.Load(), e.released.Load(), e.expired.Load()
}

// lookup returns the route now, and a channel closed at the next Update.
func (e *Endpoint) lookup(host, path string) (route.Route, bool, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	r, ok := e.table.Find(host, path)
	return r, ok, e.changed
}

func (e *Endpoint) init() {
	e.once.Do(func() {
		d := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if err := e.reach(addr); err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, addr)
		}
		base := func() *http.Transport {
			return &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second, ForceAttemptHTTP2: false}
		}
		h2c := base()
		h2c.Protocols = new(http.Protocols)
		h2c.Protocols.SetUnencryptedHTTP2(true)
		tlsT := base()
		tlsT.TLSClientConfig = &tls.Config{InsecureSkipVerify: e.InsecureUpstream} //nolint:gosec // the operator's --upstream-insecure
		e.transports = map[string]http.RoundTripper{"": base(), "h2c": h2c, "https": tlsT}
		e.proxy = &httputil.ReverseProxy{
			Rewrite:       rewrite,
			Transport:     e,
			FlushInterval: -1, // stream: a held request may be a long poll or server-sent events
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if errors.Is(err, context.Canceled) {
					return
				}
				e.log().Warn("held request: the backend failed", "host", r.Host, "err", err)
				w.WriteHeader(http.StatusBadGateway)
			},
		}
	})
}

// reach refuses a server dockroute cannot reach as the proxy does. The
// endpoint dials from dockroute's own network namespace: run on the host
// beside a proxy in a container on a network the host does not reach (a
// Swarm overlay), a task's address went out by the host's default route,
// and a held request was answered by whatever answered there (found in a
// test: another machine's 404). A private address on none of dockroute's
// networks and routed by nothing narrower than the default route is
// therefore refused, and said why once; loopback and public addresses
// are routed alike from anywhere. (A private network reached only
// through the default gateway, as another subnet of a cloud network can
// be, is refused too: holding then needs dockroute beside the proxy.)
func (e *Endpoint) reach(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil // a name (the routes file's): resolved as the proxy would
	}
	if ip = ip.Unmap(); ip.IsLoopback() || !ip.IsPrivate() || onLocalNetwork(ip) || routedSpecifically(ip) {
		return nil
	}
	if _, told := e.unreached.LoadOrStore(ip, true); !told {
		e.log().Warn("the holding endpoint cannot reach a server: it is on none of dockroute's networks, so held requests for its route fail (502) instead of going astray. Run dockroute on the proxy's network (as the compose stacks do), or --hold 0", "server", addr)
	}
	return fmt.Errorf("dockroute cannot reach %s: it is on none of dockroute's networks", addr)
}

// onLocalNetwork tells whether ip is on a network of one of this
// namespace's interfaces (Docker's bridges included; asked each time, as
// they come and go).
func onLocalNetwork(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: do as before
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil && p.Contains(ip.Unmap()) {
				return true
			}
		}
	}
	return false
}

// routedSpecifically tells whether the kernel routes ip (IPv4) by a route
// narrower than the default one: a network the operator routes on
// purpose (a flat container network). Read from /proc/net/route, where
// each address and mask is a hex number in the host's byte order.
func routedSpecifically(ip netip.Addr) bool {
	if !ip.Is4() {
		return false
	}
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return true // cannot tell: do as before
	}
	a := ip.As4()
	v := binary.NativeEndian.Uint32(a[:])
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 == nil && err2 == nil && mask != 0 && v&uint32(mask) == uint32(dst) {
			return true
		}
	}
	return false
}

func (e *Endpoint) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// ServeHTTP holds one request from the proxy.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, rv, inPath := fromPath(r)
	if !inPath {
		tok, rv = r.Header.Get(TokenHeader), r.Header.Get(RouteHeader)
	}
	if e.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(e.Token)) != 1 {
		http.Error(w, "dockroute's holding endpoint serves only the proxy dockroute configures\n", http.StatusForbidden)
		return
	}
	host, path := rv, ""
	if i := strings.IndexByte(rv, '/'); i >= 0 {
		host, path = rv[:i], rv[i:]
	}
	e.init()
	if e.Sleep != nil {
		defer e.Sleep.Begin(host, path)()
	}
	if rt, ok, _ := e.lookup(host, path); ok && len(rt.Servers) > 0 {
		e.forward(w, r, host, path) // a route that sleeps, awake: passed through, not held
		return
	}
	e.held.Add(1)
	began := time.Now()
	rt, ok := e.wait(r.Context(), host, path)
	e.held.Add(-1)
	e.log().Debug("held a request", "host", host, "path", path, "waited", time.Since(began), "servers", len(rt.Servers), "route_found", ok)
	switch {
	case r.Context().Err() != nil:
		return // the client went away
	case !ok:
		// Neither served nor kept as down any more (its grace ended): the
		// proxy will drop the route too.
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	case len(rt.Servers) == 0:
		e.expired.Add(1)
		unavailable(w, host)
		return
	}
	e.released.Add(1)
	e.forward(w, r, host, path)
}

// forward proxies r to a server of its route (RoundTrip picks it).
func (e *Endpoint) forward(w http.ResponseWriter, r *http.Request, host, path string) {
	ctx := context.WithValue(r.Context(), heldKey{}, heldRoute{host: host, path: path, deadline: time.Now().Add(e.Limit)})
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// wait returns the route once it has servers, or as it stands when the
// limit passes or ctx ends; ok is false when the table no longer has it.
func (e *Endpoint) wait(ctx context.Context, host, path string) (route.Route, bool) {
	timer := time.NewTimer(e.Limit)
	defer timer.Stop()
	for {
		rt, ok, changed := e.lookup(host, path)
		if !ok || len(rt.Servers) > 0 {
			return rt, ok
		}
		if rt.Sleeps() && e.Sleep != nil {
			e.Sleep.Wake(host, path)
		}
		select {
		case <-changed:
		case <-timer.C:
			return rt, ok
		case <-ctx.Done():
			return rt, ok
		}
	}
}

type heldKey struct{}

type heldRoute struct {
	host, path string
	deadline   time.Time
}

// rewrite keeps the request as the proxy sent it (Host, path, the
// X-Forwarded headers it set), minus the holding headers; RoundTrip picks
// the server.
func rewrite(pr *httputil.ProxyRequest) {
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[h]; ok {
			pr.Out.Header[h] = v
		}
	}
	pr.Out.Header.Del(TokenHeader)
	pr.Out.Header.Del(RouteHeader)
	pr.Out.Host = pr.In.Host
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "held.invalid"
}

// RoundTrip sends a released request to one of its route's servers as the
// table has them now. A server that refuses the connection (the container
// left again) is replaced by the next one the table gives, until the
// limit, when the request can be sent again (it has no body yet read).
func (e *Endpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	h, _ := req.Context().Value(heldKey{}).(heldRoute)
	for {
		rt, ok := e.wait(req.Context(), h.host, h.path)
		if !ok || len(rt.Servers) == 0 {
			return nil, errors.New("no backend became ready within the hold limit")
		}
		out := req.Clone(req.Context())
		out.URL.Host = rt.Servers[int(e.next.Add(1)%uint64(len(rt.Servers)))]
		out.URL.Scheme = "http"
		if rt.Proto == "https" {
			out.URL.Scheme = "https"
		}
		resp, err := e.transports[rt.Proto].RoundTrip(out)
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || op.Op != "dial" || !replayable(req) || time.Now().After(h.deadline) {
			return resp, err
		}
		// The server is gone: wait for the table to change, then again.
		_, _, changed := e.lookup(h.host, h.path)
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
}

// replayable tells whether req can be sent again after a failed dial.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil || req.ContentLength == 0
}

// unavailable answers a request held past the limit: 503, as the proxy
// answers a host without containers, telling the client to come back.
func unavailable(w http.ResponseWriter, host string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", "10")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(Page(host)))
}

// Page is the 503 page for host, as both proxies show it. host is
// canonical ([a-z0-9.*-]) or dockroute's own words: nothing to escape.
func Page(host string) string {
	return "<!doctype html>\n<title>503 Service Unavailable</title>\n<h1>Service Unavailable</h1>\n<p>No container serves " + host + " right now (they stopped, or were taken out of routing). Please try again in a moment.</p>\n"
}

// Serve serves the endpoint on l until ctx ends; requests still held then
// are cut off.
func (e *Endpoint) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	// HTTP/1.1, and HTTP/2 in cleartext for a route whose app speaks it
	// (gRPC): the proxy then speaks it to the endpoint too.
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { <-ctx.Done(); srv.Close() }()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
