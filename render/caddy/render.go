// Package caddy renders a route table as the JSON of one Caddy HTTP server
// that dockroute owns, and pushes it to a stock Caddy through its admin API
// without touching the rest of the user's configuration.
package caddy

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dockroute/dockroute/provider/route"
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
}

// AutoHTTPS is the server's automatic_https block.
type AutoHTTPS struct {
	Disable bool `json:"disable,omitempty"`
}

// Route is one entry of a server's route list.
type Route struct {
	Match    []Match   `json:"match,omitempty"`
	Handle   []Handler `json:"handle"`
	Terminal bool      `json:"terminal,omitempty"`
}

// Match is a matcher set; dockroute uses only the host matcher, at the top
// level of each route, where automatic HTTPS looks for host names.
type Match struct {
	Host []string `json:"host,omitempty"`
}

// Handler is a reverse_proxy or static_response handler.
type Handler struct {
	Handler       string         `json:"handler"`
	Upstreams     []Upstream     `json:"upstreams,omitempty"`
	LoadBalancing *LoadBalancing `json:"load_balancing,omitempty"`
	Transport     *Transport     `json:"transport,omitempty"`
	StatusCode    int            `json:"status_code,omitempty"`
	Body          string         `json:"body,omitempty"`
}

// Upstream is one backend address.
type Upstream struct {
	Dial string `json:"dial"`
}

// LoadBalancing spreads requests over the upstreams and retries another
// one when a dial fails. No passive health check: Caddy keeps that state per
// address across reloads, and Docker soon gives a stopped container's IP to
// a new one, which would then be shunned.
type LoadBalancing struct {
	SelectionPolicy *SelectionPolicy `json:"selection_policy,omitempty"`
	TryDuration     string           `json:"try_duration,omitempty"`
}

// Transport is the http transport; DialTimeout bounds a dial to an address
// that vanished (a stopped container's IP answers nothing, so the dial would
// otherwise wait for ARP to give up) so the retry moves to another replica.
type Transport struct {
	Protocol    string `json:"protocol"`
	DialTimeout string `json:"dial_timeout,omitempty"`
}

// SelectionPolicy names a load-balancing policy module.
type SelectionPolicy struct {
	Policy string `json:"policy"`
}

// notFound ends the route list: a host dockroute does not route answers 404,
// as in Traefik, instead of Caddy's empty 200.
var notFound = Route{Handle: []Handler{{Handler: "static_response", StatusCode: 404, Body: "no route for this host\n"}}, Terminal: true}

// Render returns dockroute's server for t. Exact hosts come before wildcard
// hosts, so a.example.com wins over *.example.com as in Traefik; each list
// is sorted, so equal tables give equal servers.
func Render(t route.Table, opt Options) Server {
	s := Server{ID: opt.ID, Listen: slices.Clone(opt.Listen), Routes: make([]Route, 0, len(t.Routes)+1)}
	if !opt.AutoHTTPS {
		s.AutomaticHTTPS = &AutoHTTPS{Disable: true}
	}
	exact, wild := make([]Route, 0, len(t.Routes)), []Route(nil)
	for _, r := range t.Routes {
		if route.IsWildcard(r.Host) {
			wild = append(wild, proxyRoute(r))
		} else {
			exact = append(exact, proxyRoute(r))
		}
	}
	s.Routes = append(append(append(s.Routes, exact...), wild...), notFound)
	return s
}

func proxyRoute(r route.Route) Route {
	ups := make([]Upstream, len(r.Servers))
	for i, a := range r.Servers {
		ups[i] = Upstream{Dial: a.String()}
	}
	return Route{
		Match: []Match{{Host: []string{r.Host}}},
		Handle: []Handler{{
			Handler:   "reverse_proxy",
			Upstreams: ups,
			LoadBalancing: &LoadBalancing{
				SelectionPolicy: &SelectionPolicy{Policy: "round_robin"},
				TryDuration:     "5s",
			},
			Transport: &Transport{Protocol: "http", DialTimeout: "1s"},
		}},
		Terminal: true,
	}
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

// Hosts lists the hosts a route matches, for log messages.
func (r Route) Hosts() []string {
	var hs []string
	for _, m := range r.Match {
		hs = append(hs, m.Host...)
	}
	return hs
}
