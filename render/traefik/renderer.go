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
		rd.pieces, rd.opt = map[pieceKey]*piece{}, opt
	}
	next := make(map[pieceKey]*piece, len(t.Routes))
	var routers, middlewares, services, tcpRouters, tcpServices []entry
	transports := map[string]serversTransport{}
	seen := map[string]bool{} // middlewares several routes share
	for _, r := range t.Routes {
		k := pieceKey{r.Host, r.Path, r.TCP}
		p := rd.pieces[k]
		if p == nil || !p.route.Equal(r) {
			p = renderPiece(r, opt)
		}
		next[k] = p
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

// section writes a heading and its entries sorted by name (nothing when
// there are none).
func section(buf *bytes.Buffer, heading string, es []entry) {
	if len(es) == 0 {
		return
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.name, b.name) })
	buf.WriteString(heading)
	for _, e := range es {
		buf.Write(e.text)
	}
}

// renderPiece writes one route's entries.
func renderPiece(r route.Route, opt Options) *piece {
	p := &piece{route: r}
	p.route.Servers = slices.Clone(r.Servers)
	var buf bytes.Buffer
	text := func(write func(*bytes.Buffer)) []byte {
		buf.Reset()
		write(&buf)
		return bytes.Clone(buf.Bytes())
	}
	if r.TCP {
		tc := &tcpConfig{Routers: map[string]tcpRouter{}, Services: map[string]tcpService{}}
		addTCPRoute(tc, r, opt)
		for name, rt := range tc.Routers {
			p.tcpRouters = append(p.tcpRouters, entry{name, text(func(b *bytes.Buffer) { writeTCPRouter(b, name, rt) })})
		}
		for name, s := range tc.Services {
			p.tcpServices = append(p.tcpServices, entry{name, text(func(b *bytes.Buffer) { writeTCPService(b, name, s) })})
		}
		return p
	}
	h := &httpConfig{Routers: map[string]router{}, Middlewares: map[string]middleware{}, Services: map[string]service{}}
	addRoute(h, r, opt)
	for name, rt := range h.Routers {
		p.routers = append(p.routers, entry{name, text(func(b *bytes.Buffer) { writeRouter(b, name, rt) })})
	}
	for name, m := range h.Middlewares {
		p.middlewares = append(p.middlewares, entry{name, text(func(b *bytes.Buffer) { writeMiddleware(b, name, m) })})
	}
	for name, s := range h.Services {
		p.services = append(p.services, entry{name, text(func(b *bytes.Buffer) { writeService(b, name, s) })})
	}
	p.transports = h.ServersTransports
	return p
}
