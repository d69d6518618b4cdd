package route

import (
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
	seen  map[key]recentRoute
}

type recentRoute struct {
	route Route     // as last seen with servers, Servers dropped
	until time.Time // when the grace ends
}

// NewRecent returns an empty memory; grace ≤ 0 disables it.
func NewRecent(grace time.Duration) *Recent {
	return &Recent{grace: grace, seen: map[key]recentRoute{}}
}

// Keep returns t with the routes that had servers within the grace period
// but have none now, as routes without servers, and the time the next of
// them expires (zero when none is kept). t is not modified; the result is
// sorted as Build sorts.
func (r *Recent) Keep(t Table, now time.Time) (Table, time.Time) {
	if r.grace <= 0 {
		return t, time.Time{}
	}
	present := make(map[key]bool, len(t.Routes))
	for _, rt := range t.Routes {
		k := key{rt.Host, rt.Path, rt.TCP}
		present[k] = true
		// A TLS passthrough route is not kept: there is no HTTP answer
		// to give on a connection that is not TLS-terminated.
		if len(rt.Servers) > 0 && !rt.TCP {
			down := rt
			down.Servers = nil
			r.seen[k] = recentRoute{route: down, until: now.Add(r.grace)}
		}
	}
	var kept []Route
	var next time.Time
	for k, e := range r.seen {
		switch {
		case present[k]:
		case !now.Before(e.until):
			delete(r.seen, k)
		default:
			kept = append(kept, e.route)
			if next.IsZero() || e.until.Before(next) {
				next = e.until
			}
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

// Down tells whether a route is kept by Recent: it has no server left.
func (r Route) Down() bool { return len(r.Servers) == 0 }
