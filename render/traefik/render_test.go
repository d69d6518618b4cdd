package traefik

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/auth"
	mw "github.com/dockroute/dockroute/render/middleware"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type golden struct {
	table route.Table
	opt   Options
}

var goldens = map[string]golden{
	"empty": {},
	"one":   {table: route.Table{Routes: []route.Route{{Host: "hello.local", Servers: []string{"172.17.0.2:8080"}}}}},
	"replicas_and_wildcard": {table: route.Table{Routes: []route.Route{
		{Host: "*.example.com", Servers: []string{"172.17.0.4:80"}},
		{Host: "a.example.com", Servers: []string{"172.17.0.2:8080", "172.17.0.3:8080"}},
		{Host: "v6.local", Servers: []string{"[fd00::2]:8080"}},
	}}},
	"protos": {
		opt: Options{InsecureUpstream: true},
		table: route.Table{Routes: []route.Route{
			{Host: "grpc.example.com", Proto: "h2c", Servers: []string{"172.17.0.8:50051"}},
			{Host: "secure.example.com", Proto: "https", Servers: []string{"172.17.0.9:8443"}},
		}},
	},
	"guards": {
		opt: Options{Middlewares: testCatalog, Auth: testGroups},
		table: route.Table{Routes: []route.Route{
			{Host: "example.com", Middlewares: "www-redirect,hsts", Servers: []string{"172.17.0.2:80"}},
			{Host: "www.example.com", Middlewares: "www-redirect,apex-redirect", Servers: []string{"172.17.0.2:80"}},
			{Host: "app.example.com", Path: "/admin", Strip: true, Auth: "staff", Middlewares: "secure-headers,sso", Servers: []string{"172.17.0.3:80"}},
			{Host: "gone.example.com", Auth: "nobody", Middlewares: "removed", Servers: []string{"172.17.0.4:80"}},
		}},
	},
	"fallback": {
		opt: Options{DefaultHost: "home.example.com"},
		table: route.Table{Routes: []route.Route{
			{Host: "down.example.com", Auth: "staff"},
			{Host: "home.example.com", Servers: []string{"172.17.0.2:80"}},
			{Host: "home.example.com", Path: "/api", Strip: true, Servers: []string{"172.17.0.3:80"}},
			{Host: "other.example.com", Servers: []string{"172.17.0.4:80"}},
		}},
	},
	"tcp_passthrough": {
		opt: Options{EntryPoints: []string{"websecure"}},
		table: route.Table{Routes: []route.Route{
			{Host: "*.db.example.com", TCP: true, Servers: []string{"172.17.0.6:5432"}},
			{Host: "app.example.com", Servers: []string{"172.17.0.2:80"}},
			{Host: "app.example.com", TCP: true, Edge: route.Edge{EntryPoints: "tls"}, Servers: []string{"172.17.0.3:8443", "172.17.0.4:8443"}},
		}},
	},
	"hold": {
		opt: Options{Hold: &Hold{URL: "http://127.0.0.1:9494", Token: "0123456789abcdef"}, Auth: testGroups, Middlewares: testCatalog},
		table: route.Table{Routes: []route.Route{
			{Host: "one.example.com", Servers: []string{"172.17.0.2:8080"}},
			{Host: "two.example.com", Servers: []string{"172.17.0.3:80", "172.17.0.4:80"}},
			{Host: "down.example.com", Path: "/api", Strip: true, Auth: "staff", LastPort: "80"},
			{Host: "grpc.example.com", Proto: "h2c"},
		}},
	},
	"paths_tls_redirect": {
		opt: Options{EntryPoints: []string{"websecure"}, TLS: true, CertResolver: "le", RedirectFrom: []string{"web"}},
		table: route.Table{Routes: []route.Route{
			{Host: "*.example.com", Path: "/api/v2", Servers: []string{"172.17.0.5:80"}},
			{Host: "a.example.com", Servers: []string{"172.17.0.2:8080"}},
			{Host: "a.example.com", Path: "/api", Strip: true, Servers: []string{"172.17.0.3:9000"}},
			{Host: "a.example.com", Path: "/api/v2", Servers: []string{"172.17.0.4:9000"}},
			{Host: "plain.example.com", Edge: route.Edge{EntryPoints: "web", TLS: route.TLSOff}, Servers: []string{"172.17.0.6:80"}},
			{Host: "own.example.com", Edge: route.Edge{CertResolver: "other", TLS: route.TLSOn}, Servers: []string{"172.17.0.7:80"}},
		}},
	},
}

