package caddy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/caddy/lookup"
)

func TestLookupTarget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []string
		ok      bool
		port    string
		addrs   []string
	}{
		{"replicas", []string{"172.17.0.3:8080", "172.17.0.2:8080"}, true, "8080", []string{"172.17.0.2", "172.17.0.3"}},
		{"ipv6", []string{"[fd00::2]:80"}, true, "80", []string{"fd00::2"}},
		{"mixed ports", []string{"172.17.0.2:8080", "172.17.0.3:9090"}, false, "", nil},
		{"one address twice", []string{"172.17.0.2:8080", "[::ffff:172.17.0.2]:8080"}, false, "", nil},
		{"host name", []string{"api.internal:8080"}, false, "", nil},
		{"zone", []string{"[fe80::1%eth0]:80"}, false, "", nil},
		{"no servers", nil, false, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, ok := lookupTarget(route.Route{Host: "a.test", Servers: tc.servers})
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var addrs []string
			for _, a := range tg.addrs {
				addrs = append(addrs, a.String())
			}
			if tg.port != tc.port || !slices.Equal(addrs, tc.addrs) {
				t.Fatalf("got port %q addrs %v", tg.port, addrs)
			}
		})
	}
	// The name follows host, path and port, and nothing else.
	name := func(host, path string, servers ...string) string {
		tg, _ := lookupTarget(route.Route{Host: host, Path: path, Servers: servers})
		return tg.name
	}
	a := name("a.test", "", "10.0.0.1:80")
	if a != name("a.test", "", "10.0.0.2:80", "10.0.0.3:80") {
		t.Fatal("replicas changed the name")
	}
	for _, other := range []string{name("b.test", "", "10.0.0.1:80"), name("a.test", "/api", "10.0.0.1:80"), name("a.test", "", "10.0.0.1:81")} {
		if other == a {
			t.Fatal("two routes share a name")
		}
	}
}

func TestRenderGoldenWithLookups(t *testing.T) {
	tbl := route.Table{Routes: []route.Route{
		{Host: "a.example.com", Servers: []string{"172.17.0.2:8080", "172.17.0.3:8080"}},
		{Host: "mixed.example.com", Servers: []string{"172.17.0.4:80", "172.17.0.5:81"}},
	}}
	opt := Options{ID: "dockroute", Listen: []string{":80"}, Lookup: &Lookup{Resolver: "udp/127.0.0.1:5353", Refresh: 250 * time.Millisecond}}
	got, _ := json.MarshalIndent(Render(tbl, opt), "", "  ")
	checkGolden(t, "testdata/server-lookups.golden.json", got)
}

