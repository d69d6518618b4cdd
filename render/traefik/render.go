// Package traefik renders a route table as a Traefik v3 dynamic configuration
// for the file provider, and publishes it atomically into the directory
// Traefik watches.
package traefik

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/auth"
	"github.com/dockroute/dockroute/render/hold"
	mw "github.com/dockroute/dockroute/render/middleware"
)

// header opens every rendered file. It holds no template text: Traefik runs
// each file through Go templates before decoding it.
const header = "# Written by dockroute from the running containers. Do not edit: dockroute\n# rewrites this file whenever its routes change.\n"

// NamePrefix starts every router, service and middleware name dockroute
// writes, so they never collide with the user's own in other files of the
// directory (Traefik refuses duplicate names across files).
const NamePrefix = "dockroute-"

// redirectPrefix names the HTTP→HTTPS redirect routers. Its "." never
// occurs in NamePrefix+encoding names, so the two kinds cannot collide.
const redirectPrefix = "dockroute.redirect-"

// defaultPrefix names the routers that send requests for unknown hosts to
// the default host's routes; like redirectPrefix, its "." keeps it apart.
const defaultPrefix = "dockroute.default-"

// unavailableMiddleware is set on down routes, whose service has no
// servers: Traefik then answers 503 "Service Unavailable" itself.
const unavailableMiddleware = NamePrefix + "unavailable"

var unavailableHeaders = json.RawMessage(`{"headers":{"customResponseHeaders":{"Cache-Control":"no-store","Retry-After":"10"}}}`)

// redirectMiddleware is the one middleware every redirect router uses.
const redirectMiddleware = NamePrefix + "redirect-https"

// retryMiddleware has a request whose server refused the connection tried
// again on the service's next server, as nginx's proxy_next_upstream and
// Caddy's lb_try_duration do: a replica stopped or crashing between two
// publishes answers nothing, and without it Traefik answered 502. Traefik
// retries only when the server did not answer, and (retryNonIdempotentMethod
// being off by default) never a POST; attempts count the first.
const (
	retryMiddleware = NamePrefix + "retry"
	retryAttempts   = 3
)

// holdRetryMiddleware replaces retryMiddleware with holding on: it also
// retries a 502 (the server reset a request it had received: a crash, or
// a keep-alive connection closed by a stopping server as the request
// went out), for methods that may be sent twice (not POST, PATCH or
// LOCK: Traefik's rule), whose body it can keep (up to
// holdRetryBodyBytes; a larger one streams, without that retry).
const (
	holdRetryMiddleware = NamePrefix + "retry-hold"
	holdRetryBodyBytes  = 64 << 10
)

var holdRetry = &retry{Attempts: retryAttempts, Status: []string{"502"}, MaxRequestBodyBytes: holdRetryBodyBytes}

// Options are dockroute's global Traefik settings; a container's labels
// (route.Edge) override them per route.
type Options struct {
	EntryPoints  []string // empty: every entrypoint
	TLS          bool
	CertResolver string
	// RedirectFrom lists plain-HTTP entrypoints on which requests for a TLS
	// route are redirected to HTTPS. Empty: no redirects.
	RedirectFrom []string
	// InsecureUpstream skips verifying the certificates of https backends
	// (the operator's --upstream-insecure).
	InsecureUpstream bool
	// Middlewares and Auth are the operator's files: the sets and groups
	// routes choose by name.
	Middlewares *mw.Catalog
	Auth        *auth.Groups
	// DefaultHost is the exact host whose routes also answer requests for
	// hosts no router matches (--default-host); "" for none.
	DefaultHost string
	// Hold, when set, sends a down route's requests to dockroute's
	// holding endpoint (render/hold) instead of answering 503.
	Hold *Hold
}

// Hold is where the holding endpoint listens for the proxy, and the token
// it requires.
type Hold struct {
	URL   string // "http://127.0.0.1:9494"
	Token string
}

