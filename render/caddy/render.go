// Package caddy renders a route table as the JSON of one Caddy HTTP server
// that dockroute owns, and pushes it to a stock Caddy through its admin API
// without touching the rest of the user's configuration.
package caddy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/auth"
	"github.com/dockroute/dockroute/render/hold"
	mw "github.com/dockroute/dockroute/render/middleware"
)

// Options shape the server dockroute owns in Caddy.
type Options struct {
	// ID is both the server's name under apps.http.servers and its "@id",
	// through which every later read and write addresses it.
	ID string
	// Listen are the server's listen addresses, e.g. ":80".
	Listen []string
	// AutoHTTPS leaves Caddy's automatic HTTPS on (certificates for every
	// routed host and an HTTP→HTTPS redirect). Off by default, for a plain
	// ":80" listener.
	AutoHTTPS bool
	// DefaultHost is the exact host whose routes also answer requests for
	// hosts no route matches (--default-host); "" for none.
	DefaultHost string
	// NoRedirect keeps automatic HTTPS from redirecting HTTP to HTTPS.
	NoRedirect bool
	// InsecureUpstream skips verifying the certificates of https backends
	// (the operator's --upstream-insecure).
	InsecureUpstream bool
	// Middlewares and Auth are the operator's files: the sets and groups
	// routes choose by name.
	Middlewares *mw.Catalog
	Auth        *auth.Groups
	// Lookup, when set, has Caddy ask dockroute for each route's upstreams
	// by DNS, so that a replica starting or stopping needs no config load.
	Lookup *Lookup
	// Hold, when set, sends a down route's requests to dockroute's
	// holding endpoint (render/hold) instead of answering 503.
	Hold *Hold
	// OnDemand, set with AutoHTTPS and Lookup.Hosts, has Caddy get the
	// certificates of looked-up hosts on demand (ondemand.go).
	OnDemand *OnDemand
}

// Hold is the holding endpoint's address for Caddy to dial, and the token
// it requires.
type Hold struct {
	Dial  string // "127.0.0.1:9494"
	Token string
	// Limit is how long a request may be held. With lookups Caddy holds
	// it itself: a route keeps asking for its upstreams under the same
	// name while it is down (no config load, so no retry is cut short)
	// for up to Limit, its try_duration.
	Limit time.Duration
}

// Lookup is where Caddy asks for upstreams and how often.
type Lookup struct {
	// Resolver is the address Caddy dials, as Caddy writes network
	// addresses: "udp/127.0.0.1:1053".
	Resolver string
	// Hosts, when set, serves plain hosts with one route that asks for
	// the request's host by name (see plainAt), so that such a host
	// coming or going needs no config load either; Hosts is where the
	// route sends a request whose host nothing routes (the Responder).
	Hosts string
	// Refresh is how long Caddy uses an answer before asking again: the
	// longest a stopping replica can still be sent new requests, and the
	// longest a new one waits for its first.
	Refresh time.Duration
}

// Equal tells whether two option sets render alike.
func (o Options) Equal(p Options) bool {
	return o.ID == p.ID && slices.Equal(o.Listen, p.Listen) && o.AutoHTTPS == p.AutoHTTPS && o.NoRedirect == p.NoRedirect &&
		o.InsecureUpstream == p.InsecureUpstream && o.Middlewares.Equal(p.Middlewares) && o.Auth.Equal(p.Auth) &&
		o.DefaultHost == p.DefaultHost && (o.Lookup == nil) == (p.Lookup == nil) && (o.Lookup == nil || *o.Lookup == *p.Lookup) &&
		(o.Hold == nil) == (p.Hold == nil) && (o.Hold == nil || *o.Hold == *p.Hold) && o.OnDemand.equal(p.OnDemand)
}

// The types below are the subset of Caddy's JSON that dockroute writes. Each
// field exists with the same meaning in Caddy 2.6.2 and the current release;
// Caddy refuses a whole load over one unknown field, so nothing newer may be
// added here without a version check.

