package caddy

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/lookup"
)

// Plain hosts. Most containers ask for a host and a port, nothing else
// (the VIRTUALHOST/PORT contract). Such a host is not written into
// Caddy's config: one route at the end of dockroute's server, with no
// matcher, has Caddy ask dockroute's DNS for the SRV records of the
// request's own host ("{http.request.host}" + lookup.HostSuffix) and
// proxy there. A plain host starting, scaling or going is then a changed
// answer, not a config load (each load rebuilds all of Caddy's config and
// ends its servers' connections gracefully). A host with settings of its
// own is written as before, ahead of that route; a host moving from one
// kind to the other is one load.
//
// A host nothing routes is answered with the Responder's address, which
// answers 404 as Caddy's last route does otherwise: an answer, not an
// error, because Caddy logs every failed lookup as an error and caches
// none of them. A host whose containers all stopped is answered with an
// address no dial reaches, so that Caddy retries — holds the request —
// until a container is ready or its try_duration (--hold) ends, as a
// written route does (see nowhere).

// looksUpHosts tells whether opt serves plain hosts by lookup.
func (o Options) looksUpHosts() bool { return o.Lookup != nil && o.Lookup.Hosts != "" }

// plainAt tells whether t.Routes[i] is a plain host's, served by the host
// lookup route (opt looks hosts up). A host is plain when its only route
// is for the whole host, with no path, protocol, middlewares, auth or
// sleep, its servers are IP addresses on one port (or it is down and its
// last port is known, with holding), it is not a wildcard, not the default
// host, and no wildcard route covers it (a written route comes first, and
// exact hosts must win over wildcards). It looks only at the route and
// its neighbours (t is sorted by host), so that a publish needs no pass
// over 10,000 routes to find the plain ones, and a lookup none at all.
func plainAt(t route.Table, i int, opt Options) bool {
	r := &t.Routes[i]
	if r.TCP || r.Path != "" || r.Proto != "" || r.Middlewares != "" || r.Auth != "" || r.Sleeps() ||
		route.IsWildcard(r.Host) || r.Host == opt.DefaultHost || r.Down() && opt.Hold == nil {
		return false
	}
	if otherRoute(t, i, -1) || otherRoute(t, i, 1) {
		return false
	}
	// Wildcards sort first ('*' before any letter or digit): a table
	// whose first route is no wildcard has none to look for.
	if _, rest, ok := strings.Cut(r.Host, "."); ok && route.IsWildcard(t.Routes[0].Host) && t.HasHost("*."+rest) {
		return false
	}
	return lookable(r)
}

// otherRoute tells whether the host of t.Routes[i] has another HTTP route
// on the side step (-1 or 1) goes.
func otherRoute(t route.Table, i, step int) bool {
	host := t.Routes[i].Host
	for j := i + step; j >= 0 && j < len(t.Routes) && t.Routes[j].Host == host; j += step {
		if !t.Routes[j].TCP {
			return true
		}
	}
	return false
}

// hostIndex is the index of host's first route in t, -1 without one.
func hostIndex(t route.Table, host string) int {
	i, _ := slices.BinarySearchFunc(t.Routes, host, func(r route.Route, h string) int { return strings.Compare(r.Host, h) })
	if i < len(t.Routes) && t.Routes[i].Host == host {
		return i
	}
	return -1
}

// HostAnswers answers the SRV questions for t's plain hosts, and gives the
// answer for every other host (the Responder's address); nil, nil when opt
// does not look hosts up. Each question looks at t's routes then (a
// binary search): making the answers for a new table costs nothing.
func HostAnswers(t route.Table, opt Options) (lookup.Hosts, []netip.AddrPort) {
	if !opt.looksUpHosts() {
		return nil, nil
	}
	hosts := func(host string) ([]netip.AddrPort, bool) {
		i := hostIndex(t, host)
		if i < 0 || !plainAt(t, i, opt) {
			return nil, false
		}
		tg, _ := upstreamsOf(t.Routes[i])
		port, _ := strconv.ParseUint(tg.port, 10, 16) // upstreamsOf's ports are numbers
		targets := make([]netip.AddrPort, len(tg.addrs))
		for k, a := range tg.addrs {
			targets[k] = netip.AddrPortFrom(a, uint16(port))
		}
		return targets, true
	}
	other, err := netip.ParseAddrPort(opt.Lookup.Hosts)
	if err != nil {
		return hosts, nil
	}
	return hosts, []netip.AddrPort{other}
}

// hostLookup is the route that serves every plain host, and answers 404
// (through the Responder) for hosts nothing routes.
func hostLookup(opt Options) Route {
	resolver := &Resolver{Addresses: []string{opt.Lookup.Resolver}}
	try := "5s"
	if opt.Hold != nil {
		try = opt.Hold.Limit.String()
	}
	t := transport("", opt)
	t.Resolver = resolver
	return Route{
		Handle: []Handler{hostName, {
			Handler: "reverse_proxy",
			// Used only when a lookup fails: a host that is no DNS name
			// (an IP literal in brackets, a name over 253 characters).
			Upstreams: []Upstream{{Dial: opt.Lookup.Hosts}},
			DynamicUpstreams: &DynamicUpstreams{
				Source: "srv", Name: "{" + hostPlaceholder + "}" + lookup.HostSuffix,
				Refresh: opt.Lookup.Refresh.String(), Resolver: resolver,
			},
			LoadBalancing: &LoadBalancing{
				SelectionPolicy: &SelectionPolicy{Policy: "round_robin"},
				TryDuration:     try,
				TryInterval:     "10ms",
			},
			HealthChecks: &HealthChecks{Passive: &PassiveHealth{FailDuration: "1s"}},
			Transport:    t,
		}},
		Terminal: true,
	}
}

// hostPlaceholder is the request's host without the final dot of its
// absolute form ("a.test." names a.test, as written routes match both),
// which no DNS name can hold; set by hostName.
const hostPlaceholder = "dockroute.host"

// hostName is the map handler that sets hostPlaceholder (in Caddy 2.6.2 and
// later).
var hostName = Handler{Raw: json.RawMessage(`{"handler":"map","source":"{http.request.host}","destinations":["{` + hostPlaceholder +
	`}"],"mappings":[{"input_regexp":"^(.+)\\.$","outputs":["${1}"]}],"defaults":["{http.request.host}"]}`)}

// looksUpHosts tells whether r is the host lookup route.
func (r Route) looksUpHosts() bool {
	if len(r.Match) != 0 || len(r.Handle) == 0 {
		return false
	}
	h := r.Handle[len(r.Handle)-1]
	return h.DynamicUpstreams != nil && strings.HasSuffix(h.DynamicUpstreams.Name, lookup.HostSuffix)
}

// Responder answers the requests the host lookup route sends it: those
// for hosts nothing routes, with 404 and the body Caddy's last route
// gives them otherwise.
func Responder() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(notFound.Handle[0].Body))
	})
}

// ServeResponder serves h (Output.Responder) on l until it is closed.
func ServeResponder(l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(l)
}
