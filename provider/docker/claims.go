package docker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
)

// Conflict is a route a container asked for and may not have.
type Conflict struct {
	Backend route.Backend
	Reason  string
}

// resolveClaims settles what several containers ask of one host. Replicas
// share a host freely, but the settings that apply at the proxy's edge to
// a whole host (TLS, entrypoints, certificate resolver), and to a whole
// route (stripping its path prefix, its protocol, middlewares and auth),
// can have only one value. The host's
// first claimant decides them: the container created first (then by ID,
// so the choice is stable). A later container asking for other settings
// on that host has those routes refused, with a reason naming the
// claimant, so no container can, say, turn another's TLS host into plain
// HTTP. A container that loses every route is refused with code
// claim_conflict. vs is not modified; when nothing conflicts it is
// returned as it is.
//
// Only a host several containers share can hold a conflict (one
// container's routes always agree with each other), so the verdicts are
// grouped by host in one pass and only shared hosts are settled, in
// creation order: the cost follows the containers that share hosts, not
// the size of the fleet.
func resolveClaims(vs []Verdict) []Verdict {
	byHost := map[string][]int{}
	for i, v := range vs {
		for _, b := range v.Backends {
			hk := hostKey(b)
			if idx := byHost[hk]; len(idx) == 0 || idx[len(idx)-1] != i {
				byHost[hk] = append(idx, i)
			}
		}
	}
	lost := map[int]map[int]string{} // verdict → its refused backends → why
	for hk, idx := range byHost {
		if len(idx) > 1 {
			settleHost(vs, hk, idx, lost)
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
			v.Code, v.Reason = "claim_conflict", conflicts[0].Reason
		}
		out[i] = v
	}
	return out
}

// hostKey is what a backend claims: its host, or for a TLS passthrough
// its host's passthrough, which has an edge of its own (entrypoints only).
func hostKey(b route.Backend) string {
	if b.TCP {
		return b.Host + " tcp"
	}
	return b.Host
}

// settleHost settles one shared host among the verdicts idx (indexes into
// vs): its first claimant by creation (then ID) decides the host's edge,
// and each route's first claimant the route's settings; every later
// backend that asks otherwise is added to lost with the reason.
func settleHost(vs []Verdict, hk string, idx []int, lost map[int]map[int]string) {
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(vs[a].Created.Compare(vs[b].Created), cmp.Compare(vs[a].ID, vs[b].ID))
	})
	type claim struct {
		edge  route.Edge
		strip bool
		proto string
		mws   string // middleware sets
		auth  string
		by    string
	}
	var host *claim
	routes := map[string]claim{} // by path
	for _, i := range idx {
		v := vs[i]
		for j, b := range v.Backends {
			if hostKey(b) != hk {
				continue
			}
			if host == nil {
				host = &claim{edge: b.Edge, by: v.Name}
			}
			r, ok := routes[b.Path]
			if !ok {
				r = claim{strip: b.Strip, proto: b.Proto, mws: b.Middlewares, auth: b.Auth, by: v.Name}
				routes[b.Path] = r
			}
			var why string
			switch {
			case host.edge != b.Edge:
				why = fmt.Sprintf("%s is already routed with %s by container %s, created earlier; this container asks for %s, so its route for %s is refused (replicas must carry the same edge labels)",
					b.Host, describeEdge(host.edge), host.by, describeEdge(b.Edge), b.Host+b.Path)
			case r.strip != b.Strip:
				why = fmt.Sprintf("%s%s is already routed by container %s, created earlier, with the prefix %s; this container asks for it %s, so its route is refused",
					b.Host, b.Path, r.by, stripped(r.strip), stripped(b.Strip))
			case r.proto != b.Proto:
				why = fmt.Sprintf("%s%s is already routed by container %s, created earlier, over %s; this container asks for %s, so its route is refused",
					b.Host, b.Path, r.by, protoName(r.proto), protoName(b.Proto))
			case r.mws != b.Middlewares || r.auth != b.Auth:
				why = fmt.Sprintf("%s%s is already routed by container %s, created earlier, with %s; this container asks for %s, so its route is refused (replicas must carry the same dockroute.middlewares and dockroute.auth labels)",
					b.Host, b.Path, r.by, describeGuards(r.mws, r.auth), describeGuards(b.Middlewares, b.Auth))
			default:
				continue
			}
			if lost[i] == nil {
				lost[i] = map[int]string{}
			}
			lost[i][j] = why
		}
	}
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