// Server is apps.http.servers[ID].
type Server struct {
	ID             string     `json:"@id"`
	Listen         []string   `json:"listen"`
	Routes         []Route    `json:"routes"`
	AutomaticHTTPS *AutoHTTPS `json:"automatic_https,omitempty"`
	// TLSConnPolicies, with on-demand TLS, turns TLS on whatever the
	// listen port and however few hosts are written (automatic HTTPS
	// turns it on only for :443, or a server whose routes name hosts).
	TLSConnPolicies []struct{} `json:"tls_connection_policies,omitempty"`
	// Errors, with holding, turns a request held past the limit (Caddy's
	// own 502 or 503: no upstream answered) into 503 with Retry-After.
	Errors *ServerErrors `json:"errors,omitempty"`
}

// ServerErrors is the server's errors block: routes for handler errors
// (never an app's own answers, which are responses, not errors).
type ServerErrors struct {
	Routes []Route `json:"routes"`
}

// AutoHTTPS is the server's automatic_https block.
type AutoHTTPS struct {
	Disable          bool `json:"disable,omitempty"`
	DisableRedirects bool `json:"disable_redirects,omitempty"`
}

// Route is one entry of a server's route list.
type Route struct {
	Match    []Match   `json:"match,omitempty"`
	Handle   []Handler `json:"handle"`
	Terminal bool      `json:"terminal,omitempty"`
}

// Match is a matcher set: the host matcher, at the top level of each
// route, where automatic HTTPS looks for host names, and for a path prefix
// the path_regexp matcher. Not the path matcher: it is case-insensitive,
// and Traefik's PathPrefix, URLs (RFC 3986) and dockroute are not, so a
// tenant's /Api would have shadowed another's /api in Caddy only.
type Match struct {
	Host       []string     `json:"host,omitempty"`
	PathRegexp *PathPattern `json:"path_regexp,omitempty"`
	// Vars matches placeholders' values (the error routes' status).
	Vars map[string][]string `json:"vars,omitempty"`
}

// PathPattern is the path_regexp matcher's value. Caddy matches it against
// the cleaned path (no "//", no ".."), as Traefik does by default.
type PathPattern struct {
	Pattern string `json:"pattern"`
}

// Handler is a reverse_proxy or static_response handler.
type Handler struct {
	Handler   string     `json:"handler"`
	Upstreams []Upstream `json:"upstreams,omitempty"`
	// DynamicUpstreams, when set, is where Caddy gets the upstreams from;
	// Upstreams are then only used when the lookup fails.
	DynamicUpstreams *DynamicUpstreams `json:"dynamic_upstreams,omitempty"`
	LoadBalancing    *LoadBalancing    `json:"load_balancing,omitempty"`
	HealthChecks     *HealthChecks     `json:"health_checks,omitempty"`
	Transport        *Transport        `json:"transport,omitempty"`
	// StripPathPrefix is the rewrite handler's prefix removal.
	StripPathPrefix string              `json:"strip_path_prefix,omitempty"`
	StatusCode      int                 `json:"status_code,omitempty"`
	Headers         map[string][]string `json:"headers,omitempty"`
	Body            string              `json:"body,omitempty"`
	// Raw, when set, is the whole handler as JSON (the operator's sets,
	// the built-ins, basic auth), written instead of the fields above.
	Raw json.RawMessage `json:"-"`
}

// handlerFields is Handler without its methods, for MarshalJSON.
type handlerFields Handler

// MarshalJSON writes Raw when set, else the fields.
func (h Handler) MarshalJSON() ([]byte, error) {
	if h.Raw != nil {
		return h.Raw, nil
	}
	return json.Marshal(handlerFields(h))
}

