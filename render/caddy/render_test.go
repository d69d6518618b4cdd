package caddy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// checkGolden compares got with the golden file at path (go test -update
// rewrites it).
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Render differs from %s (go test -update to accept):\n%s", path, got)
	}
}

func TestRenderGolden(t *testing.T) {
	tbl := route.Table{Routes: []route.Route{
		{Host: "*.example.com", Servers: []string{"172.17.0.4:80"}},
		{Host: "a.example.com", Servers: []string{"172.17.0.2:8080", "172.17.0.3:8080"}},
		{Host: "a.example.com", Path: "/api", Strip: true, Servers: []string{"172.17.0.5:9000"}},
		{Host: "v6.local", Servers: []string{"[fd00::2]:8080"}},
	}}
	got, _ := json.MarshalIndent(Render(tbl, Options{ID: "dockroute", Listen: []string{":80"}}), "", "  ")
	checkGolden(t, "testdata/server.golden.json", got)
	// Exact hosts before wildcards, longer paths first, then the 404
	// fallback.
	s := Render(tbl, Options{ID: "x"})
	var order []string
	for _, r := range s.Routes {
		for _, m := range r.Match {
			p := ""
			if m.PathRegexp != nil {
				p = " " + m.PathRegexp.Pattern
			}
			order = append(order, strings.Join(m.Host, ",")+p)
		}
	}
	if want := []string{"a.example.com,a.example.com. ^/api(/.*)?$", "a.example.com,a.example.com.", "v6.local,v6.local.", "*.example.com,*.example.com."}; !slices.Equal(order, want) || len(s.Routes[4].Match) != 0 {
		t.Fatalf("route order %v, want %v then the fallback", order, want)
	}
	if h := s.Routes[0].Handle; len(h) != 2 || h[0].Handler != "rewrite" || h[0].StripPathPrefix != "/api" {
		t.Fatalf("strip route handlers %+v", h)
	}
	if !bytes.Equal(Render(tbl, Options{ID: "x"}).JSON(), s.JSON()) {
		t.Fatal("Render is not deterministic")
	}
	if Render(tbl, Options{AutoHTTPS: true}).AutomaticHTTPS != nil {
		t.Fatal("AutoHTTPS on must leave Caddy's automatic_https alone")
	}
}

func TestNewAdmin(t *testing.T) {
	for addr, want := range map[string]string{
		"http://127.0.0.1:2019":        "http://127.0.0.1:2019",
		"127.0.0.1:2019":               "http://127.0.0.1:2019",
		"localhost:2019/":              "http://localhost:2019",
		"unix//run/caddy/admin.sock":   "unix",
		"unix:///run/caddy/admin.sock": "unix",
	} {
		a, err := NewAdmin(addr)
		if err != nil {
			t.Errorf("NewAdmin(%q): %v", addr, err)
			continue
		}
		if got := a.origin; want == "unix" && !a.unix || want != "unix" && got != want {
			t.Errorf("NewAdmin(%q) = %q unix=%v, want %q", addr, got, a.unix, want)
		}
	}
	for _, bad := range []string{"unix//", "ftp://x"} {
		if _, err := NewAdmin(bad); err == nil {
			t.Errorf("NewAdmin(%q) succeeded", bad)
		}
	}
}

// The upstream protocol: HTTPS (verifying the backend's certificate unless
// the operator said --upstream-insecure) or HTTP/2 in cleartext (h2c).
func TestTransports(t *testing.T) {
	tbl := route.Table{Routes: []route.Route{
		{Host: "grpc.local", Proto: "h2c", Servers: []string{"172.17.0.8:50051"}},
		{Host: "plain.local", Servers: []string{"172.17.0.7:80"}},
		{Host: "secure.local", Proto: "https", Servers: []string{"172.17.0.9:8443"}},
	}}
	for _, insecure := range []bool{false, true} {
		s := Render(tbl, Options{ID: "x", InsecureUpstream: insecure})
		tr := map[string]*Transport{}
		for _, r := range s.Routes[:3] {
			tr[r.Hosts()[0]] = r.Handle[len(r.Handle)-1].Transport
		}
		if g := tr["grpc.local"]; !slices.Equal(g.Versions, []string{"h2c", "2"}) || g.TLS != nil {
			t.Errorf("h2c transport %+v", g)
		}
		if p := tr["plain.local"]; p.TLS != nil || p.Versions != nil {
			t.Errorf("plain transport %+v", p)
		}
		if sec := tr["secure.local"]; sec.TLS == nil || sec.TLS.InsecureSkipVerify != insecure {
			t.Errorf("https transport (insecure %v) %+v", insecure, sec.TLS)
		}
	}
}

// A route whose set or auth group is missing from the operator's files
// (removed after the container was checked) fails closed: it answers 503
// and never reaches its backend unguarded. Its match stays, so no
// shorter route (or the 404) answers instead.
func TestMissingGuardFailsClosed(t *testing.T) {
	tbl := route.Table{Routes: []route.Route{
		{Host: "a.local", Path: "/admin", Auth: "gone", Servers: []string{"172.17.0.7:80"}},
		{Host: "b.local", Middlewares: "hsts,gone", Servers: []string{"172.17.0.8:80"}},
		{Host: "c.local", Middlewares: "hsts", Servers: []string{"172.17.0.9:80"}},
	}}
	s := Render(tbl, Options{ID: "x"})
	for i, host := range []string{"a.local", "b.local"} {
		r := s.Routes[i]
		if r.Hosts()[0] != host || len(r.Handle) != 1 || r.Handle[0].Handler != "static_response" || r.Handle[0].StatusCode != 503 {
			t.Errorf("%s: %s, want a lone 503", host, s.JSON())
		}
	}
	if s.Routes[0].Match[0].PathRegexp == nil {
		t.Error("the failed-closed route lost its path match")
	}
	if h := s.Routes[2].Handle; len(h) != 2 || h[1].Handler != "reverse_proxy" {
		t.Errorf("a built-in set needs no file: %s", s.JSON())
	}
}
