package contract

import (
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

func claimant(id, name string, created int, edge route.Edge, targets ...route.Backend) Verdict {
	v := Verdict{ID: id, Name: name, Started: time.Unix(int64(created), 0), OptedIn: true}
	for _, b := range targets {
		b.Name, b.Edge = name, edge
		b.Server = id + ":80"
		v.Backends = append(v.Backends, b)
	}
	return v
}

func TestResolveClaims(t *testing.T) {
	tlsOn, tlsOff := route.Edge{TLS: route.TLSOn}, route.Edge{TLS: route.TLSOff}
	host := func(h string) route.Backend { return route.Backend{Host: h} }
	// "aaa" sorts first but was created last: creation time decides.
	first := claimant("1", "zzz-first", 100, tlsOn, host("shop.test"), route.Backend{Host: "shop.test", Path: "/api", Strip: true})
	replica := claimant("2", "mmm-replica", 200, tlsOn, host("shop.test"))
	hijack := claimant("3", "aaa-late", 300, tlsOff, host("shop.test"), host("own.test"))
	strip := claimant("4", "bbb-strip", 400, tlsOn, route.Backend{Host: "shop.test", Path: "/api"})
	got := map[string]Verdict{}
	for _, v := range ResolveClaims([]Verdict{hijack, strip, replica, first}, nil, time.Time{}) {
		got[v.ID] = v
	}
	if v := got["1"]; len(v.Backends) != 2 || len(v.Conflicts) != 0 {
		t.Errorf("the first claimant lost routes: %+v", v)
	}
	if v := got["2"]; len(v.Backends) != 1 || len(v.Conflicts) != 0 {
		t.Errorf("a replica with the same settings was refused: %+v", v)
	}
	v := got["3"]
	if len(v.Backends) != 1 || v.Backends[0].Host != "own.test" || len(v.Conflicts) != 1 || v.Code == "claim_conflict" {
		t.Fatalf("the late claimant: %+v; want own.test kept and shop.test refused", v)
	}
	for _, want := range []string{"shop.test is already routed with TLS on by container zzz-first, which holds it", "asks for TLS off"} {
		if !strings.Contains(v.Conflicts[0].Reason, want) {
			t.Errorf("reason %q lacks %q", v.Conflicts[0].Reason, want)
		}
	}
	v = got["4"]
	if len(v.Backends) != 0 || v.Code != "claim_conflict" || !strings.Contains(v.Reason, "with the prefix stripped by container zzz-first, which holds it; this container asks for it kept") {
		t.Errorf("a route disagreeing on strip: %+v", v)
	}
	guarded := claimant("5", "ccc-auth", 500, tlsOn, route.Backend{Host: "shop.test", Path: "/api", Strip: true, Auth: "staff"})
	for _, v := range ResolveClaims([]Verdict{first, guarded}, nil, time.Time{}) {
		if v.ID == "5" && (v.Routed() || !strings.Contains(v.Reason, "with no middlewares and no auth by container zzz-first, which holds it; this container asks for auth group staff")) {
			t.Errorf("a replica adding auth to a route: %+v", v)
		}
	}
	// Equal creation times: the ID decides, whatever the input order.
	a, b := claimant("a", "x", 1, tlsOn, host("h.test")), claimant("b", "y", 1, tlsOff, host("h.test"))
	for _, in := range [][]Verdict{{a, b}, {b, a}} {
		for _, v := range ResolveClaims(in, nil, time.Time{}) {
			if (v.ID == "a") != v.Routed() {
				t.Fatalf("tie not broken by ID: %+v", v)
			}
		}
	}
}
