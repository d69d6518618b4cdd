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
// claim_conflict. vs is not modified.
func resolveClaims(vs []Verdict) []Verdict {
	order := slices.Clone(vs)
	slices.SortFunc(order, func(a, b Verdict) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	type claim struct {
		edge  route.Edge
		strip bool
		proto string
		mws   string // middleware sets
		auth  string
		by    string
	}
	hosts := map[string]claim{}
	routes := map[[2]string]claim{}
	for i, v := range order {
		if !v.Routed() {
			continue
		}
		var kept []route.Backend
		var lost []Conflict
		for _, b := range v.Backends {
			hk := b.Host
			if b.TCP {
				hk += " tcp" // passthrough has an edge of its own (entrypoints only)
			}
			h, ok := hosts[hk]
			if !ok {
				h = claim{edge: b.Edge, by: v.Name}
				hosts[hk] = h
			}
			k := [2]string{hk, b.Path}
			r, ok := routes[k]
			if !ok {
				r = claim{strip: b.Strip, proto: b.Proto, mws: b.Middlewares, auth: b.Auth, by: v.Name}
				routes[k] = r
			}
			switch {
			case h.edge != b.Edge:
				lost = append(lost, Conflict{b, fmt.Sprintf("%s is already routed with %s by container %s, created earlier; this container asks for %s, so its route for %s is refused (replicas must carry the same edge labels)",
					b.Host, describeEdge(h.edge), h.by, describeEdge(b.Edge), b.Host+b.Path)})
			case r.strip != b.Strip:
				lost = append(lost, Conflict{b, fmt.Sprintf("%s%s is already routed by container %s, created earlier, with the prefix %s; this container asks for it %s, so its route is refused",
					b.Host, b.Path, r.by, stripped(r.strip), stripped(b.Strip))})
			case r.proto != b.Proto:
				lost = append(lost, Conflict{b, fmt.Sprintf("%s%s is already routed by container %s, created earlier, over %s; this container asks for %s, so its route is refused",
					b.Host, b.Path, r.by, protoName(r.proto), protoName(b.Proto))})
			case r.mws != b.Middlewares || r.auth != b.Auth:
				lost = append(lost, Conflict{b, fmt.Sprintf("%s%s is already routed by container %s, created earlier, with %s; this container asks for %s, so its route is refused (replicas must carry the same dockroute.middlewares and dockroute.auth labels)",
					b.Host, b.Path, r.by, describeGuards(r.mws, r.auth), describeGuards(b.Middlewares, b.Auth))})
			default:
				kept = append(kept, b)
			}
		}
		if len(lost) == 0 {
			continue
		}
		v.Backends, v.Conflicts = kept, lost
		if len(kept) == 0 {
			v.Code, v.Reason = "claim_conflict", lost[0].Reason
		}
		order[i] = v
	}
	return order
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
