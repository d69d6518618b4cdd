package route

import (
	"cmp"
	"net/netip"
	"slices"
)

// Backend is one routable endpoint found by a provider: a container (or, later,
// a static entry) serving the given hosts at one address. Hosts must already
// be canonical (see ParseHost); Build trusts them.
type Backend struct {
	// Name identifies the backend to people (container name); it is used in
	// logs and explain, never rendered into proxy config.
	Name  string
	Hosts []string
	Addr  netip.AddrPort
}

// Route is one host and every server that serves it.
type Route struct {
	Host    string
	Servers []netip.AddrPort
}

// Table is the desired routing: routes sorted by host, servers sorted and
// unique within a route. Equal inputs give equal tables, so renderers that
// are deterministic over a Table are deterministic over their input.
type Table struct {
	Routes []Route
}

// Build turns backends into a table. The order of backends and of their
// hosts does not matter; duplicates collapse.
func Build(backends []Backend) Table {
	byHost := make(map[string][]netip.AddrPort)
	for _, b := range backends {
		for _, h := range b.Hosts {
			byHost[h] = append(byHost[h], b.Addr)
		}
	}
	t := Table{Routes: make([]Route, 0, len(byHost))}
	for h, servers := range byHost {
		slices.SortFunc(servers, compareAddrPort)
		t.Routes = append(t.Routes, Route{Host: h, Servers: slices.Compact(servers)})
	}
	slices.SortFunc(t.Routes, func(a, b Route) int { return cmp.Compare(a.Host, b.Host) })
	return t
}

func compareAddrPort(a, b netip.AddrPort) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Port(), b.Port())
}
