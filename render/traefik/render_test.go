package traefik

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

var goldenTables = map[string]route.Table{
	"empty": {},
	"one":   {Routes: []route.Route{{Host: "hello.local", Servers: []netip.AddrPort{ap("172.17.0.2:8080")}}}},
	"replicas_and_wildcard": {Routes: []route.Route{
		{Host: "*.example.com", Servers: []netip.AddrPort{ap("172.17.0.4:80")}},
		{Host: "a.example.com", Servers: []netip.AddrPort{ap("172.17.0.2:8080"), ap("172.17.0.3:8080")}},
		{Host: "v6.local", Servers: []netip.AddrPort{ap("[fd00::2]:8080")}},
	}},
}

// TestGolden pins the exact bytes, then has Traefik's own decoder and router
// load each golden file and route its hosts.
func TestGolden(t *testing.T) {
	for name, table := range goldenTables {
		t.Run(name, func(t *testing.T) {
			got := Render(table)
			path := filepath.Join("testdata", name+".golden.yml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Render differs from %s (go test -update to accept):\n%s", path, got)
			}
			if !bytes.Equal(got, Render(table)) {
				t.Fatal("Render is not deterministic")
			}
			var reqs []string
			for _, r := range table.Routes {
				reqs = append(reqs, strings.Replace(r.Host, "*", "any", 1))
			}
			routes := traefiktest.Check(t, path, reqs...)
			for i, r := range table.Routes {
				var want []string
				for _, s := range r.Servers {
					want = append(want, "http://"+s.String())
				}
				if got := routes[reqs[i]]; got.Router != Name(r.Host) || !slices.Equal(got.Servers, want) {
					t.Errorf("%s routes to %+v, want router %s servers %v", reqs[i], got, Name(r.Host), want)
				}
			}
		})
	}
}

// TestExactHostBeatsWildcard checks the priority rule through Traefik's
// own router: a.example.com has its own route, b.example.com falls to *.
func TestExactHostBeatsWildcard(t *testing.T) {
	routes := traefiktest.Check(t, "testdata/replicas_and_wildcard.golden.yml", "a.example.com", "b.example.com", "x.a.example.com", "example.com")
	want := map[string]string{"a.example.com": Name("a.example.com"), "b.example.com": Name("*.example.com"), "x.a.example.com": "", "example.com": ""}
	for req, router := range want {
		if routes[req].Router != router {
			t.Errorf("%s reaches router %q, want %q", req, routes[req].Router, router)
		}
	}
}

func TestNameIsOneToOne(t *testing.T) {
	hosts := []string{"a-b.c", "a.b-c", "a.b.c", "ab.c", "*.a.com", "wildcard.a.com", "wildcard-.a.com"}
	seen := map[string]string{}
	for _, h := range hosts {
		n := Name(h)
		if prev, dup := seen[n]; dup {
			t.Fatalf("%q and %q both map to %q", prev, h, n)
		}
		seen[n] = h
	}
}

// FuzzRender builds a table from arbitrary host lists and checks that the
// output decodes strictly into Traefik's configuration shape, holds a rule
// for exactly the validated hosts and no template text. Seeds live in
// testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	f.Fuzz(func(t *testing.T, hostList string, a, b byte, port uint16) {
		var hosts []string
		for h := range strings.SplitSeq(hostList, ",") {
			if c, err := route.ParseHost(h); err == nil {
				hosts = append(hosts, c)
			}
		}
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 17, a, b}), port)
		table := route.Build([]route.Backend{{Name: "fuzz", Hosts: hosts, Addr: addr}})
		out := Render(table)
		if bytes.Contains(out, []byte("{{")) || bytes.Contains(out, []byte("}}")) {
			t.Fatalf("template text in output:\n%s", out)
		}
		var cfg config
		dec := yaml.NewDecoder(bytes.NewReader(out))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("output does not decode: %v\n%s", err, out)
		}
		if cfg.HTTP == nil {
			if len(table.Routes) > 0 {
				t.Fatalf("no http section for %d routes", len(table.Routes))
			}
			return
		}
		if len(cfg.HTTP.Routers) != len(table.Routes) {
			t.Fatalf("%d routers for %d routes", len(cfg.HTTP.Routers), len(table.Routes))
		}
		for _, r := range table.Routes {
			got := cfg.HTTP.Routers[Name(r.Host)]
			if got.Rule != Rule(r.Host) || got.Service != Name(r.Host) {
				t.Fatalf("router for %q is %+v", r.Host, got)
			}
			if s := cfg.HTTP.Services[got.Service].LoadBalancer.Servers; len(s) != 1 || s[0].URL != "http://"+addr.String() {
				t.Fatalf("service for %q has servers %+v", r.Host, s)
			}
		}
	})
}
