package caddy

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
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

// lookupHosts returns the hosts of routes served by the host lookup route,
// nil when opt does not look hosts up. A host is plain when its only
// route is for the whole host, with no path, protocol, middlewares, auth
// or sleep, its servers are IP addresses on one port (or it is down and
// its last port is known), it is not a wildcard, and no wildcard route
// covers it (a written route comes first, and exact hosts must win over
// wildcards).
func lookupHosts(routes []route.Route, opt Options) map[string]target {
	if opt.Lookup == nil || opt.Lookup.Hosts == "" {
		return nil
	}
	// Sized up front: growing these maps was most of a publish's cost at
	// 10,000 routes.
	wild := map[string]bool{}
	count := make(map[string]int, len(routes))
	for _, r := range routes {
		if r.TCP {
			continue
		}
		count[r.Host]++
		if route.IsWildcard(r.Host) {
			wild[r.Host] = true
		}
	}
	plain := make(map[string]target, len(routes))
	for _, r := range routes {
		if r.TCP || count[r.Host] != 1 || r.Path != "" || r.Proto != "" || r.Middlewares != "" || r.Auth != "" ||
			r.Sleeps() || route.IsWildcard(r.Host) || r.Host == opt.DefaultHost || r.Down() && opt.Hold == nil {
			continue
		}
		if _, rest, ok := strings.Cut(r.Host, "."); ok && wild["*."+rest] {
			continue
		}
		if tg, ok := upstreamsOf(r); ok {
			plain[r.Host] = tg
		}
	}
	return plain
}

// HostAnswers are the SRV answers for t's plain hosts, and for every
// other host (the Responder's address; nil when opt does not look hosts
// up).
func HostAnswers(t route.Table, opt Options) (lookup.Hosts, []netip.AddrPort) {
	h := plainAnswers(t, opt)
	if h == nil {
		return nil, nil
	}
	other, err := netip.ParseAddrPort(opt.Lookup.Hosts)
	if err != nil {
		return h, nil
	}
	return h, []netip.AddrPort{other}
}

// plainAnswers are the SRV answers for t's plain hosts.
func plainAnswers(t route.Table, opt Options) lookup.Hosts {
	looked := lookupHosts(t.Routes, opt)
	if looked == nil {
		return nil
	}
	h := make(lookup.Hosts, len(looked))
	for host, tg := range looked {
		port, _ := strconv.ParseUint(tg.port, 10, 16) // upstreamsOf's ports are numbers
		for _, a := range tg.addrs {
			h[host] = append(h[host], netip.AddrPortFrom(a, uint16(port)))
		}
	}
	return h
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