// testCatalog and testGroups are an operator's files for the goldens.
var testCatalog, testGroups = func() (*mw.Catalog, *auth.Groups) {
	c, problems, err := mw.Parse([]byte(`middlewares:
  secure-headers:
    traefik:
      - headers: {frameDeny: true, customResponseHeaders: {X-Served-By: dockroute}}
  sso:
    traefik: [authelia@file]
`))
	if err != nil || len(problems) > 0 {
		panic(fmt.Sprint(err, problems))
	}
	g, gp := auth.Parse([]byte("[staff]\nalice:$2a$04$0UJXznqBdkQIZECOMlqjfu40vPdCMliDJYQa0gTzOSOLGDK3pi3va\n"))
	if len(gp) > 0 {
		panic(fmt.Sprint(gp))
	}
	return c, g
}()

// TestGolden pins the exact bytes, then has Traefik's own decoder and router
// load each golden file and route every route's host and path.
func TestGolden(t *testing.T) {
	for name, g := range goldens {
		t.Run(name, func(t *testing.T) {
			got := Render(g.table, g.opt)
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
			if !bytes.Equal(got, Render(g.table, g.opt)) {
				t.Fatal("Render is not deterministic")
			}
			var reqs []string
			var httpRoutes []route.Route // the oracle routes HTTP requests
			for _, r := range g.table.Routes {
				if !r.TCP {
					httpRoutes = append(httpRoutes, r)
					reqs = append(reqs, strings.Replace(r.Host, "*", "any", 1)+r.Path+"/x")
				}
			}
			routes := traefiktest.Check(t, path, reqs...)
			for i, r := range httpRoutes {
				scheme := map[string]string{"": "http://", "https": "https://", "h2c": "h2c://"}[r.Proto]
				var want []string
				for _, s := range r.Servers {
					want = append(want, scheme+s)
				}
				if got := routes[reqs[i]]; got.Router != Name(r.Host, r.Path) || !slices.Equal(got.Servers, want) {
					t.Errorf("%s routes to %+v, want router %s servers %v", reqs[i], got, Name(r.Host, r.Path), want)
				}
			}
		})
	}
}

// TestDefaultHost checks through Traefik's own router that requests for
// hosts no router matches reach the default host's routes, path by path,
// and never beat a host's own router, even a down one.
func TestDefaultHost(t *testing.T) {
	routes := traefiktest.Check(t, "testdata/fallback.golden.yml",
		"unknown.test/x", "unknown.test/api/x", "unknown.test/apix", "other.example.com/api/x", "down.example.com/api/x")
	want := map[string]string{
		"unknown.test/x":          defaultPrefix + encode("home.example.com", ""),
		"unknown.test/api/x":      defaultPrefix + encode("home.example.com", "/api"),
		"unknown.test/apix":       defaultPrefix + encode("home.example.com", ""),
		"other.example.com/api/x": Name("other.example.com", ""),
		"down.example.com/api/x":  Name("down.example.com", ""),
	}
	for req, router := range want {
		if got := routes[req].Router; got != router {
			t.Errorf("%s: router %q, want %q", req, got, router)
		}
	}
	if s := routes["unknown.test/api/x"].Servers; !slices.Equal(s, []string{"http://172.17.0.3:80"}) {
		t.Errorf("the default host's /api serves %v", s)
	}
}

