package traefik

import (
	"bytes"
	"cmp"
	"maps"
	"slices"

	"github.com/dockroute/dockroute/provider/route"
)

// Renderer renders as Render does, keeping each route's text for the next
// call: a route that has not changed since, under the same options, is
// not rendered again, so a change of one container renders one route and
// the rest is assembly. It is not safe for concurrent use.
type Renderer struct {
	opt    Options
	pieces map[pieceKey]*piece
	// order is every piece's key sorted by its name, kept from render to
	// render: with pieces assembled in this order, a section's entries
	// usually come out sorted already, and sorting 10,000 of them on each
	// publish was a quarter of a one-container change.
	order   []ordered
	scratch scratch
}

// ordered is a piece's key and the name that sorts it: its router's.
type ordered struct {
	name string
	key  pieceKey
}

func orderedOf(k pieceKey) ordered {
	if k.tcp {
		return ordered{tcpPrefix + encode(k.host, ""), k}
	}
	return ordered{Name(k.host, k.path), k}
}

func compareOrdered(a, b ordered) int { return cmp.Compare(a.name, b.name) }

// scratch is what rendering one route needs, reused route after route.
type scratch struct {
	h   httpConfig
	tc  tcpConfig
	buf bytes.Buffer
	at  []int // where each entry written to buf ends
}

type pieceKey struct {
	host, path string
	tcp        bool
}

// piece is one route's share of the file: its routers, middlewares and
// services (or TCP routers and services), each entry already written.
type piece struct {
	route                          route.Route
	routers, middlewares, services []entry
	tcpRouters, tcpServices        []entry
	transports                     map[string]serversTransport
}

// entry is one named block of YAML.
type entry struct {
	name string
	text []byte
}

// Render returns the file contents for t under opt, byte for byte what
// the package's Render gives.
func (rd *Renderer) Render(t route.Table, opt Options) []byte {
	if rd.pieces == nil || !rd.opt.Equal(opt) {
		rd.pieces, rd.opt, rd.order = map[pieceKey]*piece{}, opt, nil
	}
	next := make(map[pieceKey]*piece, len(t.Routes))
	var added []ordered
	for _, r := range t.Routes {
		k := pieceKey{r.Host, r.Path, r.TCP}
		p := rd.pieces[k]
		if p == nil {
			added = append(added, orderedOf(k))
		}
		if p == nil || !p.route.Equal(r) {
			p = rd.scratch.piece(r, opt)
		}
		next[k] = p
	}
	rd.reorder(next, added)
	routers, services := make([]entry, 0, len(t.Routes)), make([]entry, 0, len(t.Routes))
	var middlewares, tcpRouters, tcpServices []entry
	transports := map[string]serversTransport{}
	seen := map[string]bool{} // middlewares several routes share
	for _, o := range rd.order {
		p := next[o.key]
		routers, services = append(routers, p.routers...), append(services, p.services...)
		tcpRouters, tcpServices = append(tcpRouters, p.tcpRouters...), append(tcpServices, p.tcpServices...)
		for _, m := range p.middlewares {
			if !seen[m.name] {
				seen[m.name] = true
				middlewares = append(middlewares, m)
			}
		}
		maps.Copy(transports, p.transports)
	}
	rd.pieces = next
	var buf bytes.Buffer
	buf.Grow(len(header) + 260*len(t.Routes))
	buf.WriteString(header)
	// An empty section ("http: {}", "tcp: {}") is refused by Traefik as
	// standalone and would drop the whole directory; an empty document
	// loads as "no routes".
	if len(routers) == 0 && len(tcpRouters) == 0 {
		buf.WriteString("{}\n")
		return buf.Bytes()
	}
	if len(routers) > 0 {
		buf.WriteString("http:\n")
		section(&buf, "  routers:\n", routers)
		section(&buf, "  middlewares:\n", middlewares)
		section(&buf, "  services:\n", services)
		if len(transports) > 0 {
			writeTransports(&buf, transports)
		}
	}
	if len(tcpRouters) > 0 {
		buf.WriteString("tcp:\n")
		section(&buf, "  routers:\n", tcpRouters)
		section(&buf, "  services:\n", tcpServices)
	}
	return buf.Bytes()
}

