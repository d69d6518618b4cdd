package route

import (
	"cmp"
	"slices"
	"time"
)

// Edge holds a route's options at the proxy's edge, set per container. The
// zero value means "use dockroute's global settings". Only the Traefik
// output reads it: Caddy's automatic HTTPS is per server, not per route.
type Edge struct {
	// EntryPoints is a comma-separated, sorted list of Traefik entrypoints.
	EntryPoints string
	// TLS is TLSDefault, TLSOn or TLSOff.
	TLS          TLSMode
	CertResolver string
}

// TLSMode is a per-route TLS choice.
type TLSMode int8

// The TLS choices a container can make.
const (
	TLSDefault TLSMode = iota
	TLSOn
	TLSOff
)

// Backend is one routable endpoint found by a provider: requests for Host
// whose path lies under Path go to Server. Host and Path must be canonical
// (ParseHost, ParsePath) and Server a valid "host:port"; Build trusts them.
type Backend struct {
	// Name identifies the backend to people (container name); it is used in
	// logs and explain, never rendered into proxy config.
	Name  string
	Host  string
	Path  string // "" for the whole host
	Strip bool   // remove Path from the request before it reaches Server
	Edge  Edge
	// Proto is how the proxy speaks to Server: "" (HTTP/1.1), "https" or
	// "h2c" (HTTP/2 in cleartext, as gRPC servers do).
	Proto string
	// Middlewares are the operator's middleware sets the route runs
	// through, comma-separated in order (see ParseMiddlewares).
	Middlewares string
	// Auth names the operator's basic-auth group whose users may pass
	// ("" for none).
	Auth string
	// TCP makes this a TLS passthrough route: TLS connections whose SNI
	// is Host go, still encrypted, to Server (Traefik only). Path, Strip,
	// Proto, Middlewares and Auth are unset.
	TCP bool
	// Idle, when set, puts the container to sleep (stops it) after this
	// long without a request, and wakes it on the next: its route always
	// goes through dockroute's holding endpoint, which counts requests.
	// Never set on a TCP backend (dockroute does not see its traffic).
	Idle time.Duration
	// Server is "ip:port" (IPv6 in brackets) or "name:port".
	Server string
}

// Route is one host and path prefix with every server that serves it.
type Route struct {
	Host        string
	Path        string
	Strip       bool
	Edge        Edge
	Proto       string
	Middlewares string
	Auth        string
	TCP         bool
	// Idle is the deciding backend's: the route's requests go through
	// the holding endpoint, awake or asleep (package sleep).
	Idle    time.Duration
	Servers []string
	// LastPort is, on a down route (no servers), the port its servers all
	// had ("" when they differed): a proxy that looks servers up by a name
	// made of host, path and port can keep asking under the same name, and
	// find the next container the moment it is ready.
	LastPort string
}

// Table is the desired routing: routes sorted by host then path, servers
// sorted and unique within a route. Equal inputs give equal tables, so
// renderers that are deterministic over a Table are deterministic over
// their input.
type Table struct {
	Routes []Route
}

type key struct {
	host, path string
	tcp        bool
}

// Build turns backends into a table. The order of backends does not matter
// and duplicates collapse. When the replicas of one host and path disagree
// on Strip or Edge, the backend whose name sorts first decides, so the
// choice is stable (providers settle such claims before; this only keeps
// the table deterministic whatever it is given).
func Build(backends []Backend) Table {
	// First pass: which route each backend joins, and who decides it.
	index := make(map[key]int, len(backends))
	routeOf := make([]int, len(backends))
	var decider []int // per route, the index of its deciding backend
	var count []int   // per route, how many backends it has
	for i, b := range backends {
		k := key{b.Host, b.Path, b.TCP}
		r, ok := index[k]
		if !ok {
			r = len(decider)
			index[k] = r
			decider, count = append(decider, i), append(count, 0)
		} else if d := backends[decider[r]]; cmp.Or(cmp.Compare(b.Name, d.Name), cmp.Compare(b.Server, d.Server)) < 0 {
			decider[r] = i
		}
		routeOf[i] = r
		count[r]++
	}
	// Second pass: the servers, carved from one array.
	routes := make([]Route, len(decider))
	all := make([]string, len(backends))
	next := 0
	for r, d := range decider {
		b := backends[d]
		routes[r] = Route{Host: b.Host, Path: b.Path, Strip: b.Strip, Edge: b.Edge, Proto: b.Proto,
			Middlewares: b.Middlewares, Auth: b.Auth, TCP: b.TCP, Idle: b.Idle, Servers: all[next : next : next+count[r]]}
		next += count[r]
	}
	for i, b := range backends {
		r := &routes[routeOf[i]]
		r.Servers = append(r.Servers, b.Server)
	}
	for r := range routes {
		slices.Sort(routes[r].Servers)
		routes[r].Servers = slices.Compact(routes[r].Servers)
	}
	// Sorting indexes moves ints, not whole routes.
	order := make([]int, len(routes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return compareRoutes(&routes[a], &routes[b]) })
	permute(routes, order)
	return Table{Routes: routes}
}

// permute puts rs[order[i]] at i for every i, in place, following each
// cycle of the permutation (a second array of 10,000 routes was 1.6 MB of
// garbage per publish). It consumes order.
func permute(rs []Route, order []int) {
	for i := range order {
		if order[i] < 0 {
			continue
		}
		first := rs[i]
		j := i
		for {
			k := order[j]
			order[j] = -1
			if k == i {
				rs[j] = first
				break
			}
			rs[j] = rs[k]
			j = k
		}
	}
}

// compareRoutes orders routes by host, then path, HTTP before passthrough.
func compareRoutes(a, b *Route) int {
	return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), compareBool(a.TCP, b.TCP))
}

// Sort orders routes as a Table holds them: by host, then path, HTTP
// before passthrough.
func Sort(rs []Route) { sortRoutes(rs) }

// sortRoutes orders routes by host, then path.
func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int { return compareRoutes(&a, &b) })
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Equal tells whether two tables are the same, route by route.
func (t Table) Equal(o Table) bool {
	return slices.EqualFunc(t.Routes, o.Routes, Route.Equal)
}

// Equal tells whether two routes are the same in every field.
func (r Route) Equal(o Route) bool {
	return r.Host == o.Host && r.Path == o.Path && r.TCP == o.TCP && r.Strip == o.Strip && r.Edge == o.Edge && r.Proto == o.Proto &&
		r.Middlewares == o.Middlewares && r.Auth == o.Auth && r.Idle == o.Idle && slices.Equal(r.Servers, o.Servers) && r.LastPort == o.LastPort
}

// Find returns t's HTTP route for exactly host and path (a binary search:
// t is sorted).
func (t Table) Find(host, path string) (Route, bool) {
	want := Route{Host: host, Path: path}
	i, ok := slices.BinarySearchFunc(t.Routes, &want, func(r Route, w *Route) int { return compareRoutes(&r, w) })
	if !ok {
		return Route{}, false
	}
	return t.Routes[i], true
}

// HasHost tells whether t has an HTTP route for exactly host, on any path
// (a binary search: t is sorted by host first).
func (t Table) HasHost(host string) bool {
	i, _ := slices.BinarySearchFunc(t.Routes, host, func(r Route, h string) int { return cmp.Compare(r.Host, h) })
	for ; i < len(t.Routes) && t.Routes[i].Host == host; i++ {
		if !t.Routes[i].TCP {
			return true
		}
	}
	return false
}