// TestPrecedence checks through Traefik's own router that exact hosts beat
// wildcards and longer prefixes beat shorter ones, segment by segment.
func TestPrecedence(t *testing.T) {
	routes := traefiktest.Check(t, "testdata/paths_tls_redirect.golden.yml",
		"a.example.com/api/v2/x", "a.example.com/api/v2", "a.example.com/api/x", "a.example.com/api", "a.example.com/apix",
		"a.example.com/", "b.example.com/api/v2/y", "b.example.com/", "x.a.example.com/api/v2")
	want := map[string]string{
		"a.example.com/api/v2/x": Name("a.example.com", "/api/v2"),
		"a.example.com/api/v2":   Name("a.example.com", "/api/v2"),
		"a.example.com/api/x":    Name("a.example.com", "/api"),
		"a.example.com/api":      Name("a.example.com", "/api"),
		"a.example.com/apix":     Name("a.example.com", ""),
		"a.example.com/":         Name("a.example.com", ""),
		"b.example.com/api/v2/y": Name("*.example.com", "/api/v2"),
		"b.example.com/":         "",
		"x.a.example.com/api/v2": "",
	}
	for req, router := range want {
		if routes[req].Router != router {
			t.Errorf("%s reaches router %q, want %q", req, routes[req].Router, router)
		}
	}
	routes = traefiktest.Check(t, "testdata/replicas_and_wildcard.golden.yml", "a.example.com", "b.example.com", "x.a.example.com", "example.com")
	for req, router := range map[string]string{"a.example.com": Name("a.example.com", ""), "b.example.com": Name("*.example.com", ""), "x.a.example.com": "", "example.com": ""} {
		if routes[req].Router != router {
			t.Errorf("%s reaches router %q, want %q", req, routes[req].Router, router)
		}
	}
}

// TestEdgeOptions checks entrypoints, TLS, resolvers, strip and redirect
// as Traefik decodes them.
func TestEdgeOptions(t *testing.T) {
	cfg := decode(t, Render(goldens["paths_tls_redirect"].table, goldens["paths_tls_redirect"].opt))
	r := cfg.HTTP.Routers
	api := r[Name("a.example.com", "/api")]
	if api.TLS == nil || api.TLS.CertResolver != "le" || !slices.Equal(api.EntryPoints, []string{"websecure"}) || len(api.Middlewares) != 1 {
		t.Errorf("api router %+v", api)
	}
	if p := cfg.HTTP.Middlewares[api.Middlewares[0]].StripPrefix; p == nil || !slices.Equal(p.Prefixes, []string{"/api"}) {
		t.Errorf("strip middleware %+v", p)
	}
	if plain := r[Name("plain.example.com", "")]; plain.TLS != nil || !slices.Equal(plain.EntryPoints, []string{"web"}) {
		t.Errorf("label tls=false / entrypoints=web not honoured: %+v", plain)
	}
	if _, ok := r[redirectPrefix+encode("plain.example.com", "")]; ok {
		t.Error("a non-TLS route got a redirect router")
	}
	if own := r[Name("own.example.com", "")]; own.TLS == nil || own.TLS.CertResolver != "other" {
		t.Errorf("label certresolver not honoured: %+v", own)
	}
	// A wildcard's HostRegexp names no domain for ACME: tls.domains must.
	if w := r[Name("*.example.com", "/api/v2")]; w.TLS == nil || !slices.Equal(w.TLS.Domains, []domain{{Main: "*.example.com"}}) {
		t.Errorf("wildcard router with a resolver has no tls.domains: %+v", w.TLS)
	}
	if api.TLS.Domains != nil {
		t.Errorf("an exact host got tls.domains: %+v", api.TLS)
	}
	red := r[redirectPrefix+encode("a.example.com", "/api")]
	if red.Rule != api.Rule || !slices.Equal(red.EntryPoints, []string{"web"}) || !slices.Equal(red.Middlewares, []string{redirectMiddleware}) {
		t.Errorf("redirect router %+v", red)
	}
	if m := cfg.HTTP.Middlewares[redirectMiddleware].RedirectScheme; m == nil || m.Scheme != "https" || !m.Permanent {
		t.Errorf("redirect middleware %+v", m)
	}
}

