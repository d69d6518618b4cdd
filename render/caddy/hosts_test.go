package caddy

import (
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/lookup"
)

// hostsOpt looks plain hosts up, with holding.
var hostsOpt = Options{ID: "dockroute", Listen: []string{":80"},
	Lookup: &Lookup{Resolver: "udp/127.0.0.1:1053", Refresh: 250 * time.Millisecond, Hosts: "127.0.0.1:9999"},
	Hold:   &Hold{Dial: "127.0.0.1:9494", Token: "tok", Limit: 30 * time.Second}}

// TestPlainHostsAreLookedUp: a host with a host and a port only is not
// written, whatever its servers, and is answered by DNS; a host with
// settings, a path, a wildcard over it or servers that are names is
// written as before; the host lookup route comes last.
func TestPlainHostsAreLookedUp(t *testing.T) {
	tbl := route.Table{Routes: []route.Route{
		{Host: "*.wild.test", Servers: []string{"172.17.0.9:80"}},
		{Host: "a.test", Servers: []string{"172.17.0.2:8080", "172.17.0.3:8080"}},
		{Host: "auth.test", Auth: "staff", Servers: []string{"172.17.0.4:80"}},
		{Host: "down.test", LastPort: "80"},
		{Host: "named.test", Servers: []string{"app:80"}},
		{Host: "p.test", Servers: []string{"172.17.0.5:80"}},
		{Host: "p.test", Path: "/api", Servers: []string{"172.17.0.6:80"}},
		{Host: "ports.test", Servers: []string{"172.17.0.7:80", "172.17.0.8:81"}},
		{Host: "sleepy.test", Idle: time.Minute, Servers: []string{"172.17.0.10:80"}},
		{Host: "x.wild.test", Servers: []string{"172.17.0.11:80"}},
	}}
	s := Render(tbl, hostsOpt)
	var written []string
	for _, r := range s.Routes {
		written = append(written, r.Hosts()...)
	}
	slices.Sort(written)
	written = slices.Compact(written)
	want := []string{"*.wild.test", "auth.test", "named.test", "p.test", "ports.test", "sleepy.test", "x.wild.test"}
	if !slices.Equal(written, want) {
		t.Errorf("written %v, want %v", written, want)
	}
	last := s.Routes[len(s.Routes)-1]
	if !last.looksUpHosts() || !strings.Contains(string(mustJSONBytes(t, last)), `"name":"{dockroute.host}.hosts.dockroute.internal."`) {
		t.Fatalf("the last route is not the host lookup: %s", mustJSON(t, last))
	}
	var m map[string]any
	if err := json.Unmarshal(last.Handle[0].Raw, &m); err != nil || m["mappings"].([]any)[0].(map[string]any)["input_regexp"] != `^(.+)\.$` {
		t.Errorf("the host name map: %v %s", err, last.Handle[0].Raw)
	}
	hosts, other := HostAnswers(tbl, hostsOpt)
	if got, _ := hosts("a.test"); len(got) != 2 || got[0] != netip.MustParseAddrPort("172.17.0.2:8080") {
		t.Errorf("a.test answered %v", got)
	}
	if got, _ := hosts("down.test"); len(got) != 1 || got[0].Addr() != nowhere || got[0].Port() != 80 {
		t.Errorf("a down host is answered %v, want nowhere (held)", got)
	}
	for _, r := range tbl.Routes {
		if _, ok := hosts(r.Host); ok != (r.Host == "a.test" || r.Host == "down.test") {
			t.Errorf("%s answered: %v", r.Host, ok)
		}
	}
	if _, ok := hosts("nobody.test"); ok || len(other) != 1 || other[0].String() != "127.0.0.1:9999" {
		t.Errorf("other hosts: %v, %v", ok, other)
	}
	// Per-route answers are for the written routes only.
	for name := range Answers(tbl, hostsOpt) {
		if name == mustTarget(t, tbl.Routes[1]).name {
			t.Errorf("a plain host's route is answered by route name too")
		}
	}
	if !s.Serves("a.test", "") || s.Serves("a.test", "/x") {
		t.Error("Serves does not count the host lookup route for a plain host")
	}
	// Scaling or replacing a plain host, or adding and removing one,
	// renders the same server: nothing to load.
	churned := route.Table{Routes: slices.Clone(tbl.Routes)}
	churned.Routes[1].Servers = []string{"172.17.0.20:8080"}
	churned.Routes = append(churned.Routes, route.Route{Host: "zz.test", Servers: []string{"172.17.0.21:80"}})
	churned.Routes = slices.DeleteFunc(churned.Routes, func(r route.Route) bool { return r.Host == "down.test" })
	if mustJSON(t, Render(churned, hostsOpt)) != mustJSON(t, s) {
		t.Error("plain host churn changed the server")
	}
	// Without a responder (not on loopback), a default host or holding
	// turned off for a down host, hosts are written.
	noHosts := hostsOpt
	noHosts.Lookup = &Lookup{Resolver: "udp/127.0.0.1:1053", Refresh: time.Second}
	if h, _ := HostAnswers(tbl, noHosts); h != nil || Render(tbl, noHosts).Routes[len(s.Routes)-1].looksUpHosts() {
		t.Error("hosts looked up without a responder")
	}
	noHold := hostsOpt
	noHold.Hold = nil
	if h, _ := HostAnswers(tbl, noHold); func() bool { _, ok := h("down.test"); return ok }() {
		t.Error("a down host without holding is looked up (it must answer 503 from its written route)")
	}
}

