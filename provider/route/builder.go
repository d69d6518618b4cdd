package route

import (
	"cmp"
	"slices"
)

// Builder keeps a table up to date as backends come and go, by owner (a
// container, a swarm service): Set replaces what one owner contributes,
// and Table rebuilds only the routes whose backends changed, so a change
// costs what it touches, not a build of the whole fleet. Its table is
// always Build's for the union of every owner's backends, except that a
// host and path the overriding backends (the routes file's, Override)
// name is theirs alone, as static.Merge has it: the table is a function of
// the backends as they are now, never of the order they came in.
//
// The tables it returns are never modified afterwards, so a caller may
// keep one (to compare with the next) while the Builder moves on. It is
// not safe for concurrent use.
type Builder struct {
	owned map[string][]Backend // each owner's backends, as last set
	// owners holds, for each route, the owners with a backend on it
	// (overrideOwner for the overriding ones); a route usually has one.
	owners map[key][]string
	// bigOwners indexes by route the backends of an owner with many (the
	// routes file's): building each of its 10,000 routes by a walk of
	// them all took 10 s.
	bigOwners map[string]map[key][]int
	dirty     map[key]struct{}
	routes    []Route // the last table, sorted as Build sorts
	// scratch collects one route's backends while it is rebuilt.
	scratch []Backend
}

// overrideOwner owns the overriding backends: no owner Set is given is
// empty (a container or service ID never is).
const overrideOwner = ""

// NewBuilder returns a Builder of the empty table.
func NewBuilder() *Builder {
	return &Builder{owned: map[string][]Backend{}, owners: map[key][]string{}, bigOwners: map[string]map[key][]int{}, dirty: map[key]struct{}{}}
}

// Set makes bs the backends of owner (none: nil). The Builder keeps bs,
// which the caller must not modify afterwards (verdicts' backends never
// are): a copy of every container's backends was 1.8 MB at 10,000.
// Setting what the owner already has costs a comparison.
func (b *Builder) Set(owner string, bs []Backend) {
	if owner == overrideOwner {
		panic("route.Builder: an owner must have a name")
	}
	b.set(owner, bs)
}

// Override makes bs the overriding backends: on every host and path they
// name (HTTP routes only), the other owners' backends are left out.
func (b *Builder) Override(bs []Backend) { b.set(overrideOwner, bs) }

func (b *Builder) set(owner string, bs []Backend) {
	old := b.owned[owner]
	if len(old) == len(bs) && (len(bs) == 0 || &old[0] == &bs[0]) || slices.Equal(old, bs) {
		return // the same (the routes file's, given on every publish), or equal
	}
	for _, be := range old {
		k := keyOf(be)
		b.owners[k] = remove(b.owners[k], owner)
		b.dirty[k] = struct{}{}
	}
	if len(bs) == 0 {
		delete(b.owned, owner)
	} else {
		b.owned[owner] = bs
	}
	delete(b.bigOwners, owner)
	if len(bs) > bigOwner {
		idx := map[key][]int{}
		for i, be := range bs {
			idx[keyOf(be)] = append(idx[keyOf(be)], i)
		}
		b.bigOwners[owner] = idx
	}
	for _, be := range bs {
		k := keyOf(be)
		if !slices.Contains(b.owners[k], owner) {
			b.owners[k] = append(b.owners[k], owner)
		}
		b.dirty[k] = struct{}{}
	}
}

// bigOwner is how many backends an owner has before they are indexed.
const bigOwner = 16

func keyOf(be Backend) key { return key{be.Host, be.Path, be.TCP} }

// remove deletes owner from owners (order does not matter), nil when
// none is left.
func remove(owners []string, owner string) []string {
	if i := slices.Index(owners, owner); i >= 0 {
		owners[i] = owners[len(owners)-1]
		owners = owners[:len(owners)-1]
	}
	if len(owners) == 0 {
		return nil
	}
	return owners
}

// Table returns the table for the backends set so far. Unchanged since
// the last call, it is the same table; otherwise the routes that changed
// are rebuilt and merged into a new one in a single pass.
func (b *Builder) Table() Table {
	if len(b.dirty) == 0 {
		return Table{Routes: b.routes}
	}
	changed := make([]Route, 0, len(b.dirty)) // rebuilt routes, and removed ones without servers
	gone := make(map[key]bool)
	for k := range b.dirty {
		owners := b.owners[k]
		if len(owners) == 0 {
			delete(b.owners, k)
			gone[k] = true
			changed = append(changed, Route{Host: k.host, Path: k.path, TCP: k.tcp})
			continue
		}
		changed = append(changed, b.build(k, owners))
	}
	clear(b.dirty)
	slices.SortFunc(changed, func(x, y Route) int { return compareRoutes(&x, &y) })
	if len(b.routes) == 0 && len(gone) == 0 {
		b.routes = changed // the first table: nothing to merge with
	} else {
		b.routes = merge(b.routes, changed, gone)
	}
	return Table{Routes: b.routes}
}

// merge returns old (sorted) with the routes of changed (sorted, keys
// unique) put in place: replacing the route of the same key, inserted
// where there is none, or, for keys in gone, removed.
func merge(old, changed []Route, gone map[key]bool) []Route {
	out := make([]Route, 0, len(old)+len(changed)-len(gone))
	i := 0
	for _, c := range changed {
		// The unchanged run before c is copied at once.
		j, _ := slices.BinarySearchFunc(old[i:], c, func(o, c Route) int { return compareRoutes(&o, &c) })
		out = append(out, old[i:i+j]...)
		i += j
		if i < len(old) && compareRoutes(&old[i], &c) == 0 {
			i++ // replaced (or removed)
		}
		if !gone[key{c.Host, c.Path, c.TCP}] {
			out = append(out, c)
		}
	}
	return append(out, old[i:]...)
}

// build makes the route k from its owners' backends, as Build would: the
// backend whose name (then server) sorts first decides its settings, and
// its servers are sorted and unique. The overriding backends, when any
// name an HTTP route, are its only ones.
func (b *Builder) build(k key, owners []string) Route {
	override := !k.tcp && slices.Contains(owners, overrideOwner)
	bs := b.scratch[:0]
	for _, o := range owners {
		if override && o != overrideOwner {
			continue
		}
		owned := b.owned[o]
		if idx, ok := b.bigOwners[o]; ok {
			for _, i := range idx[k] {
				bs = append(bs, owned[i])
			}
			continue
		}
		for _, be := range owned {
			if keyOf(be) == k {
				bs = append(bs, be)
			}
		}
	}
	d := bs[0]
	servers := make([]string, len(bs))
	for i, be := range bs {
		if cmp.Or(cmp.Compare(be.Name, d.Name), cmp.Compare(be.Server, d.Server)) < 0 {
			d = be
		}
		servers[i] = be.Server
	}
	b.scratch = bs[:0]
	slices.Sort(servers)
	return Route{Host: d.Host, Path: d.Path, Strip: d.Strip, Edge: d.Edge, Proto: d.Proto,
		Middlewares: d.Middlewares, Auth: d.Auth, TCP: d.TCP, Idle: d.Idle, Servers: slices.Compact(servers)}
}