// Equal tells whether two option sets render alike.
func (o Options) Equal(p Options) bool {
	return slices.Equal(o.EntryPoints, p.EntryPoints) && o.TLS == p.TLS && o.CertResolver == p.CertResolver &&
		slices.Equal(o.RedirectFrom, p.RedirectFrom) && o.InsecureUpstream == p.InsecureUpstream &&
		o.Middlewares.Equal(p.Middlewares) && o.Auth.Equal(p.Auth) && o.DefaultHost == p.DefaultHost
}

// The shapes below are the subset of Traefik's dynamic configuration that
// dockroute writes, with Traefik's own key names.
type tcpConfig struct {
	Routers  map[string]tcpRouter  `yaml:"routers"`
	Services map[string]tcpService `yaml:"services"`
}

// tcpRouter routes TLS connections by their SNI, passing them through
// still encrypted.
type tcpRouter struct {
	Rule        string   `yaml:"rule"`
	Service     string   `yaml:"service"`
	Priority    int      `yaml:"priority"`
	EntryPoints []string `yaml:"entryPoints,omitempty,flow"`
	// TLS is always {passthrough: true}.
}

type tcpService struct {
	Servers []string // addresses, "ip:port"
}

type httpConfig struct {
	Routers           map[string]router           `yaml:"routers,omitempty"`
	Middlewares       map[string]middleware       `yaml:"middlewares,omitempty"`
	Services          map[string]service          `yaml:"services,omitempty"`
	ServersTransports map[string]serversTransport `yaml:"serversTransports,omitempty"`
}

type serversTransport struct {
	InsecureSkipVerify bool                `yaml:"insecureSkipVerify"`
	ForwardingTimeouts *forwardingTimeouts `yaml:"forwardingTimeouts,omitempty"`
}

type forwardingTimeouts struct {
	DialTimeout string `yaml:"dialTimeout"`
}

// dialTransport bounds Traefik's dial to a server: a stopped container's
// address answers nothing, and Traefik's default dial timeout (30 s) held
// a request that long before its 502 (or the retry on another replica).
// A container on a bridge answers a dial in well under a millisecond.
const (
	dialTransport = NamePrefix + "dial"
	dialTimeout   = "1s"
)

// insecureTransport names the servers transport of https backends whose
// certificates are not verified (--upstream-insecure).
const insecureTransport = NamePrefix + "insecure"

type router struct {
	Rule        string   `yaml:"rule"`
	Service     string   `yaml:"service"`
	Priority    int      `yaml:"priority"`
	EntryPoints []string `yaml:"entryPoints,omitempty,flow"`
	Middlewares []string `yaml:"middlewares,omitempty,flow"`
	TLS         *tls     `yaml:"tls,omitempty"`
}

type tls struct {
	CertResolver string   `yaml:"certResolver,omitempty"`
	Domains      []domain `yaml:"domains,omitempty"`
}

type domain struct {
	Main string `yaml:"main"`
}

type middleware struct {
	StripPrefix    *stripPrefix    `yaml:"stripPrefix,omitempty"`
	RedirectScheme *redirectScheme `yaml:"redirectScheme,omitempty"`
	Retry          *retry          `yaml:"retry,omitempty"`
	// Raw is a whole definition as JSON (which is YAML): the operator's
	// sets, the built-ins and basic auth.
	Raw json.RawMessage `yaml:"-"`
}

type retry struct {
	Attempts            int      `yaml:"attempts"`
	Status              []string `yaml:"status,flow,omitempty"`
	MaxRequestBodyBytes int64    `yaml:"maxRequestBodyBytes,omitempty"`
}

type stripPrefix struct {
	Prefixes []string `yaml:"prefixes,flow"`
}

type redirectScheme struct {
	Scheme    string `yaml:"scheme"`
	Permanent bool   `yaml:"permanent"`
}

type service struct {
	LoadBalancer loadBalancer `yaml:"loadBalancer"`
}

type loadBalancer struct {
	Servers          []server `yaml:"servers"`
	ServersTransport string   `yaml:"serversTransport,omitempty"`
	// PassiveHealthCheck is set with holding (see addHold).
	PassiveHealthCheck *passiveHealthCheck `yaml:"passiveHealthCheck,omitempty"`
}

type server struct {
	URL          string `yaml:"url"`
	Weight       *int   `yaml:"weight,omitempty"`
	PreservePath bool   `yaml:"preservePath,omitempty"`
}