// listenAt serves name's answers on addr (a loopback IP and port).
func listenAt(t *testing.T, addr, name string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", name, r.Host) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestLookupChangesNeedNoLoad runs the lookup server beside a real Caddy
// (both versions): replicas coming and going change what Caddy routes to
// without one config load; a new host loads once, and that load also
// brings the fallback upstreams up to date, which Caddy uses when
// dockroute stops answering.
func TestLookupChangesNeedNoLoad(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv := lookup.New(slog.Default())
		serve, dnsAddr, err := srv.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan struct{})
		go func() { serve(ctx); close(served) }()

		// Two "replicas" on one port, as containers are: 127.0.0.2 and .3.
		port := strconv.Itoa(caddytest.FreePort(t))
		a, b := "127.0.0.2:"+port, "127.0.0.3:"+port
		listenAt(t, a, "a")
		listenAt(t, b, "b")

		c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
		p, _ := newPublisher(t, c, caddytest.FreePort(t))
		opt := p.Options()
		const refresh = 100 * time.Millisecond
		opt.Lookup = &Lookup{Resolver: "udp/" + dnsAddr, Refresh: refresh}
		p.SetOptions(opt)
		via := opt.Listen[0]
		publish := func(routes map[string][]string) {
			t.Helper()
			tbl := table(routes)
			srv.Set(Answers(tbl, Options{}))
			if err := p.Publish(ctx, tbl); err != nil {
				t.Fatal(err)
			}
		}
		// untilHost polls until host is answered by exactly want.
		untilHost := func(host string, want ...string) {
			t.Helper()
			deadline := time.Now().Add(5 * time.Second)
			for {
				got := answers(t, via, host, 20)
				var who []string
				for k := range got {
					who = append(who, k)
				}
				slices.Sort(who)
				if slices.Equal(who, want) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s answered %v, want %v", host, got, want)
				}
				time.Sleep(refresh / 2)
			}
		}
		until := func(want ...string) { t.Helper(); untilHost("app.test", want...) }

		publish(map[string][]string{"app.test": {a}})
		until("200 a")
		loads := c.Loads()
		asked := strings.Count(c.Log(), "received request") // admin API requests
		publish(map[string][]string{"app.test": {a, b}})
		until("200 a", "200 b")
		publish(map[string][]string{"app.test": {b}})
		until("200 b")
		if got := c.Loads(); got != loads {
			t.Fatalf("replica changes loaded caddy's config %d times, want 0", got-loads)
		}
		// Nor did they ask Caddy anything: what it runs is known.
		if got := strings.Count(c.Log(), "received request") - asked; got != 0 {
			t.Fatalf("replica changes made %d admin requests, want 0", got)
		}

		// Caddy restarted with its own config alone: Check finds the
		// server gone, and the next publish of the same table restores it.
		c.Restart(t, caddytest.UserConfig(caddytest.FreePort(t)))
		if f, err := p.Check(ctx); f.InSync || err != nil {
			t.Fatalf("Check after Caddy lost the server: %v %v, want false", f.InSync, err)
		}
		publish(map[string][]string{"app.test": {b}})
		until("200 b")
		loads = c.Loads()
		if srv.Queries.Load() == 0 {
			t.Fatal("caddy never asked the lookup server")
		}

		// A new host is a config change: one load, with every fallback
		// list as it is now.
		publish(map[string][]string{"app.test": {b}, "new.test": {a}})
		for deadline := time.Now().Add(2 * time.Second); c.Loads() == loads && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond) // Caddy logs the autosave just after it answers
		}
		if got := c.Loads(); got != loads+1 {
			t.Fatalf("a new host: %d loads, want 1", got-loads)
		}
		// Caddy has answered the load, but its stop of the outgoing
		// servers waits only for their shutdowns to start (2.11.9's
		// caddyhttp App.stop says so): for a moment a request on a
		// connection one of them holds is answered by the old config
		// (seen in CI on 2.6.2: new.test got the old server's 404). So
		// new.test is asked until it is served, within 5 s.
		untilHost("new.test", "200 a")

		// dockroute gone: Caddy falls back to the upstreams of that load.
		cancel()
		<-served
		time.Sleep(2 * refresh)
		until("200 b")
	})
}

func TestAnswersFollowTheTable(t *testing.T) {
	tbl := route.Table{Routes: []route.Route{
		{Host: "a.test", Servers: []string{"10.0.0.2:80", "10.0.0.1:80"}},
		{Host: "files.test", Servers: []string{"files.internal:80"}},
		{Host: "down.test"},
	}}
	got := Answers(tbl, Options{})
	tg, _ := lookupTarget(tbl.Routes[0])
	if len(got) != 1 || !slices.Equal(got[tg.name], []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}) {
		t.Fatalf("answers %v", got)
	}
}

// randomTables makes n tables over a few hosts and paths, each route in
// one of several forms: replicas at other addresses (what lookups carry),
// another port, a host name for a server, no servers, another Strip or
// protocol, a TLS passthrough route, the default host (which Caddy's
// server has twice: for its host, and for any host); consecutive
// tables differ in one to three routes.
func randomTables(n int) []route.Table {
	rng := rand.New(rand.NewPCG(7, 13))
	servers := [][]string{
		{"10.0.0.1:80"}, {"10.0.0.2:80"}, {"10.0.0.1:80", "10.0.0.2:80"}, {"[fd00::1]:80", "10.0.0.3:80"},
		{"10.0.0.1:81"}, {"app.internal:80"}, {"app2.internal:80"}, {"10.0.0.1:80", "10.0.0.2:81"}, {"10.0.0.1:80", "10.0.0.3:81"}, nil,
	}
	type key struct{ host, path string }
	var keys []key
	for _, h := range []string{"a.test", "b.test", "default.test", "t.test"} {
		for _, p := range []string{"", "/api"} {
			keys = append(keys, key{h, p})
		}
	}
	cur := map[key]route.Route{}
	var out []route.Table
	for range n {
		for range 1 + rng.IntN(3) {
			k := keys[rng.IntN(len(keys))]
			if _, ok := cur[k]; ok && rng.IntN(4) == 0 {
				delete(cur, k)
				continue
			}
			r := route.Route{Host: k.host, Path: k.path, Servers: servers[rng.IntN(len(servers))]}
			switch rng.IntN(8) {
			case 0:
				r.Strip = r.Path != ""
			case 1:
				r.Proto = "h2c"
			}
			r.TCP = k.host == "t.test" && k.path == "" && rng.IntN(2) == 0
			cur[k] = r
		}
		var t route.Table
		for _, k := range keys { // sorted by host, then path
			if r, ok := cur[k]; ok {
				t.Routes = append(t.Routes, r)
			}
		}
		out = append(out, t)
	}
	return out
}

