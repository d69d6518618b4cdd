//go:build e2e

package main

// One table of requests through a real Traefik and real Caddys, each fed by
// dockroute from the same routes: every request must reach the same
// backend in every proxy, and the one docs/contract.md's meaning names.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// parityRoutes are the routes under test, as a routes file: static routes
// go through the same table and renderers as containers' routes.
var parityRoutes = map[string]string{
	"a.test":     "A",
	"*.w.test":   "W",
	"x.w.test":   "X",
	"p.test":     "P",
	"p.test/api": "API",
	"p.test/Api": "API2",
}

// parityRequests maps a request (host and path) to the backend it must
// reach, or "404". Each line is a decision docs/contract.md documents.
var parityRequests = []struct{ host, path, want string }{
	{"a.test", "/", "A"},
	{"A.TEST", "/", "A"},           // hosts are case-insensitive
	{"a.test.", "/", "A"},          // a trailing dot names the same host
	{"unknown.test", "/", "404"},   // no route: 404 in both
	{"y.w.test", "/", "W"},         // a wildcard matches one label...
	{"Y.W.TEST", "/", "W"},         //
	{"a_b.w.test", "/", "W"},       // ...of any characters but a dot
	{"y.w.test.", "/", "W"},        //
	{"a.b.w.test", "/", "404"},     // not two labels
	{"w.test", "/", "404"},         // nor none
	{"x.w.test", "/", "X"},         // an exact host beats a wildcard
	{"x.w.test.", "/", "X"},        //
	{"p.test", "/", "P"},           //
	{"p.test", "/api", "API"},      // a prefix matches itself...
	{"p.test", "/api/x", "API"},    // ...and below it...
	{"p.test", "/apix", "P"},       // ...by whole segments
	{"p.test", "/Api", "API2"},     // paths are case-sensitive:
	{"p.test", "/Api/x", "API2"},   // /Api and /api are different routes
	{"p.test", "/API", "P"},        // and /API is neither
	{"p.test", "//api", "API"},     // both clean the path first
	{"p.test", "/x/../api", "API"}, //
}

func TestProxiesAgree(t *testing.T) {
	dir := t.TempDir()
	backends := map[string]string{}
	var routes strings.Builder
	routes.WriteString("routes:\n")
	for key, name := range parityRoutes {
		addr, ok := backends[name]
		if !ok {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
			t.Cleanup(srv.Close)
			addr = srv.URL
			backends[name] = addr
		}
		fmt.Fprintf(&routes, "  %q: %s\n", key, addr)
	}
	routesFile := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routesFile, []byte(routes.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	proxies := map[string]string{} // name → address
	tr := traefiktest.Start(t, filepath.Join(dir, "dynamic"))
	startDaemonDir(t, tr.Dir, nil, "--routes-file", routesFile)
	proxies["traefik"] = tr.Web
	for _, bin := range caddytest.Binaries(t) {
		c := caddytest.Start(t, bin, nil)
		listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, listen, "--routes-file", routesFile)
		proxies[bin] = listen
	}
	for name, addr := range proxies {
		waitAnswer(t, addr, "a.test", 200, "A") // first publish loaded
		for _, r := range parityRequests {
			status, body, err := caddytest.GetAnswered(addr, r.host, r.path)
			got := body
			if err != nil || status == 404 {
				got = "404"
			}
			if err == nil && status != 200 && status != 404 {
				got = fmt.Sprintf("%d %s", status, body)
			}
			if strings.TrimSpace(got) != r.want {
				t.Errorf("%s: %s%s reached %q, want %q", name, r.host, r.path, got, r.want)
			}
		}
	}
}