// DynamicUpstreams is reverse_proxy's "a" source: Caddy looks Name up
// (A and AAAA) at most once per Refresh, while requests arrive, and dials
// each address at Port. Every field is in Caddy 2.6.0 and later.
type DynamicUpstreams struct {
	Source   string    `json:"source"`
	Name     string    `json:"name"`
	Port     string    `json:"port,omitempty"` // the "a" source's only
	Refresh  string    `json:"refresh"`
	Resolver *Resolver `json:"resolver"`
}

// Resolver is the DNS server the source asks.
type Resolver struct {
	Addresses []string `json:"addresses"`
}

// Upstream is one backend address.
type Upstream struct {
	Dial string `json:"dial"`
}

// LoadBalancing spreads requests over the upstreams and retries another
// one when a request fails. Caddy cancels a retry that is waiting out its
// try_interval when its config is reloaded, and every dockroute publish is
// a reload: with Caddy's default interval (250 ms) the requests that hit a
// replica just as it died were still waiting when dockroute's publish
// unrouting it arrived ~100-200 ms later, and failed with 502. A 10 ms
// interval retries them long before that.
type LoadBalancing struct {
	SelectionPolicy *SelectionPolicy `json:"selection_policy,omitempty"`
	TryDuration     string           `json:"try_duration,omitempty"`
	TryInterval     string           `json:"try_interval,omitempty"`
}

// HealthChecks holds the passive health check: an upstream a dial or
// request failed on is skipped for FailDuration, so after the first
// request that finds a replica dead, the others go straight to the live
// ones until dockroute's publish removes it. Caddy keeps this state per
// address across reloads, and Docker may soon give a stopped container's
// address to a new one, which is then skipped for at most FailDuration
// (kept short and below try_duration, so a request to a host whose only
// upstream is such a container waits instead of failing).
type HealthChecks struct {
	Passive *PassiveHealth `json:"passive,omitempty"`
}

// PassiveHealth is health_checks.passive.
type PassiveHealth struct {
	FailDuration string `json:"fail_duration,omitempty"`
}

// Transport is the http transport; DialTimeout bounds a dial to an address
// that vanished (a stopped container's IP answers nothing, so the dial would
// otherwise wait for ARP to give up) so the retry moves to another replica.
type Transport struct {
	Protocol    string `json:"protocol"`
	DialTimeout string `json:"dial_timeout,omitempty"`
	// Resolver looks up the names the transport dials (the host lookup
	// route's SRV targets).
	Resolver *Resolver `json:"resolver,omitempty"`
	// TLS makes the transport speak HTTPS to the backend (HTTP/2 when it
	// offers it); Versions ["h2c", "2"] speaks HTTP/2 in cleartext.
	TLS      *TransportTLS `json:"tls,omitempty"`
	Versions []string      `json:"versions,omitempty"`
}