type passiveHealthCheck struct {
	FailureWindow     string `yaml:"failureWindow"`
	MaxFailedAttempts int    `yaml:"maxFailedAttempts"`
}

// Render returns the file contents for t. It is deterministic: equal tables
// give equal bytes (every section's entries are written sorted by name), so
// an unchanged table never causes a rewrite. Hosts and paths in t must be
// canonical. A Renderer gives the same bytes, reusing unchanged routes.
func Render(t route.Table, opt Options) []byte {
	var rd Renderer
	return rd.Render(t, opt)
}

// Routers lists the names of the HTTP routers Render writes for t, as the
// file names them (Traefik's API adds "@file").
func Routers(t route.Table, opt Options) []string {
	var rd Renderer
	rd.Render(t, opt)
	return rd.Routers()
}

// tcpPrefix names TLS passthrough routers and services.
const tcpPrefix = NamePrefix + "tcp-"

// addTCPRoute adds a TLS passthrough route: connections whose SNI is the
// route's host go to its servers, still encrypted, on the route's (or
// every) entrypoint. Traefik checks TCP routers before HTTP ones on an
// entrypoint, so such a host is not served over HTTPS there.
func addTCPRoute(tc *tcpConfig, r route.Route, opt Options) {
	name := tcpPrefix + encode(r.Host, "")
	rule := "HostSNI(`" + r.Host + "`)"
	if rest, ok := strings.CutPrefix(r.Host, "*."); ok {
		rule = "HostSNIRegexp(`^[^.]+\\." + regexp.QuoteMeta(rest) + "$`)"
	}
	rt := tcpRouter{Rule: rule, Service: name, Priority: Priority(r.Host, ""), EntryPoints: opt.EntryPoints}
	if r.Edge.EntryPoints != "" {
		rt.EntryPoints = strings.Split(r.Edge.EntryPoints, ",")
	}
	tc.Routers[name] = rt
	tc.Services[name] = tcpService{Servers: r.Servers}
}

func addRoute(h *httpConfig, r route.Route, opt Options) {
	name := Name(r.Host, r.Path)
	rt := router{Rule: Rule(r.Host, r.Path), Service: name, Priority: Priority(r.Host, r.Path), EntryPoints: opt.EntryPoints}
	if r.Edge.EntryPoints != "" {
		rt.EntryPoints = strings.Split(r.Edge.EntryPoints, ",")
	}
	// A sleeping route is held alike whether its container is up: its
	// config stays the same asleep and awake.
	held := (r.Down() || r.Sleeps()) && opt.Hold != nil
	if r.Down() && !held {
		// A down route answers 503 to everyone (its guards have nothing to
		// protect), telling clients to come back rather than cache it.
		h.Middlewares[unavailableMiddleware] = middleware{Raw: unavailableHeaders}
		rt.Middlewares = []string{unavailableMiddleware}
	} else {
		// A held request reaches the app once one is ready: it passes
		// the route's guards first, as any other.
		rt.Middlewares = guards(h, r, opt)
	}
	if r.Strip && r.Path != "" && (!r.Down() || held) {
		mw := NamePrefix + "strip-" + encode(r.Host, r.Path)
		h.Middlewares[mw] = middleware{StripPrefix: &stripPrefix{Prefixes: []string{r.Path}}}
		rt.Middlewares = append(rt.Middlewares, mw)
	}
	if len(r.Servers) > 1 && opt.Hold == nil {
		h.Middlewares[retryMiddleware] = middleware{Retry: &retry{Attempts: retryAttempts}}
		rt.Middlewares = append(rt.Middlewares, retryMiddleware)
	}
	if r.Edge.TLS == route.TLSOn || r.Edge.TLS == route.TLSDefault && opt.TLS {
		rt.TLS = &tls{CertResolver: opt.CertResolver}
		if r.Edge.CertResolver != "" {
			rt.TLS.CertResolver = r.Edge.CertResolver
		}
		// Traefik asks a resolver for the names of a router's Host()
		// matchers, or of tls.domains: a wildcard's HostRegexp gives none,
		// so without domains it would never get a certificate.
		if rt.TLS.CertResolver != "" && route.IsWildcard(r.Host) {
			rt.TLS.Domains = []domain{{Main: r.Host}}
		}
		if len(opt.RedirectFrom) > 0 {
			h.Routers[redirectPrefix+encode(r.Host, r.Path)] = router{
				Rule: rt.Rule, Service: name, Priority: rt.Priority,
				EntryPoints: opt.RedirectFrom, Middlewares: []string{redirectMiddleware},
			}
			h.Middlewares[redirectMiddleware] = middleware{RedirectScheme: &redirectScheme{Scheme: "https", Permanent: true}}
		}
	}
	scheme := "http://"
	switch r.Proto {
	case "https":
		scheme = "https://"
	case "h2c":
		scheme = "h2c://" // Traefik speaks HTTP/2 in cleartext to it
	}
	lb := loadBalancer{Servers: make([]server, 0, len(r.Servers))}
	for _, s := range r.Servers {
		lb.Servers = append(lb.Servers, server{URL: scheme + s})
	}
	if h.ServersTransports == nil {
		h.ServersTransports = map[string]serversTransport{}
	}
	if opt.Hold != nil {
		addHold(h, &rt, &lb, r, opt.Hold)
	}
	h.Routers[name] = rt
	if r.Host == opt.DefaultHost {
		addDefault(h, r, rt, opt)
	}
	switch {
	case held:
	case r.Proto == "https" && opt.InsecureUpstream:
		lb.ServersTransport = insecureTransport
		h.ServersTransports[insecureTransport] = serversTransport{InsecureSkipVerify: true, ForwardingTimeouts: &forwardingTimeouts{DialTimeout: dialTimeout}}
	case len(r.Servers) > 0:
		lb.ServersTransport = dialTransport
		h.ServersTransports[dialTransport] = serversTransport{ForwardingTimeouts: &forwardingTimeouts{DialTimeout: dialTimeout}}
	}
	h.Services[name] = service{LoadBalancer: lb}
}

