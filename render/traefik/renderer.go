package traefik

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
)

// Renderer renders as Render does, keeping each route's text for the next
// call: a route that has not changed since, under the same options, is
// not rendered again, so a change of one container renders one route and
// the rest is assembly. It is not safe for concurrent use.
type Renderer struct {
	opt Options
	// slots holds each route's piece by key, and order the same slots
	// sorted by name, kept from render to render: with pieces assembled
	// in this order, a section's entries usually come out sorted already
	// (sorting 10,000 of them on each publish was a quarter of a
	// one-container change), and assembling needs no map lookups.
	slots   map[pieceKey]*slot
	order   []*slot
	gen     uint64 // the render in progress, to find slots no longer used
	scratch scratch
	last    []route.Route     // the table of the last Update
	laid    [sections][]entry // the sections of the last layout, for reuse
	// refused holds the routes whose text did not read back as YAML:
	// they are left out of the file, which the others keep loading.
	refused map[pieceKey]error
}

// slot is one route's place in the file, and its share of it: its
// routers, middlewares and services (or TCP routers and services), each
// entry already written.
type slot struct {
	name string // its router's, which sorts it
	key  pieceKey
	// route is the route the entries were rendered from (nil: none yet):
	// in the last table given, which is never modified, so no copy of it
	// is kept.
	route      *route.Route
	entries    []entry
	transports map[string]serversTransport
	gen        uint64 // the last render that used it
}

func newSlot(k pieceKey) *slot {
	if k.tcp {
		return &slot{name: tcpPrefix + encode(k.host, ""), key: k}
	}
	return &slot{name: Name(k.host, k.path), key: k}
}

func compareSlots(a, b *slot) int { return cmp.Compare(a.name, b.name) }

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

// entry is one named block of YAML, in one of the file's sections.
type entry struct {
	section section
	name    string
	text    []byte
}

// section is where an entry goes.
type section uint8

const (
	routers section = iota
	middlewares
	services
	tcpRouters
	tcpServices
	sections
)

// Render returns the file contents for t under opt, byte for byte what
// the package's Render gives.
func (rd *Renderer) Render(t route.Table, opt Options) []byte {
	rd.Update(t, opt)
	return rd.Bytes()
}

// Update brings the kept pieces to t under opt and tells whether the file
// changes with them: a route added, removed or not as it was, or other
// options. Unchanged, there is nothing to assemble or to write. The
// Renderer keeps t to compare the next table with: t must not be modified
// afterwards (route.Builder's tables never are).
func (rd *Renderer) Update(t route.Table, opt Options) (changed bool) {
	if rd.slots == nil || !rd.opt.Equal(opt) {
		rd.slots, rd.opt, rd.order = map[pieceKey]*slot{}, opt, nil
		changed = true
	} else if len(t.Routes) > 0 && len(t.Routes) == len(rd.last) && &t.Routes[0] == &rd.last[0] {
		return false // the very table of the last Update (route.Builder's, unchanged)
	}
	rd.last = t.Routes
	rd.gen++
	var added, fresh []*slot
	used := 0
	for i := range t.Routes {
		r := &t.Routes[i]
		k := pieceKey{r.Host, r.Path, r.TCP}
		sl := rd.slots[k]
		if sl == nil {
			sl = newSlot(k)
			rd.slots[k] = sl
			added = append(added, sl)
		}
		if sl.route == nil || sl.route != r && !sl.route.Equal(*r) {
			sl.entries, sl.transports = rd.scratch.piece(*r, opt)
			fresh = append(fresh, sl)
			changed = true
		}
		sl.route = r
		if sl.gen != rd.gen {
			sl.gen, used = rd.gen, used+1
		}
	}
	rd.check(fresh)
	unused := len(rd.slots) - used
	rd.reorder(added, unused)
	return changed || unused > 0
}

// Refused lists the routes left out of the file because their text did
// not read back as YAML, with why: a writer's bug, or an input no check
// foresaw, costs that route alone, never the file every route is in.
func (rd *Renderer) Refused() map[string]error {
	out := map[string]error{}
	for k, err := range rd.refused {
		if sl := rd.slots[k]; sl != nil && sl.gen == rd.gen {
			out[sl.name] = err
		}
	}
	return out
}

// check reads every newly written slot back, leaving out those that do
// not read. Slots are read in batches, one document each, on every core;
// a batch that does not read is read again a slot at a time, to find
// which.
func (rd *Renderer) check(fresh []*slot) {
	if rd.refused == nil {
		rd.refused = map[pieceKey]error{}
	}
	const batch = 128
	errs := make([]error, len(fresh))
	n := (len(fresh) + batch - 1) / batch
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				part := fresh[i*batch : min((i+1)*batch, len(fresh))]
				if readBackAll(part) == nil {
					continue
				}
				for j, sl := range part {
					errs[i*batch+j] = readBack(sl.entries)
				}
			}
		})
	}
	wg.Wait()
	for i, sl := range fresh {
		delete(rd.refused, sl.key)
		if errs[i] != nil {
			rd.refused[sl.key] = errs[i]
			sl.entries, sl.transports = nil, nil
		}
	}
	for k := range rd.refused {
		if sl := rd.slots[k]; sl == nil || sl.gen != rd.gen {
			delete(rd.refused, k)
		}
	}
}

