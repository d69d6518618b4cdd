package contract

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// Conflict is a route a container asked for and may not have.
type Conflict struct {
	Backend route.Backend
	Reason  string
}

// ResolveClaims settles what several containers ask of one host. Replicas
// share a host freely, but the settings that apply at the proxy's edge to
// a whole host (TLS, entrypoints, certificate resolver), and to a whole
// route (stripping its path prefix, its protocol, middlewares and auth),
// can have only one value. Who decides them is settleHost's rule. A
// container whose route asks for other settings has that route refused,
// with a reason naming the holder, so no container can, say, turn
// another's TLS host into plain HTTP. A container that loses every route
// is refused with code claim_conflict. vs is not modified; when nothing
// conflicts it is returned as it is.
//
// ten holds what each host was last settled to (nil: nothing is held, as
// for a one-off explain); it is read, never written: Changes keeps it.
//
// Only a host several containers share, or one whose settings are held,
// can hold a conflict (one container's routes always agree with each
// other), so the verdicts are grouped by host in one pass and only those
// hosts are settled: the cost follows the containers that share hosts,
// not the size of the fleet.
func ResolveClaims(vs []Verdict, ten *Tenure, now time.Time) []Verdict {
	byHost := map[string][]int{}
	for i, v := range vs {
		for _, b := range v.Backends {
			hk := HostKey(b)
			if idx := byHost[hk]; len(idx) == 0 || idx[len(idx)-1] != i {
				byHost[hk] = append(idx, i)
			}
		}
	}
	lost := map[int]map[int]string{} // verdict → its refused backends → why
	for hk, idx := range byHost {
		if prev := ten.get(hk); len(idx) > 1 || prev != nil {
			settleHost(vs, hk, idx, lost, prev, now, ten.holdFor())
		}
	}
	if len(lost) == 0 {
		return vs
	}
	out := slices.Clone(vs)
	for i, reasons := range lost {
		v := out[i]
		var kept []route.Backend
		var conflicts []Conflict
		for j, b := range v.Backends {
			if why, ok := reasons[j]; ok {
				conflicts = append(conflicts, Conflict{b, why})
			} else {
				kept = append(kept, b)
			}
		}
		v.Backends, v.Conflicts = kept, conflicts
		if len(kept) == 0 {
			v.Code, v.Reason = CodeClaimConflict, conflicts[0].Reason
		}
		out[i] = v
	}
	return out
}

// HostKey is what a backend claims: its host, or for a TLS passthrough
// its host's passthrough, which has an edge of its own (entrypoints only).
func HostKey(b route.Backend) string {
	if b.TCP {
		return b.Host + " tcp"
	}
	return b.Host
}

// claim is what was decided of a host (its edge) or of one of its routes
// (the rest), and by whom.
type claim struct {
	edge  route.Edge
	strip bool
	proto string
	mws   string // middleware sets
	auth  string
	by    string    // the name of the container that decided it
	left  time.Time // when the last container serving it went; zero while one does
}

// term is what a host was last settled to: its edge and each route's
// settings. A part whose containers all went is kept for the hold
// (--unavailable-grace), so that a newcomer cannot lower a host's guards
// in the gap of a redeploy.
type term struct {
	host   *claim
	routes pathClaims
}

// pathClaims are a host's routes' claims, by path: a slice, as a host
// nearly always has one route (a map of one held room for eight, and
// 10,000 hosts' terms took 9 MB).
type pathClaims []pathClaim

type pathClaim struct {
	path string
	c    claim
}

func (pc pathClaims) get(path string) (claim, bool) {
	for _, p := range pc {
		if p.path == path {
			return p.c, true
		}
	}
	return claim{}, false
}

// pick is one backend of one claimant: indexes into vs and its Backends.
type pick struct{ i, j int }

// settling is one host being settled.
type settling struct {
	hold  time.Duration
	vs    []Verdict
	picks []pick // the host's backends, claimants in order
	next  term
	now   time.Time
}

func (s *settling) b(p pick) route.Backend { return s.vs[p.i].Backends[p.j] }
func (s *settling) owner(p pick) string    { return s.vs[p.i].Name }