// addDefault adds a copy of the default host's router rt that matches any
// host, below every host router, and its HTTP→HTTPS redirect. It asks no
// resolver for a certificate: it has no name to ask for, so TLS requests
// for unknown names get Traefik's default certificate.
func addDefault(h *httpConfig, r route.Route, rt router, opt Options) {
	rt.Rule = pathRule(r.Path)
	rt.Priority = 1 + len(r.Path)
	if rt.TLS != nil {
		rt.TLS = &tls{}
	}
	name := defaultPrefix + encode(r.Host, r.Path)
	h.Routers[name] = rt
	if rt.TLS != nil && len(opt.RedirectFrom) > 0 {
		h.Routers[redirectPrefix+"default-"+encode(r.Host, r.Path)] = router{
			Rule: rt.Rule, Service: rt.Service, Priority: rt.Priority,
			EntryPoints: opt.RedirectFrom, Middlewares: []string{redirectMiddleware},
		}
	}
}

// holdWeight is an app server's weight beside the holding endpoint's 1:
// Traefik's weighted round robin sends the endpoint one request in
// 10,001 while the apps are up (it forwards that one to them at once),
// and every request once passive health checking has marked them down.
// Not more: to skip a server marked down, Traefik's balancer steps its
// schedule about holdWeight times under a lock, per request (at 2^30 a
// request waited 30 s, and every other with it).
const holdWeight = 10000

// holdServer is the holding endpoint as a server of r's service: its URL
// path names the route and carries the token, so that only the endpoint
// ever sees the token (preservePath puts the path on this server alone).
func holdServer(r route.Route, hd *Hold) server {
	scheme := "http"
	if r.Proto == "h2c" {
		scheme = "h2c" // gRPC: HTTP/2 all the way
	}
	u, _ := url.Parse(hd.URL)
	return server{URL: scheme + "://" + u.Host + hold.Path(hd.Token, r.Host, r.Path), Weight: new(1), PreservePath: true}
}