// readBackAll reads the slots' entries back as one document.
func readBackAll(slots []*slot) error {
	var es []entry
	seen := map[string]bool{} // middlewares several routes share
	for _, sl := range slots {
		for _, e := range sl.entries {
			if e.section == middlewares {
				if seen[e.name] {
					continue
				}
				seen[e.name] = true
			}
			es = append(es, e)
		}
	}
	return readBack(es)
}

// readBack decodes entries as they stand in the file, under their
// sections' headings, and checks that each reads back under its own name.
func readBack(es []entry) error {
	es = slices.Clone(es)
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.section, b.section) })
	var b bytes.Buffer
	top, sec := "", section(sections)
	for _, e := range es {
		where := placeOf[e.section]
		if where[0] != top {
			top = where[0]
			b.WriteString(top + ":\n")
		}
		if e.section != sec {
			sec = e.section
			b.WriteString("  " + where[1] + ":\n")
		}
		b.Write(e.text)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b.Bytes(), &doc); err != nil {
		return fmt.Errorf("its configuration does not read back as YAML: %w", err)
	}
	names := map[[3]string]bool{}
	if len(doc.Content) == 1 {
		for _, top := range pairs(doc.Content[0]) {
			for _, sec := range pairs(top[1]) {
				for _, name := range pairs(sec[1]) {
					names[[3]string{top[0].Value, sec[0].Value, name[0].Value}] = true
				}
			}
		}
	}
	for _, e := range es {
		where := placeOf[e.section]
		if !names[[3]string{where[0], where[1], e.name}] {
			return fmt.Errorf("its configuration does not read back: %s.%s %q is missing", where[0], where[1], e.name)
		}
	}
	return nil
}

// pairs lists a mapping node's keys and values (none for any other node).
func pairs(n *yaml.Node) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

// placeOf is where each section is in the file: its top-level key and its
// own.
var placeOf = [sections][2]string{
	routers:     {"http", "routers"},
	middlewares: {"http", "middlewares"},
	services:    {"http", "services"},
	tcpRouters:  {"tcp", "routers"},
	tcpServices: {"tcp", "services"},
}

// Bytes assembles the file of the last Update.
func (rd *Renderer) Bytes() []byte {
	var buf bytes.Buffer
	buf.Grow(len(header) + 260*len(rd.order))
	rd.WriteTo(&buf)
	return buf.Bytes()
}