// settleHost settles one host key among the verdicts idx (indexes into
// vs), adding every refused backend to lost with the reason, and returns
// what the host is settled to now (nil: nothing to remember).
//
// The rule, so that no claim is won by timing or by a newcomer:
//   - What prev holds stays: a container asking for other settings is
//     refused while any container is served with them, and for hold after
//     the last one went. Only a container with the holder's name (the
//     same app redeployed: compose and `docker run --name` keep names,
//     and no two running containers share one) may change them at once.
//   - A host or route no one holds goes to the claimant that started
//     first (then the lowest ID, so the choice is stable). A created
//     container that never ran claims nothing.
//   - A route under a path another container serves with middlewares or
//     auth must carry the same ones: a sub-path cannot open a hole in a
//     protected host.
func settleHost(vs []Verdict, hk string, idx []int, lost map[int]map[int]string, prev *term, now time.Time, hold time.Duration) *term {
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(vs[a].Started.Compare(vs[b].Started), cmp.Compare(vs[a].ID, vs[b].ID))
	})
	s := &settling{vs: vs, now: now, hold: hold}
	for _, i := range idx {
		for j, b := range vs[i].Backends {
			if HostKey(b) == hk {
				s.picks = append(s.picks, pick{i, j})
			}
		}
	}
	held := prev.live(now, hold)
	s.next.host = s.settleEdge(held.host)
	for _, path := range s.paths(held.routes) {
		old, isHeld := held.routes.get(path)
		if c, ok := s.settleRoute(path, old, isHeld); ok {
			s.next.routes = append(s.next.routes, pathClaim{path, c})
		}
	}
	for _, p := range s.picks {
		if why := s.refusal(p); why != "" {
			if lost[p.i] == nil {
				lost[p.i] = map[int]string{}
			}
			lost[p.i][p.j] = why
		}
	}
	if s.next.host == nil {
		return nil
	}
	next := s.next // not &s.next, which would keep the whole settling
	return &next
}

// settleEdge decides the host's edge: the holder's successor's, else the
// held one (vacant when no claimant is served with it), else the first
// claimant's.
func (s *settling) settleEdge(held *claim) *claim {
	if held != nil {
		c := *held
		for _, p := range s.picks {
			if s.owner(p) == held.by {
				return &claim{edge: s.b(p).Edge, by: held.by}
			}
		}
		for _, p := range s.picks {
			if s.b(p).Edge == held.edge {
				c.by, c.left = s.owner(p), time.Time{}
				return &c
			}
		}
		if s.hold > 0 {
			c.left = cmp.Or(c.left, s.now)
			return &c
		}
	}
	if len(s.picks) == 0 {
		return nil
	}
	return &claim{edge: s.b(s.picks[0]).Edge, by: s.owner(s.picks[0])}
}

// paths lists every path claimed or held, shortest first, so that a
// route's enclosing routes are settled before it.
func (s *settling) paths(held pathClaims) []string {
	var out []string
	for _, p := range s.picks {
		if path := s.b(p).Path; !slices.Contains(out, path) {
			out = append(out, path)
		}
	}
	for _, pc := range held {
		if !slices.Contains(out, pc.path) {
			out = append(out, pc.path)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b)) })
	return out
}

// settleRoute decides one route's settings, as settleEdge does, among the
// claimants on the host's edge whose guards its enclosing route allows.
func (s *settling) settleRoute(path string, old claim, isHeld bool) (claim, bool) {
	fits := func(p pick) bool {
		b := s.b(p)
		return b.Path == path && b.Edge == s.next.host.edge && s.weakens(p) == nil
	}
	if isHeld {
		for _, p := range s.picks {
			if s.owner(p) == old.by && fits(p) {
				return routeClaim(s.b(p), old.by), true
			}
		}
		for _, p := range s.picks {
			if fits(p) && sameRoute(s.b(p), old) {
				old.by, old.left = s.owner(p), time.Time{}
				return old, true
			}
		}
		if s.hold > 0 {
			old.left = cmp.Or(old.left, s.now)
			return old, true
		}
	}
	for _, p := range s.picks {
		if fits(p) {
			return routeClaim(s.b(p), s.owner(p)), true
		}
	}
	return claim{}, false
}

func routeClaim(b route.Backend, by string) claim {
	return claim{strip: b.Strip, proto: b.Proto, mws: b.Middlewares, auth: b.Auth, by: by}
}

func sameRoute(b route.Backend, c claim) bool {
	return b.Strip == c.strip && b.Proto == c.proto && b.Middlewares == c.mws && b.Auth == c.auth
}

// weakens returns the route settled so far that p's route lies under and
// would open a hole in: one served by another container with middlewares
// or auth that p's route does not carry (nil when there is none). Paths
// are prefixes of whole segments, as the proxies match them.
func (s *settling) weakens(p pick) *enclosing {
	b := s.b(p)
	best := -1
	var in claim
	var inPath string
	for _, pc := range s.next.routes {
		path, c := pc.path, pc.c
		if path != b.Path && route.Within(b.Path, path) && len(path) > best {
			best, in, inPath = len(path), c, path
		}
	}
	if best < 0 || in.mws == "" && in.auth == "" || in.mws == b.Middlewares && in.auth == b.Auth || in.by == s.owner(p) {
		return nil
	}
	return &enclosing{path: inPath, c: in}
}

type enclosing struct {
	path string
	c    claim
}