// addHold gives r's service the holding endpoint: as its only server when
// r is down or sleeps (the endpoint counts its requests), else beside the app servers, which passive health checking
// marks down on the first failed request (a container that stopped or
// crashed, before Traefik loads the config without it), and the retry
// middleware then sends that request to the endpoint, which holds it
// until a container is ready.
func addHold(h *httpConfig, rt *router, lb *loadBalancer, r route.Route, hd *Hold) {
	if r.Down() || r.Sleeps() {
		lb.Servers = []server{holdServer(r, hd)}
		return
	}
	for i := range lb.Servers {
		lb.Servers[i].Weight = new(holdWeight)
	}
	lb.Servers = append(lb.Servers, holdServer(r, hd))
	lb.PassiveHealthCheck = &passiveHealthCheck{FailureWindow: "1s", MaxFailedAttempts: 1}
	h.Middlewares[holdRetryMiddleware] = middleware{Retry: holdRetry}
	rt.Middlewares = append(rt.Middlewares, holdRetryMiddleware)
}

// Name is the router and service name for a host and path prefix. Hosts
// keep their letters with dots as "_" and a wildcard's "*" as "wildcard_";
// a path follows after "-", with "/" as "_" and anything but letters,
// digits and "-" escaped as "~XX". Canonical hosts hold no "_" and no label
// ends in "-", so the mapping is one-to-one and stays readable:
// hello.local → dockroute-hello_local, example.com/api →
// dockroute-example_com-_api.
func Name(host, path string) string { return NamePrefix + encode(host, path) }

// A name longer than maxEncoded is cut and ends in "~~" and a hash of the
// whole: names are YAML keys, and a YAML implicit key over 1024 characters
// makes the whole file undecodable, so one long path (each "." is three
// characters encoded) would stop Traefik applying anyone's change. No
// uncut name holds "~~" (every "~" opens a two-digit escape), so cut and
// uncut names never meet, and the hash keeps cut names apart.
func encode(host, path string) string {
	s := spell(host, path)
	if len(s) <= maxEncoded {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:maxEncoded-len(hashMark)-2*hashBytes] + hashMark + hex.EncodeToString(sum[:hashBytes])
}

// maxEncoded bounds an encoded host and path, leaving room for the longest
// prefix dockroute puts before one far below YAML's 1024.
const (
	maxEncoded = 200
	hashMark   = "~~"
	hashBytes  = 16
)

// spell is encode's readable mapping, unbounded.
func spell(host, path string) string {
	var b strings.Builder
	b.Grow(len(host) + 9 + 3*len(path))
	for i := 0; i < len(host); i++ {
		switch c := host[i]; c {
		case '*':
			b.WriteString("wildcard_")
		case '.':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	if path == "" {
		return b.String()
	}
	b.WriteByte('-')
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/':
			b.WriteByte('_')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "~%02x", c)
		}
	}
	return b.String()
}

// Rule is the Traefik v3 rule for a host and path prefix. A wildcard matches
// exactly one label of any characters but a dot in front of the rest, and
// the host may end in a dot (as Host() allows), like Caddy's host matcher
// as dockroute configures it. A prefix matches whole segments (/api and
// /api/…, not /apix), case-sensitively, as Caddy's path_regexp does.
func Rule(host, path string) string {
	var r string
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		r = "HostRegexp(`^[^.]+\\." + regexp.QuoteMeta(rest) + "\\.?$`)"
	} else {
		r = "Host(`" + host + "`)"
	}
	if path != "" {
		r += " && (" + pathRule(path) + ")"
	}
	return r
}

// pathRule matches a path prefix by whole segments, or every path for "".
func pathRule(path string) string {
	if path == "" {
		return "PathPrefix(`/`)"
	}
	return "Path(`" + path + "`) || PathPrefix(`" + path + "/`)"
}

// Priority orders dockroute's routers as Caddy's route list is ordered:
// every exact host above every wildcard, and within each, longer path
// prefixes above shorter ones; the default host's catch-all routers
// (1 + the path's length) lie below them all. Traefik's default (the
// rule's length) would let a wildcard's longer HostRegexp beat an exact
// host. The user's own routers for the same hosts need an explicit
// priority to compete.
func Priority(host, path string) int {
	p := 1 + len(path) + route.MaxPathLen + 1
	if !route.IsWildcard(host) {
		p += route.MaxPathLen + 1
	}
	return p
}