// WriteTo writes the file of the last Update to w, a piece at a time: a
// publish streams it into the file rather than holding a copy of the
// whole (2.6 MB at 10,000 routes). A file being published (a reserver) is
// told the size first.
func (rd *Renderer) WriteTo(w io.Writer) (int64, error) {
	l := rd.layout()
	if r, ok := w.(reserver); ok {
		var n tally
		l.write(&n)
		r.reserve(int64(n))
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	l.write(bw)
	err := bw.Flush()
	return cw.n, err
}

// layout is the file of the last Update: each section's entries in the
// order they are written, and the servers transports already written.
type layout struct {
	es         [sections][]entry
	transports []byte
}

func (rd *Renderer) layout() layout {
	var l layout
	for sec := range l.es {
		// The sections' lists of the last write are reused: made anew
		// they were over a third of what a one-container change
		// allocated (BenchmarkChangePublish10k: 2.6 -> 1.7 MB).
		clear(rd.laid[sec]) // no texts of routes gone kept alive
		l.es[sec] = rd.laid[sec][:0]
	}
	transports := map[string]serversTransport{}
	seen := map[string]bool{} // middlewares several routes share
	plain := true
	for _, sl := range rd.order {
		plain = plain && isPlain(sl)
		for _, e := range sl.entries {
			if e.section == middlewares {
				if seen[e.name] {
					continue
				}
				seen[e.name] = true
			}
			l.es[e.section] = append(l.es[e.section], e)
		}
		if len(sl.transports) > 0 {
			maps.Copy(transports, sl.transports)
		}
	}
	if !plain { // checking that they are sorted was half of this
		for _, es := range l.es {
			sortEntries(es)
		}
	}
	if len(transports) > 0 {
		var buf bytes.Buffer
		writeTransports(&buf, transports)
		l.transports = buf.Bytes()
	}
	rd.laid = l.es
	return l
}

// write writes the file to w, which a tally only counts.
func (l *layout) write(w textWriter) {
	w.WriteString(header)
	// An empty section ("http: {}", "tcp: {}") is refused by Traefik as
	// standalone and would drop the whole directory; an empty document
	// loads as "no routes".
	if len(l.es[routers]) == 0 && len(l.es[tcpRouters]) == 0 {
		w.WriteString("{}\n")
	}
	if len(l.es[routers]) > 0 {
		w.WriteString("http:\n")
		writeSection(w, "  routers:\n", l.es[routers])
		writeSection(w, "  middlewares:\n", l.es[middlewares])
		writeSection(w, "  services:\n", l.es[services])
		w.Write(l.transports)
	}
	if len(l.es[tcpRouters]) > 0 {
		w.WriteString("tcp:\n")
		writeSection(w, "  routers:\n", l.es[tcpRouters])
		writeSection(w, "  services:\n", l.es[tcpServices])
	}
}

// textWriter is what layout.write writes to: a bufio.Writer, or a tally.
type textWriter interface {
	io.Writer
	io.StringWriter
}

// tally counts the bytes written to it, and keeps none.
type tally int64

func (t *tally) Write(p []byte) (int, error) { *t += tally(len(p)); return len(p), nil }

func (t *tally) WriteString(s string) (int, error) { *t += tally(len(s)); return len(s), nil }

// countingWriter counts what it passes on.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// reorder drops the slots this render did not use (there are unused of
// them) and inserts the added ones in place (a full sort only when many
// arrive at once, as on the first render).
func (rd *Renderer) reorder(added []*slot, unused int) {
	if unused > 0 {
		rd.order = slices.DeleteFunc(rd.order, func(sl *slot) bool {
			if sl.gen != rd.gen {
				delete(rd.slots, sl.key)
				return true
			}
			return false
		})
	}
	if len(added) > len(rd.order)/8 {
		rd.order = append(rd.order, added...)
		slices.SortFunc(rd.order, compareSlots)
		return
	}
	for _, sl := range added {
		i, _ := slices.BinarySearchFunc(rd.order, sl, compareSlots)
		rd.order = slices.Insert(rd.order, i, sl)
	}
}

// Routers lists the names of the HTTP routers of the last Update, as the
// file names them (Traefik's API adds "@file"), in no promised order. It
// is on the publish path with --traefik-api, so it copies only the
// names' headers: spelling Traefik's names and sorting them there took
// 0.75 ms of every publish at 10,000 routes; Undelivered spells them, on
// the checker's goroutine.
func (rd *Renderer) Routers() []string {
	names := make([]string, 0, len(rd.order))
	for _, sl := range rd.order {
		for _, e := range sl.entries {
			if e.section == routers {
				names = append(names, e.name)
			}
		}
	}
	return names
}

// isPlain tells whether sl's entries are one router and one service
// named as sl: slots are kept sorted by name, so such entries come out
// sorted without a look at their names.
func isPlain(sl *slot) bool {
	es := sl.entries
	return len(es) == 2 && es[0].section == routers && es[0].name == sl.name &&
		es[1].section == services && es[1].name == sl.name
}

// sortEntries sorts a section's entries by name; they usually are already.
func sortEntries(es []entry) {
	byName := func(a, b entry) int { return cmp.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(es, byName) {
		slices.SortFunc(es, byName)
	}
}

// writeSection writes a heading and its entries (nothing when there are
// none).
func writeSection(w textWriter, heading string, es []entry) {
	if len(es) == 0 {
		return
	}
	w.WriteString(heading)
	for _, e := range es {
		w.Write(e.text)
	}
}

// piece writes one route's entries: each into the shared buffer, then all
// of them copied out at once.
func (s *scratch) piece(r route.Route, opt Options) ([]entry, map[string]serversTransport) {
	s.buf.Reset()
	s.at = s.at[:0]
	var es []entry
	add := func(sec section, name string, write func(*bytes.Buffer)) {
		write(&s.buf)
		s.at = append(s.at, s.buf.Len())
		es = append(es, entry{section: sec, name: name})
	}
	var transports map[string]serversTransport
	if r.TCP {
		s.tc = tcpConfig{Routers: clearMap(s.tc.Routers), Services: clearMap(s.tc.Services)}
		addTCPRoute(&s.tc, r, opt)
		for name, rt := range s.tc.Routers {
			add(tcpRouters, name, func(b *bytes.Buffer) { writeTCPRouter(b, name, rt) })
		}
		for name, svc := range s.tc.Services {
			add(tcpServices, name, func(b *bytes.Buffer) { writeTCPService(b, name, svc) })
		}
	} else {
		s.h = httpConfig{Routers: clearMap(s.h.Routers), Middlewares: clearMap(s.h.Middlewares), Services: clearMap(s.h.Services)}
		addRoute(&s.h, r, opt)
		for name, rt := range s.h.Routers {
			add(routers, name, func(b *bytes.Buffer) { writeRouter(b, name, rt) })
		}
		for name, m := range s.h.Middlewares {
			add(middlewares, name, func(b *bytes.Buffer) { writeMiddleware(b, name, m) })
		}
		for name, svc := range s.h.Services {
			add(services, name, func(b *bytes.Buffer) { writeService(b, name, svc) })
		}
		transports = s.h.ServersTransports
	}
	text := bytes.Clone(s.buf.Bytes())
	from := 0
	for i, to := range s.at {
		es[i].text = text[from:to:to]
		from = to
	}
	return es, transports
}

// clearMap empties m for reuse, or makes it.
func clearMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	clear(m)
	return m
}