// TestOnlyUpstreamsIsKeepFallbacks checks the Publisher's shortcut
// against what it stands for: whenever onlyUpstreams says a table
// changes nothing in Caddy but upstreams, keepFallbacks on the whole
// rendered servers agrees; and a change of replicas alone (the common
// case) takes the shortcut.
func TestOnlyUpstreamsIsKeepFallbacks(t *testing.T) {
	opt := Options{ID: "dockroute", DefaultHost: "default.test", Lookup: &Lookup{Resolver: "udp/127.0.0.1:53", Refresh: time.Second}}
	tables := randomTables(3000)
	var short, replicas int
	for i := 1; i < len(tables); i++ {
		last, next := tables[i-1], tables[i]
		pushed := Render(last, opt)
		_, same := keepFallbacks(Render(next, opt), &pushed)
		changed, sameRoutes := changedRoutes(last, next)
		got := sameRoutes && onlyUpstreams(last, next, changed, opt)
		if got && !same {
			t.Fatalf("step %d: onlyUpstreams says nothing but upstreams changed, keepFallbacks disagrees:\n%+v\n->\n%+v", i, last.Routes, next.Routes)
		}
		if got {
			short++
		}
		if same && replicasOnly(last, next) {
			replicas++
			if !got {
				t.Fatalf("step %d: a change of replicas alone took the long way:\n%+v\n->\n%+v", i, last.Routes, next.Routes)
			}
		}
		if sameRoutes && onlyUpstreams(last, next, changed, Options{ID: "dockroute"}) {
			t.Fatalf("step %d: the shortcut was taken without lookups", i)
		}
	}
	if replicas < 100 || short < replicas {
		t.Fatalf("only %d replica changes (%d shortcuts) in %d steps: the test no longer tests", replicas, short, len(tables))
	}
}

// replicasOnly tells whether b is a with other IP replicas on the same
// port in some routes (not TLS passthrough).
func replicasOnly(a, b route.Table) bool {
	if len(a.Routes) != len(b.Routes) {
		return false
	}
	for i := range a.Routes {
		x, y := a.Routes[i], b.Routes[i]
		x.Servers, y.Servers = nil, nil
		if !x.Equal(y) {
			return false
		}
		if a.Routes[i].Equal(b.Routes[i]) {
			continue
		}
		tx, okx := lookupTarget(a.Routes[i])
		ty, oky := lookupTarget(b.Routes[i])
		if !okx || !oky || tx.name != ty.name {
			return false
		}
	}
	return true
}

// TestNextAnswersIsAnswers follows a sequence of tables with NextAnswers:
// each result is what Answers gives for the table, and the answers it
// started from are left as they were (the lookup server may be reading
// them).
func TestNextAnswersIsAnswers(t *testing.T) {
	tables := randomTables(3000)
	a := Answers(tables[0], Options{})
	for i := 1; i < len(tables); i++ {
		before := maps.Clone(a)
		next := NextAnswers(a, tables[i-1], tables[i], Options{})
		if !maps.EqualFunc(next, Answers(tables[i], Options{}), slices.Equal) {
			t.Fatalf("step %d: NextAnswers gives %v, Answers %v", i, next, Answers(tables[i], Options{}))
		}
		if !maps.EqualFunc(a, before, slices.Equal) {
			t.Fatalf("step %d: NextAnswers modified the answers it was given", i)
		}
		a = next
	}
	if got := NextAnswers(nil, route.Table{}, tables[5], Options{}); !maps.EqualFunc(got, Answers(tables[5], Options{}), slices.Equal) {
		t.Fatalf("from no answers: %v", got)
	}
}