// reorder brings rd.order to the keys of next: the keys gone are dropped,
// the added ones inserted in place (a full sort only when many arrive at
// once, as on the first render).
func (rd *Renderer) reorder(next map[pieceKey]*piece, added []ordered) {
	if gone := len(rd.order) - (len(next) - len(added)); gone > 0 {
		rd.order = slices.DeleteFunc(rd.order, func(o ordered) bool { return next[o.key] == nil })
	}
	if len(added) > len(rd.order)/8 {
		rd.order = append(rd.order, added...)
		slices.SortFunc(rd.order, compareOrdered)
		return
	}
	for _, o := range added {
		i, _ := slices.BinarySearchFunc(rd.order, o, compareOrdered)
		rd.order = slices.Insert(rd.order, i, o)
	}
}

// Routers lists the names of the HTTP routers the last Render wrote,
// sorted, as Traefik's API names them ("NAME@file"): what Routers gives
// for that table, without building it again.
func (rd *Renderer) Routers() []string {
	var names []string
	for _, p := range rd.pieces {
		for _, e := range p.routers {
			names = append(names, e.name+"@file")
		}
	}
	slices.Sort(names)
	return names
}

// section writes a heading and its entries sorted by name (nothing when
// there are none).
func section(buf *bytes.Buffer, heading string, es []entry) {
	if len(es) == 0 {
		return
	}
	byName := func(a, b entry) int { return cmp.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(es, byName) {
		slices.SortFunc(es, byName)
	}
	buf.WriteString(heading)
	for _, e := range es {
		buf.Write(e.text)
	}
}

// piece writes one route's entries: each into the shared buffer, then all
// of them copied out at once.
func (s *scratch) piece(r route.Route, opt Options) *piece {
	p := &piece{route: r}
	p.route.Servers = slices.Clone(r.Servers)
	s.buf.Reset()
	s.at = s.at[:0]
	var names []string
	var lists []*[]entry
	add := func(list *[]entry, name string, write func(*bytes.Buffer)) {
		write(&s.buf)
		s.at = append(s.at, s.buf.Len())
		names, lists = append(names, name), append(lists, list)
	}
	if r.TCP {
		s.tc = tcpConfig{Routers: clearMap(s.tc.Routers), Services: clearMap(s.tc.Services)}
		addTCPRoute(&s.tc, r, opt)
		for name, rt := range s.tc.Routers {
			add(&p.tcpRouters, name, func(b *bytes.Buffer) { writeTCPRouter(b, name, rt) })
		}
		for name, svc := range s.tc.Services {
			add(&p.tcpServices, name, func(b *bytes.Buffer) { writeTCPService(b, name, svc) })
		}
	} else {
		s.h = httpConfig{Routers: clearMap(s.h.Routers), Middlewares: clearMap(s.h.Middlewares), Services: clearMap(s.h.Services)}
		addRoute(&s.h, r, opt)
		for name, rt := range s.h.Routers {
			add(&p.routers, name, func(b *bytes.Buffer) { writeRouter(b, name, rt) })
		}
		for name, m := range s.h.Middlewares {
			add(&p.middlewares, name, func(b *bytes.Buffer) { writeMiddleware(b, name, m) })
		}
		for name, svc := range s.h.Services {
			add(&p.services, name, func(b *bytes.Buffer) { writeService(b, name, svc) })
		}
		p.transports = s.h.ServersTransports
	}
	text := bytes.Clone(s.buf.Bytes())
	from := 0
	for i, to := range s.at {
		*lists[i] = append(*lists[i], entry{names[i], text[from:to:to]})
		from = to
	}
	return p
}

// clearMap empties m for reuse, or makes it.
func clearMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	clear(m)
	return m
}