func mustTarget(t *testing.T, r route.Route) target {
	t.Helper()
	tg, ok := lookupTarget(r)
	if !ok {
		t.Fatalf("%s cannot be looked up", r.Host)
	}
	return tg
}

// TestNextAnswersWithHosts: answers made change by change, while routes
// move between plain and written, are those made from scratch.
func TestNextAnswersWithHosts(t *testing.T) {
	steps := [][]route.Route{
		{{Host: "a.test", Servers: []string{"172.17.0.2:80"}}, {Host: "b.test", Servers: []string{"172.17.0.3:80"}}},
		{{Host: "a.test", Auth: "staff", Servers: []string{"172.17.0.2:80"}}, {Host: "b.test", Servers: []string{"172.17.0.3:80"}}},
		{{Host: "a.test", Auth: "staff", Servers: []string{"172.17.0.4:80"}}, {Host: "b.test", Servers: []string{"172.17.0.5:80"}}},
		{{Host: "a.test", Servers: []string{"172.17.0.4:80"}}, {Host: "b.test", Middlewares: "hsts", Servers: []string{"172.17.0.5:80"}}},
		{{Host: "a.test", Servers: []string{"172.17.0.4:80"}}, {Host: "b.test", Servers: []string{"172.17.0.5:80"}}, {Host: "c.test", Servers: []string{"172.17.0.6:80"}}},
	}
	var a lookup.Answers
	var last route.Table
	for i, rs := range steps {
		tbl := route.Table{Routes: rs}
		a, last = NextAnswers(a, last, tbl, hostsOpt), tbl
		if want := Answers(tbl, hostsOpt); !maps.EqualFunc(a, want, slices.Equal) {
			t.Fatalf("step %d: %v, want %v", i, a, want)
		}
	}
}

func mustJSONBytes(t *testing.T, v any) []byte { return []byte(mustJSON(t, v)) }

// TestLookable: which routes' upstreams can be looked up, and what
// upstreamsOf makes of them.
func TestLookable(t *testing.T) {
	for _, c := range []struct {
		servers []string
		want    []string // upstreamsOf's addresses; nil: not lookable
	}{
		{[]string{"172.17.0.2:80"}, []string{"172.17.0.2"}},
		{[]string{"172.17.0.3:80", "172.17.0.2:80"}, []string{"172.17.0.2", "172.17.0.3"}},
		{[]string{"[fd00::2]:80", "172.17.0.2:80"}, []string{"172.17.0.2", "fd00::2"}},
		{[]string{"[::ffff:172.17.0.2]:80"}, []string{"172.17.0.2"}},
		{[]string{"172.17.0.2:80", "172.17.0.3:81"}, nil}, // two ports
		{[]string{"app:80"}, nil},                                  // a name
		{[]string{"[::ffff:172.17.0.2]:80", "172.17.0.2:80"}, nil}, // one address twice
		{[]string{"172.17.0.2:80", "172.17.0.2:80"}, nil},          // the same
		{[]string{"[fe80::1%eth0]:80"}, nil},                       // a zone
		{[]string{"172.17.0.2"}, nil},                              // no port
	} {
		r := route.Route{Host: "a.test", Servers: c.servers}
		tg, ok := upstreamsOf(r)
		var got []string
		for _, a := range tg.addrs {
			got = append(got, a.String())
		}
		if lookable(&r) != ok || ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("%v: lookable %v, upstreams %v %v; want %v", c.servers, lookable(&r), got, ok, c.want)
		}
		if r.TCP = true; lookable(&r) {
			t.Errorf("%v: a passthrough route is lookable", c.servers)
		}
	}
	down := route.Route{Host: "a.test"}
	if lookable(&down) {
		t.Error("a down route without its last port is lookable")
	}
	if down.LastPort = "80"; !lookable(&down) {
		t.Error("a down route with its last port is not lookable")
	}
}
