package route

import (
	"cmp"
	"slices"
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
	Servers     []string
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
	type entry struct {
		route   *Route
		decider Backend // the backend whose Strip and Edge the route has
	}
	byKey := make(map[key]*entry, len(backends))
	for _, b := range backends {
		k := key{b.Host, b.Path, b.TCP}
		e, ok := byKey[k]
		if !ok {
			e = &entry{route: &Route{Host: b.Host, Path: b.Path, Strip: b.Strip, Edge: b.Edge, Proto: b.Proto, Middlewares: b.Middlewares, Auth: b.Auth, TCP: b.TCP}, decider: b}
			byKey[k] = e
		} else if cmp.Or(cmp.Compare(b.Name, e.decider.Name), cmp.Compare(b.Server, e.decider.Server)) < 0 {
			e.route.Strip, e.route.Edge, e.route.Proto, e.decider = b.Strip, b.Edge, b.Proto, b
			e.route.Middlewares, e.route.Auth = b.Middlewares, b.Auth
		}
		e.route.Servers = append(e.route.Servers, b.Server)
	}
	t := Table{Routes: make([]Route, 0, len(byKey))}
	for _, e := range byKey {
		slices.Sort(e.route.Servers)
		e.route.Servers = slices.Compact(e.route.Servers)
		t.Routes = append(t.Routes, *e.route)
	}
	sortRoutes(t.Routes)
	return t
}

// sortRoutes orders routes by host, then path.
func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), compareBool(a.TCP, b.TCP))
	})
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
	return slices.EqualFunc(t.Routes, o.Routes, func(a, b Route) bool {
		return a.Host == b.Host && a.Path == b.Path && a.TCP == b.TCP && a.Strip == b.Strip && a.Edge == b.Edge && a.Proto == b.Proto &&
			a.Middlewares == b.Middlewares && a.Auth == b.Auth && slices.Equal(a.Servers, b.Servers)
	})
}