func TestNameIsOneToOne(t *testing.T) {
	type hp struct{ host, path string }
	in := []hp{{"a-b.c", ""}, {"a.b-c", ""}, {"a.b.c", ""}, {"ab.c", ""}, {"*.a.com", ""}, {"wildcard.a.com", ""},
		{"a.com", "/x"}, {"a.com", "/x/y"}, {"a.com", "/x_y"}, {"a.com", "/x.y"}, {"a.com", "/x~2fy"}, {"a.com-x", ""}, {"*.redirect", ""},
		{"a.com", "/" + strings.Repeat("a", 300)}, {"a.com", "/" + strings.Repeat("a", 301)}, {"a.com", strings.Repeat("/~", 150)}}
	seen := map[string]hp{}
	for _, h := range in {
		for _, n := range []string{Name(h.host, h.path), redirectPrefix + encode(h.host, h.path)} {
			if prev, dup := seen[n]; dup {
				t.Fatalf("%v and %v both map to %q", prev, h, n)
			}
			seen[n] = h
		}
	}
}

// TestLongNamesStayLoadable renders routes whose names, spelled out,
// would pass YAML's 1024-character limit on keys (a path of dots, each
// three characters encoded), beside a short route: the file must decode,
// Traefik's own loader must route both, and the long names must stay
// apart.
func TestLongNamesStayLoadable(t *testing.T) {
	dots := "/x" + strings.Repeat(".y", 510)  // 1022 characters, ~2e each dot
	other := "/x" + strings.Repeat(".y", 509) // differs only past any cut
	table := route.Build([]route.Backend{
		{Name: "long", Host: "victim.test", Path: dots, Server: "172.17.0.2:80"},
		{Name: "long2", Host: "victim.test", Path: other, Server: "172.17.0.3:80"},
		{Name: "short", Host: "other.test", Server: "172.17.0.4:80"},
	})
	out := Render(table, Options{TLS: true, RedirectFrom: []string{"web"}})
	cfg := decode(t, out)
	if len(cfg.HTTP.Routers) != 6 {
		t.Fatalf("%d routers, want 6 (3 routes and their redirects)", len(cfg.HTTP.Routers))
	}
	for name := range cfg.HTTP.Routers {
		if len(name) > 256 {
			t.Errorf("router name of %d characters", len(name))
		}
	}
	if Name("victim.test", dots) == Name("victim.test", other) {
		t.Fatal("two long paths share a name")
	}
	path := filepath.Join(t.TempDir(), "long.yml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	routes := traefiktest.Check(t, path, "victim.test"+dots+"/z", "victim.test"+other+"/z", "other.test/")
	for req, want := range map[string]string{
		"victim.test" + dots + "/z":  Name("victim.test", dots),
		"victim.test" + other + "/z": Name("victim.test", other),
		"other.test/":                Name("other.test", ""),
	} {
		if got := routes[req].Router; got != want {
			t.Errorf("%.40s… goes to router %q, want %q", req, got, want)
		}
	}
}

// config is the file's top level, the shape these tests decode the output
// into (strictly, with yaml.v3) to check it holds nothing else.
type config struct {
	HTTP *httpConfig `yaml:"http,omitempty"`
	TCP  *tcpConfig  `yaml:"tcp,omitempty"`
}

func decode(t *testing.T, out []byte) config {
	t.Helper()
	var cfg config
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("output does not decode: %v\n%s", err, out)
	}
	return cfg
}

// FuzzRender builds a table from arbitrary host lists and checks that the
// output decodes strictly into Traefik's configuration shape, holds a rule
// for exactly the validated hosts and no template text. Seeds live in
// testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	f.Fuzz(func(t *testing.T, hostList string, a, b byte, port uint16) {
		var backends []route.Backend
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 17, a, b}), port)
		for item := range strings.SplitSeq(hostList, ",") {
			host, path, _ := strings.Cut(item, "/")
			h, err := route.ParseHost(host)
			if err != nil {
				continue
			}
			p, err := route.ParsePath("/" + path)
			if err != nil {
				continue
			}
			backends = append(backends, route.Backend{Name: "fuzz", Host: h, Path: p, Strip: a%2 == 0, Server: addr.String()})
		}
		table := route.Build(backends)
		out := Render(table, Options{TLS: b%2 == 0, RedirectFrom: []string{"web"}})
		if bytes.Contains(out, []byte("{{")) || bytes.Contains(out, []byte("}}")) {
			t.Fatalf("template text in output:\n%s", out)
		}
		cfg := decode(t, out)
		if cfg.HTTP == nil {
			if len(table.Routes) > 0 {
				t.Fatalf("no http section for %d routes", len(table.Routes))
			}
			return
		}
		for _, r := range table.Routes {
			got := cfg.HTTP.Routers[Name(r.Host, r.Path)]
			if got.Rule != Rule(r.Host, r.Path) || got.Service != Name(r.Host, r.Path) {
				t.Fatalf("router for %q%q is %+v", r.Host, r.Path, got)
			}
			if s := cfg.HTTP.Services[got.Service].LoadBalancer.Servers; len(s) != 1 || s[0].URL != "http://"+addr.String() {
				t.Fatalf("service for %q has servers %+v", r.Host, s)
			}
		}
	})
}