// TransportTLS is the transport's tls block.
type TransportTLS struct {
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// SelectionPolicy names a load-balancing policy module.
type SelectionPolicy struct {
	Policy string `json:"policy"`
}

// notFound ends the route list: a host dockroute does not route answers 404,
// as in Traefik, instead of Caddy's empty 200.
var notFound = Route{Handle: []Handler{{Handler: "static_response", StatusCode: 404, Body: "no route for this host\n"}}, Terminal: true}

// Render returns dockroute's server for t. Caddy tries routes in order, so
// the order is the precedence, the same as the Traefik priorities: exact
// hosts before wildcard hosts (a.example.com wins over *.example.com), and
// on a host, longer path prefixes before shorter ones. Ties are sorted, so
// equal tables give equal servers.
func Render(t route.Table, opt Options) Server {
	s := Server{ID: opt.ID, Listen: slices.Clone(opt.Listen)}
	switch {
	case !opt.AutoHTTPS:
		s.AutomaticHTTPS = &AutoHTTPS{Disable: true}
	case opt.NoRedirect:
		s.AutomaticHTTPS = &AutoHTTPS{DisableRedirects: true}
	}
	if opt.AutoHTTPS && opt.OnDemand != nil {
		s.TLSConnPolicies = []struct{}{{}}
	}
	// TLS passthrough (TCP) routes are Traefik's: stock Caddy has no
	// layer-4 app (the Docker provider refuses them for Caddy). Plain
	// hosts are served by the host lookup route, when opt has one.
	looked := opt.looksUpHosts()
	routes := make([]route.Route, 0, len(t.Routes))
	for i, r := range t.Routes {
		if !r.TCP && !(looked && plainAt(t, i, opt)) {
			routes = append(routes, r)
		}
	}
	s.Routes = make([]Route, 0, len(routes)+1)
	slices.SortStableFunc(routes, func(a, b route.Route) int {
		return cmp.Or(
			cmp.Compare(boolInt(route.IsWildcard(a.Host)), boolInt(route.IsWildcard(b.Host))),
			cmp.Compare(len(b.Path), len(a.Path)),
		)
	})
	var defaults []Route
	for _, r := range routes {
		pr := proxyRoute(r, opt)
		s.Routes = append(s.Routes, pr)
		if r.Host == opt.DefaultHost {
			// Again for any host: the same handlers, the path match alone.
			pr.Match = nil
			if r.Path != "" {
				pr.Match = []Match{{PathRegexp: s.Routes[len(s.Routes)-1].Match[0].PathRegexp}}
			}
			defaults = append(defaults, pr)
		}
	}
	// The default host's routes come after every host's.
	s.Routes = append(s.Routes, defaults...)
	if looked {
		// Every other host, the plain ones and those nothing routes.
		s.Routes = append(s.Routes, hostLookup(opt))
	} else {
		s.Routes = append(s.Routes, notFound)
	}
	if opt.Hold != nil {
		s.Errors = &ServerErrors{Routes: []Route{heldTooLong}}
	}
	return s
}

// heldTooLong answers a request Caddy held past --hold (its try_duration):
// no container became ready, and Caddy's last error was a failed dial
// (502) or no upstream at all (503). As the holding endpoint does: 503,
// with Retry-After.
var heldTooLong = Route{
	Match:    []Match{{Vars: map[string][]string{"{http.error.status_code}": {"502", "503"}}}},
	Handle:   []Handler{unavailable("this host")},
	Terminal: true,
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func proxyRoute(r route.Route, opt Options) Route {
	ups := make([]Upstream, len(r.Servers))
	for i, a := range r.Servers {
		ups[i] = Upstream{Dial: a}
	}
	// "a.test." is "a.test" written absolutely: Traefik routes both, and
	// Caddy's host matcher needs both spelled out. (No certificate is ever
	// asked for the dotted form: automatic HTTPS skips such names.)
	m := Match{Host: []string{r.Host, r.Host + "."}}
	if r.Path != "" {
		// Whole segments, as in the Traefik rule: /api and /api/…, not /apix.
		m.PathRegexp = &PathPattern{Pattern: "^" + regexp.QuoteMeta(r.Path) + "(/.*)?$"}
	}
	if r.Down() && opt.Hold == nil {
		return Route{Match: []Match{m}, Handle: []Handler{unavailable(r.Host)}, Terminal: true}
	}
	// A down route that Caddy looks up is rendered as when up, without
	// fallback upstreams: Caddy keeps asking under the same name, and its
	// retries hold the request (no config load: nothing cuts them short).
	dyn := dynamic(r, opt.Lookup)
	handle, missing := guards(r, opt)
	if missing != "" {
		// Fail closed: never serve a protected route without its guard.
		return Route{Match: []Match{m}, Handle: []Handler{{Handler: "static_response", StatusCode: 503, Body: "this route's " + missing + " is not defined in dockroute's files\n"}}, Terminal: true}
	}
	if r.Path != "" && r.Strip {
		handle = append(handle, Handler{Handler: "rewrite", StripPathPrefix: r.Path})
	}
	if r.Down() && dyn == nil || r.Sleeps() && opt.Hold != nil {
		// Held: the request passes the route's guards, then waits in
		// dockroute for a ready container. A route that sleeps always
		// goes there (the endpoint counts its requests and wakes its
		// container), so its config is the same asleep and awake.
		return Route{Match: []Match{m}, Handle: append(handle, held(r, opt.Hold)), Terminal: true}
	}
	try := "5s"
	if dyn != nil && opt.Hold != nil {
		try = opt.Hold.Limit.String()
	}
	return Route{
		Match: []Match{m},
		Handle: append(handle, Handler{
			Handler:          "reverse_proxy",
			Upstreams:        ups,
			DynamicUpstreams: dyn,
			LoadBalancing: &LoadBalancing{
				SelectionPolicy: &SelectionPolicy{Policy: "round_robin"},
				TryDuration:     try,
				TryInterval:     "10ms",
			},
			HealthChecks: &HealthChecks{Passive: &PassiveHealth{FailDuration: "1s"}},
			Transport:    transport(r.Proto, opt),
		}),
		Terminal: true,
	}
}

// held is the handler of a down route with holding on: a reverse proxy to
// the holding endpoint, telling it that Caddy asks, and for which route.
// Caddy keeps the Host header and sets X-Forwarded-For, as to the app.
func held(r route.Route, h *Hold) Handler {
	raw, _ := json.Marshal(map[string]any{
		"handler":   "reverse_proxy",
		"upstreams": []Upstream{{Dial: h.Dial}},
		"headers": map[string]any{"request": map[string]any{"set": map[string][]string{
			hold.TokenHeader: {h.Token}, hold.RouteHeader: {hold.RouteValue(r.Host, r.Path)},
		}}},
		"transport": Transport{Protocol: "http", DialTimeout: "1s"},
	})
	return Handler{Raw: raw}
}

// unavailable answers for a down route: 503 and a short page, with
// Retry-After and no caching, as Traefik's answer for it.
func unavailable(host string) Handler {
	return Handler{
		Handler:    "static_response",
		StatusCode: 503,
		Headers: map[string][]string{
			"Content-Type":  {"text/html; charset=utf-8"},
			"Cache-Control": {"no-store"},
			"Retry-After":   {"10"},
		},
		Body: hold.Page(host),
	}
}

// transport speaks the route's protocol to its backends.
func transport(proto string, opt Options) *Transport {
	t := &Transport{Protocol: "http", DialTimeout: "1s"}
	switch proto {
	case "https":
		t.TLS = &TransportTLS{InsecureSkipVerify: opt.InsecureUpstream}
	case "h2c":
		t.Versions = []string{"h2c", "2"}
	}
	return t
}

// Serves tells whether s has the route Render writes for host and path (in
// any form): how explain tells whether Caddy runs a route.
func (s Server) Serves(host, path string) bool {
	want := proxyRoute(route.Route{Host: host, Path: path}, Options{}).key()
	for _, r := range s.Routes {
		if r.key() == want || path == "" && r.looksUpHosts() {
			return true
		}
	}
	return false
}

// JSON encodes s. The output is deterministic: struct fields encode in a
// fixed order and s holds no maps.
func (s Server) JSON() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("caddy: encoding server: %v", err)) // plain data only: a bug, not input
	}
	return b
}

// key identifies a route by what it matches: no two routes of a server
// match the same.
func (r Route) key() string {
	b, _ := json.Marshal(r.Match)
	return string(b)
}

// Hosts lists the hosts a route matches, for log messages.
// The absolute forms ("a.test.") are left out.
func (r Route) Hosts() []string {
	var hs []string
	for _, m := range r.Match {
		for _, h := range m.Host {
			if !strings.HasSuffix(h, ".") {
				hs = append(hs, h)
			}
		}
	}
	return hs
}