// refusal says why p's route is refused ("" when it is not).
func (s *settling) refusal(p pick) string {
	hold := s.hold
	b := s.b(p)
	host := s.next.host
	if b.Edge != host.edge {
		return fmt.Sprintf("%s is %s with %s by %s; this container asks for %s, so its route for %s is refused (replicas must carry the same edge labels)",
			b.Host, routedBy(*host), describeEdge(host.edge), holder(*host, hold), describeEdge(b.Edge), b.Host+b.Path)
	}
	r, ok := s.next.routes.get(b.Path)
	if !ok || !sameRoute(b, r) {
		if in := s.weakens(p); in != nil {
			return fmt.Sprintf("%s%s lies under %s%s, which is %s with %s by %s; a route under it must carry the same middlewares and auth, and this container asks for %s, so its route is refused",
				b.Host, b.Path, b.Host, in.path, routedBy(in.c), describeGuards(in.c.mws, in.c.auth), holder(in.c, hold), describeGuards(b.Middlewares, b.Auth))
		}
	}
	switch {
	case !ok || sameRoute(b, r):
		return ""
	case r.strip != b.Strip:
		return fmt.Sprintf("%s%s is %s with the prefix %s by %s; this container asks for it %s, so its route is refused",
			b.Host, b.Path, routedBy(r), stripped(r.strip), holder(r, hold), stripped(b.Strip))
	case r.proto != b.Proto:
		return fmt.Sprintf("%s%s is %s over %s by %s; this container asks for %s, so its route is refused",
			b.Host, b.Path, routedBy(r), protoName(r.proto), holder(r, hold), protoName(b.Proto))
	default:
		return fmt.Sprintf("%s%s is %s with %s by %s; this container asks for %s, so its route is refused (replicas must carry the same dockroute.middlewares and dockroute.auth labels)",
			b.Host, b.Path, routedBy(r), describeGuards(r.mws, r.auth), holder(r, hold), describeGuards(b.Middlewares, b.Auth))
	}
}

func routedBy(c claim) string {
	if c.left.IsZero() {
		return "already routed"
	}
	return "held"
}

// holder names who decided c, and for a held claim until when it holds.
func holder(c claim, hold time.Duration) string {
	if c.left.IsZero() {
		return "container " + c.by + ", which holds it"
	}
	return fmt.Sprintf("container %s, which left at %s: a host keeps its settings for --unavailable-grace after its last container goes (until %s), unless a container of the same name replaces it",
		c.by, c.left.UTC().Format(time.TimeOnly), c.left.Add(hold).UTC().Format(time.TimeOnly))
}

// live is t without the parts whose hold ran out (the zero term when
// nothing is left).
func (t *term) live(now time.Time, hold time.Duration) term {
	var out term
	if t == nil {
		return out
	}
	gone := func(c claim) bool { return !c.left.IsZero() && !now.Before(c.left.Add(hold)) }
	if t.host != nil && !gone(*t.host) {
		out.host = t.host
	}
	for _, pc := range t.routes {
		if !gone(pc.c) && out.host != nil {
			out.routes = append(out.routes, pc)
		}
	}
	return out
}

// due is when the first of t's vacant parts stops being held (zero when
// none is vacant).
func (t *term) due(hold time.Duration) time.Time {
	var first time.Time
	take := func(c claim) {
		if at := c.left.Add(hold); !c.left.IsZero() && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if t.host != nil {
		take(*t.host)
	}
	for _, pc := range t.routes {
		take(pc.c)
	}
	return first
}

func describeEdge(e route.Edge) string {
	var parts []string
	switch e.TLS {
	case route.TLSOn:
		parts = append(parts, "TLS on")
	case route.TLSOff:
		parts = append(parts, "TLS off")
	}
	if e.EntryPoints != "" {
		parts = append(parts, "entrypoints "+e.EntryPoints)
	}
	if e.CertResolver != "" {
		parts = append(parts, "certificate resolver "+e.CertResolver)
	}
	if len(parts) == 0 {
		return "dockroute's default edge settings (no dockroute.tls, dockroute.entrypoints or dockroute.certresolver labels)"
	}
	return strings.Join(parts, ", ")
}

// describeGuards names a route's middleware sets and auth group.
func describeGuards(mws, auth string) string {
	var parts []string
	if mws != "" {
		parts = append(parts, "middlewares "+mws)
	}
	if auth != "" {
		parts = append(parts, "auth group "+auth)
	}
	if len(parts) == 0 {
		return "no middlewares and no auth"
	}
	return strings.Join(parts, " and ")
}

func protoName(p string) string {
	if p == "" {
		return "http"
	}
	return p
}

func stripped(strip bool) string {
	if strip {
		return "stripped"
	}
	return "kept"
}