// httpRouters is the names of the HTTP routers in a file, sorted.
func httpRouters(t *testing.T, file []byte) []string {
	t.Helper()
	var cfg struct {
		HTTP struct{ Routers map[string]any }
	}
	if err := yaml.Unmarshal(file, &cfg); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(cfg.HTTP.Routers))
}

// TestRendererReusesOnlyWhatIsUnchanged renders a sequence of tables and
// options with one Renderer and checks every result against a fresh
// Render: a kept piece is never stale.
func TestRendererReusesOnlyWhatIsUnchanged(t *testing.T) {
	var rd Renderer
	steps := []golden{
		goldens["paths_tls_redirect"],
		{table: goldens["paths_tls_redirect"].table, opt: Options{}},
		goldens["guards"],
		goldens["fallback"],
		goldens["tcp_passthrough"],
		goldens["protos"],
		goldens["empty"],
		goldens["protos"],
	}
	moved := goldens["guards"]
	moved.table = route.Table{Routes: slices.Clone(moved.table.Routes)}
	moved.table.Routes[1].Servers = []string{"172.17.0.99:80"}
	steps = append(steps, goldens["guards"], moved, goldens["guards"])
	for i, s := range steps {
		want := Render(s.table, s.opt)
		if got := rd.Render(s.table, s.opt); !bytes.Equal(got, want) {
			t.Fatalf("step %d: the Renderer gives\n%s\nwant\n%s", i, got, want)
		}
		checkReserved(t, &rd, want)
		// In no promised order (a kept Renderer's slots may hold
		// them otherwise than a fresh one's), each router once.
		if got, want := slices.Sorted(slices.Values(rd.Routers())), httpRouters(t, want); !slices.Equal(got, want) {
			t.Fatalf("step %d: Routers lists %v, the file has %v", i, got, want)
		}
		if got, want := slices.Sorted(slices.Values(Routers(s.table, s.opt))), httpRouters(t, want); !slices.Equal(got, want) {
			t.Fatalf("step %d: a fresh Renderer's Routers lists %v, the file has %v", i, got, want)
		}
	}
}

// TestRendererFollowsSmallChanges adds and removes a few routes at a time
// among many (HTTP, paths, TLS passthrough, the default host), the case
// where the Renderer keeps its order by insertion instead of sorting: each
// result must equal a fresh Render.
func TestRendererFollowsSmallChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var pool []route.Route
	for i := range 60 {
		r := route.Route{Host: fmt.Sprintf("h%d.example.com", i%25), Servers: []string{fmt.Sprintf("10.0.0.%d:80", i)}}
		switch i % 4 {
		case 1:
			r.Path = fmt.Sprintf("/p%d", i)
		case 2:
			r.TCP = true
		}
		pool = append(pool, r)
	}
	type key struct {
		host, path string
		tcp        bool
	}
	in := map[key]route.Route{}
	opt := Options{DefaultHost: "h3.example.com"}
	var rd Renderer
	for step := range 300 {
		for range 1 + rng.IntN(3) {
			r := pool[rng.IntN(len(pool))]
			k := key{r.Host, r.Path, r.TCP}
			if _, ok := in[k]; ok {
				delete(in, k)
			} else {
				in[k] = r
			}
		}
		var tbl route.Table
		for _, r := range in {
			tbl.Routes = append(tbl.Routes, r)
		}
		slices.SortFunc(tbl.Routes, func(a, b route.Route) int {
			return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(boolInt(a.TCP), boolInt(b.TCP)))
		})
		want := Render(tbl, opt)
		if got := rd.Render(tbl, opt); !bytes.Equal(got, want) {
			t.Fatalf("step %d: the Renderer gives\n%s\nwant\n%s", step, got, want)
		}
		checkReserved(t, &rd, want)
	}
}

