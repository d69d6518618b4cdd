package route

import (
	"net"
	"time"
)

// Recent remembers, for a grace period, the routes that lost their last
// server, so that a host whose containers all stopped (or are stopping, or
// unhealthy) answers 503 "try again" instead of 404 "no such name", which
// clients and caches take as final.
//
// It is the one bounded exception to the level-triggered table: what it
// adds depends on earlier tables, not only on the running containers. It
// adds only routes without servers, never an address, so it can delay a
// 404 but can never send a request anywhere; an entry lives at most Grace
// after the route last had a server, and is lost on restart (a route that
// was down before dockroute started answers 404).
type Recent struct {
	grace time.Duration
	prev  []Route             // the last table given, to see what left
	down  map[key]recentRoute // routes kept without servers
}

type recentRoute struct {
	route Route     // as last seen with servers, Servers dropped
	until time.Time // when the grace ends
}

// NewRecent returns an empty memory; grace ≤ 0 disables it.
func NewRecent(grace time.Duration) *Recent {
	return &Recent{grace: grace, down: map[key]recentRoute{}}
}

// Keep returns t with the routes that lost their servers within the grace
// period, as routes without servers, and the time the next of them
// expires (zero when none is kept). t must be sorted as Build sorts it
// and is not modified; the result is sorted the same way. The grace of a
// route runs from the first Keep that finds it gone. The cost is one walk
// of the previous and the new table: nothing is written per route.
func (r *Recent) Keep(t Table, now time.Time) (Table, time.Time) {
	if r.grace <= 0 {
		return t, time.Time{}
	}
	r.forgetReturned(t.Routes)
	r.rememberGone(t.Routes, now)
	r.prev = t.Routes
	var kept []Route
	var next time.Time
	covered := coveredBy(t.Routes, r.down)
	for k, e := range r.down {
		if !now.Before(e.until) {
			delete(r.down, k)
			continue
		}
		if covered(e.route) {
			// A live route of the host serves these requests now (a
			// path's container went, the host's / stays): they go there,
			// as without the path route, rather than to a 503.
			continue
		}
		kept = append(kept, e.route)
		if next.IsZero() || e.until.Before(next) {
			next = e.until
		}
	}
	if len(kept) == 0 {
		return t, next
	}
	out := Table{Routes: make([]Route, 0, len(t.Routes)+len(kept))}
	out.Routes = append(append(out.Routes, t.Routes...), kept...)
	sortRoutes(out.Routes)
	return out, next
}

// coveredBy returns whether a kept route's requests would reach a live
// route of routes, one under a shorter prefix of the same host. It costs
// nothing while no route is kept.
func coveredBy(routes []Route, down map[key]recentRoute) func(Route) bool {
	if len(down) == 0 {
		return nil
	}
	live := map[string][]string{} // host → its live routes' paths
	for _, rt := range routes {
		if !rt.TCP && !rt.Down() {
			live[rt.Host] = append(live[rt.Host], rt.Path)
		}
	}
	return func(gone Route) bool {
		for _, p := range live[gone.Host] {
			if p != gone.Path && Within(gone.Path, p) {
				return true
			}
		}
		return false
	}
}

// forgetReturned drops the kept routes that are back in routes.
func (r *Recent) forgetReturned(routes []Route) {
	if len(r.down) == 0 {
		return
	}
	for _, rt := range routes {
		delete(r.down, key{rt.Host, rt.Path, rt.TCP})
	}
}

// rememberGone keeps every route of the previous table missing from
// routes (both sorted): a TLS passthrough is not kept, as there is no
// HTTP answer to give on a connection that is not TLS-terminated.
func (r *Recent) rememberGone(routes []Route, now time.Time) {
	i := 0
	for _, p := range r.prev {
		for i < len(routes) && compareRoutes(&routes[i], &p) < 0 {
			i++
		}
		if i < len(routes) && compareRoutes(&routes[i], &p) == 0 || p.TCP {
			continue
		}
		p.LastPort = sharedPort(p.Servers)
		p.Servers = nil
		r.down[key{p.Host, p.Path, p.TCP}] = recentRoute{route: p, until: now.Add(r.grace)}
	}
}

// Down tells whether a route is kept by Recent: it has no server left.
func (r Route) Down() bool { return len(r.Servers) == 0 }

// Sleeps tells whether r's containers are put to sleep when idle: its
// requests always go through the holding endpoint, which counts them and
// wakes a sleeping container, so the proxy's config for r is the same
// awake and asleep.
func (r Route) Sleeps() bool { return r.Idle > 0 }

// Forget drops every route kept without servers and says how many there
// were: they are a courtesy (503 rather than 404), never worth a publish
// that fails, as one too big for the disk does.
func (r *Recent) Forget() int {
	n := len(r.down)
	clear(r.down)
	return n
}

// sharedPort is the port every server listens on, "" when they differ.
func sharedPort(servers []string) string {
	port := ""
	for i, s := range servers {
		_, p, err := net.SplitHostPort(s)
		if err != nil || i > 0 && p != port {
			return ""
		}
		port = p
	}
	return port
}
