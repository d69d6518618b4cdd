package caddy

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/lookup"
)

// lookupDomain holds the names dockroute makes up for routes. ".internal"
// is reserved for private use (ICANN, 2024): no real name can clash.
const lookupDomain = ".dockroute.internal."

// target is how Caddy finds a route's upstreams by lookup: the name
// dockroute answers, the port every upstream shares, and the addresses.
type target struct {
	name, port string
	addrs      []netip.Addr
}

// nowhere is the answer for a down route: the limited broadcast address,
// which no container has and which a TCP dial refuses at once (network
// unreachable). Caddy finds no upstream to use and retries — the request
// is held — asking again once the answer is Refresh old. Answering
// nothing would not do: a failed lookup makes Caddy fall back to the
// upstreams its config lists, which are the stopped containers', and
// Docker may have given such an address to another container since.
var nowhere = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// lookupTarget returns r's target; ok is false for a route whose upstreams
// cannot be looked up: servers that are not IP addresses (a routes file
// may name hosts) or replicas listening on different ports. Such a route
// keeps its upstreams in the config, reloaded on every change, as without
// lookups.
//
// The name covers the host, path and port, so a route whose port changes
// asks under a new name, and the answers for the old one (which Caddy's
// old config still asks for until the new config is loaded) are gone
// instead of wrong.
func lookupTarget(r route.Route) (t target, ok bool) {
	if t, ok = upstreamsOf(r); ok {
		t = t.named(r)
	}
	return t, ok
}

// lookable tells whether r's upstreams can be looked up (upstreamsOf),
// without making them: plainAt asks it of every route at every publish.
// Not: a passthrough route, a down one whose last port is unknown,
// servers that are not IP addresses (a routes file may name hosts), or
// on different ports, or one address twice (as IPv4 and IPv4-mapped
// IPv6: an answer cannot say it twice, so the upstreams stay in the
// config).
func lookable(r *route.Route) bool {
	if r.TCP {
		return false
	}
	if r.Down() {
		return r.LastPort != ""
	}
	var port string
	for i, s := range r.Servers {
		host, p, err := net.SplitHostPort(s)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" || i > 0 && p != port {
			return false
		}
		port = p
		for _, o := range r.Servers[:i] {
			if oh, _, _ := net.SplitHostPort(o); netip.MustParseAddr(oh).Unmap() == a.Unmap() {
				return false
			}
		}
	}
	return true
}

// upstreamsOf is lookupTarget without the name (a hash of the route),
// which the host lookup route does not use.
func upstreamsOf(r route.Route) (t target, ok bool) {
	if !lookable(&r) {
		return t, false
	}
	if r.Down() {
		// Asked for under the name it had: the next container found there.
		return target{port: r.LastPort, addrs: []netip.Addr{nowhere}}, true
	}
	for _, s := range r.Servers {
		host, port, _ := net.SplitHostPort(s) // lookable checked them
		t.port = port
		t.addrs = append(t.addrs, netip.MustParseAddr(host).Unmap())
	}
	slices.SortFunc(t.addrs, netip.Addr.Compare)
	return t, true
}

// named is t with the name of r's host, path and t's port.
func (t target) named(r route.Route) target {
	sum := sha256.Sum256([]byte(r.Host + "\x00" + r.Path + "\x00" + t.port))
	t.name = "r" + hex.EncodeToString(sum[:10]) + lookupDomain
	return t
}

// dynamic is the reverse_proxy source for r, nil without lookups or when
// r cannot be looked up.
func dynamic(r route.Route, l *Lookup) *DynamicUpstreams {
	if l == nil {
		return nil
	}
	t, ok := lookupTarget(r)
	if !ok {
		return nil
	}
	return &DynamicUpstreams{
		Source: "a", Name: t.name, Port: t.port, Refresh: l.Refresh.String(),
		Resolver: &Resolver{Addresses: []string{l.Resolver}},
	}
}

// Answers is what the lookup server answers for t under opt: every
// written route's upstreams under its name (a plain host's route, which
// the host lookup route serves, is asked for by host: HostAnswers). It is
// computed from the table alone, so it is right whatever Caddy's config
// is doing.
func Answers(t route.Table, opt Options) lookup.Answers {
	a := make(lookup.Answers)
	for i := range t.Routes {
		if tg, ok := writtenTarget(t, i, opt); ok {
			a[tg.name] = tg.addrs
		}
	}
	return a
}

// writtenTarget is lookupTarget for t.Routes[i], when it is written into
// Caddy's config (not a plain host's).
func writtenTarget(t route.Table, i int, opt Options) (target, bool) {
	if opt.looksUpHosts() && plainAt(t, i, opt) {
		return target{}, false
	}
	return lookupTarget(t.Routes[i])
}

// NextAnswers returns Answers(t, opt), given a = Answers(last, opt): when
// t has last's routes, only those that differ are looked at (a replica
// started or stopped beside 10,000 routes; whether another route is a
// plain host's cannot change then), otherwise it is Answers(t, opt). a is
// not modified: the lookup server may still be answering from it.
func NextAnswers(a lookup.Answers, last, t route.Table, opt Options) lookup.Answers {
	changed, ok := changedRoutes(last, t)
	if a == nil || !ok {
		return Answers(t, opt)
	}
	if len(changed) == 0 {
		return a
	}
	next := maps.Clone(a)
	for _, i := range changed {
		if tg, ok := lookupTarget(last.Routes[i]); ok {
			delete(next, tg.name)
		}
		if tg, ok := writtenTarget(t, i, opt); ok {
			next[tg.name] = tg.addrs
		}
	}
	return next
}

// changedRoutes lists the places where t's route differs from last's; ok
// is false when the two do not hold the same routes (by host, path and
// TLS passthrough) in the same places, a route added or removed.
func changedRoutes(last, t route.Table) (changed []int, ok bool) {
	if len(last.Routes) != len(t.Routes) {
		return nil, false
	}
	for i := range t.Routes {
		a, b := &last.Routes[i], &t.Routes[i]
		if a.Equal(*b) {
			continue
		}
		if a.Host != b.Host || a.Path != b.Path || a.TCP != b.TCP {
			return nil, false
		}
		changed = append(changed, i)
	}
	return changed, true
}