// reserving is a file being published, to the Renderer's WriteTo: it
// keeps the size it is told before the bytes come.
type reserving struct {
	bytes.Buffer
	told int64
}

func (r *reserving) reserve(n int64) { r.told = n }

// checkReserved checks that rd, writing its file for a publish, tells
// the file its exact size first: fewer bytes reserved than written would
// leave ext4 some to allocate at the rename, more would reserve disk
// blocks past the file's end.
func checkReserved(t *testing.T, rd *Renderer, want []byte) {
	t.Helper()
	var r reserving
	if _, err := rd.WriteTo(&r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Bytes(), want) || r.told != int64(len(want)) {
		t.Fatalf("WriteTo reserved %d bytes and wrote %d, want %d:\n%s", r.told, r.Len(), len(want), r.Bytes())
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestUnreadablePieceIsLeftOut: a route whose text does not read back as
// YAML (here, written broken by hand: no input is known to do it any more)
// is left out of the file and reported, and the file, with every other
// route, still loads.
func TestUnreadablePieceIsLeftOut(t *testing.T) {
	tbl := route.Table{Routes: []route.Route{
		{Host: "bad.test", Servers: []string{"10.0.0.1:80"}},
		{Host: "good.test", Servers: []string{"10.0.0.2:80"}},
	}}
	var rd Renderer
	rd.Update(tbl, Options{})
	if len(rd.Refused()) != 0 {
		t.Fatalf("refused: %v", rd.Refused())
	}
	bad := rd.slots[pieceKey{host: "bad.test"}]
	bad.entries[0].text = []byte("    " + bad.name + ":\n      rule: \"Host(`bad.test`)\n")
	rd.check([]*slot{bad})
	refused := rd.Refused()
	if err := refused[Name("bad.test", "")]; err == nil || !strings.Contains(err.Error(), "does not read back as YAML") || len(refused) != 1 {
		t.Fatalf("refused: %v", refused)
	}
	file := rd.Bytes()
	var doc map[string]any
	if err := yaml.Unmarshal(file, &doc); err != nil {
		t.Fatalf("the file does not read:\n%s", file)
	}
	if strings.Contains(string(file), "bad.test") || !strings.Contains(string(file), "good.test") {
		t.Fatalf("the file:\n%s", file)
	}
	// The route comes back once it renders well again.
	rd.Update(route.Table{Routes: []route.Route{{Host: "bad.test", Servers: []string{"10.0.0.3:80"}}, tbl.Routes[1]}}, Options{})
	if len(rd.Refused()) != 0 || !strings.Contains(string(rd.Bytes()), "bad.test") {
		t.Fatalf("after a good render: refused %v\n%s", rd.Refused(), rd.Bytes())
	}
}

// TestSleepingRouteIsTheSameAsleep: a route that sleeps has the holding
// endpoint as its only server awake and asleep, so putting its container
// to sleep or waking it leaves Traefik's file as it was.
func TestSleepingRouteIsTheSameAsleep(t *testing.T) {
	opt := Options{Hold: &Hold{URL: "http://127.0.0.1:9494", Token: "0123456789abcdef"}}
	awake := route.Table{Routes: []route.Route{{Host: "a.test", Idle: time.Minute, Servers: []string{"172.17.0.2:8080"}}}}
	asleep := route.Table{Routes: []route.Route{{Host: "a.test", Idle: time.Minute, LastPort: "8080"}}}
	a, s := Render(awake, opt), Render(asleep, opt)
	if string(a) != string(s) {
		t.Fatalf("asleep renders differently:\nawake\n%s\nasleep\n%s", a, s)
	}
	if !strings.Contains(string(a), "/.dockroute-hold/") || strings.Contains(string(a), "172.17.0.2") {
		t.Fatalf("an awake sleeping route goes to its container, not through the endpoint:\n%s", a)
	}
}