// TestDownRouteKeepsItsLookup: with holding and lookups, a route that lost
// its last server renders as it did (Caddy keeps asking under the same
// name, with no config load), minus its fallback upstreams, and its name
// is answered with nowhere, never nothing: a failed lookup would send
// Caddy to the stopped containers' addresses its config still lists.
func TestDownRouteKeepsItsLookup(t *testing.T) {
	opt := Options{ID: "dockroute", Listen: []string{":80"}, Lookup: &Lookup{Resolver: "udp/127.0.0.1:1053", Refresh: time.Second},
		Hold: &Hold{Dial: "127.0.0.1:9494", Token: "tok", Limit: 30 * time.Second}}
	up := route.Route{Host: "a.test", Servers: []string{"172.17.0.2:8080"}}
	down := route.Route{Host: "a.test", LastPort: "8080"}
	ru, rd := proxyRoute(up, opt), proxyRoute(down, opt)
	if !reflectEqualJSON(t, withoutUpstreams(ru), withoutUpstreams(rd)) {
		t.Fatalf("down route renders differently:\nup   %s\ndown %s", mustJSON(t, ru), mustJSON(t, rd))
	}
	if got := ru.Handle[len(ru.Handle)-1].LoadBalancing.TryDuration; got != "30s" {
		t.Errorf("try_duration %q, want the hold", got)
	}
	a := Answers(route.Table{Routes: []route.Route{down}}, Options{})
	tg, _ := lookupTarget(up)
	if got := a[tg.name]; len(got) != 1 || got[0] != nowhere {
		t.Fatalf("down route answered %v, want %v", got, nowhere)
	}
	// Without lookups (or without a port to look up) the endpoint holds
	// it, told by headers which route; with no hold, 503 as before.
	opt.Lookup = nil
	if h := proxyRoute(down, opt).Handle; !strings.Contains(string(h[len(h)-1].Raw), `"X-Dockroute-Route":["a.test"]`) {
		t.Errorf("held route without lookups: %s", mustJSON(t, h))
	}
	opt.Hold = nil
	if h := proxyRoute(down, opt).Handle; h[0].StatusCode != 503 {
		t.Errorf("down route without holding: %s", mustJSON(t, h))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func reflectEqualJSON(t *testing.T, a, b any) bool { return mustJSON(t, a) == mustJSON(t, b) }

// TestSleepingRouteIsTheSameAsleep: a route that sleeps goes through the
// holding endpoint awake and asleep, with or without lookups, so putting
// its container to sleep or waking it loads nothing into Caddy.
func TestSleepingRouteIsTheSameAsleep(t *testing.T) {
	opt := Options{ID: "dockroute", Listen: []string{":80"}, Lookup: &Lookup{Resolver: "udp/127.0.0.1:1053", Refresh: time.Second},
		Hold: &Hold{Dial: "127.0.0.1:9494", Token: "tok", Limit: 30 * time.Second}}
	awake := route.Route{Host: "a.test", Idle: time.Minute, Servers: []string{"172.17.0.2:8080"}}
	asleep := route.Route{Host: "a.test", Idle: time.Minute, LastPort: "8080"}
	for _, lookups := range []bool{true, false} {
		if !lookups {
			opt.Lookup = nil
		}
		ra, rs := proxyRoute(awake, opt), proxyRoute(asleep, opt)
		if !reflectEqualJSON(t, ra, rs) {
			t.Fatalf("lookups %v: asleep renders differently:\nawake  %s\nasleep %s", lookups, mustJSON(t, ra), mustJSON(t, rs))
		}
		if h := ra.Handle; !strings.Contains(string(h[len(h)-1].Raw), `"X-Dockroute-Route":["a.test"]`) {
			t.Errorf("lookups %v: an awake sleeping route does not go through the endpoint: %s", lookups, mustJSON(t, h))
		}
	}
}
