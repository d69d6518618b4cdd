package main

// Fallback end to end: --default-host catches unknown hosts, and a host
// whose only container stopped answers 503 for --unavailable-grace, through
// a real Traefik and real Caddys.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
)

// TestFallback: an unknown host reaches the default host's container; when
// a host's only container stops, every proxy answers 503 (Caddy with
// dockroute's page, Traefik with its own "Service Unavailable"), with
// Retry-After; 200 again when it starts; once the grace is over the host
// is unknown, so it reaches the default host too.
func TestFallback(t *testing.T) {
	dockertest.Require(t)
	home := dockertest.Unique("fhome") + ".test"
	app := dockertest.Unique("fapp") + ".test"
	homeID := dockertest.Run(t, hello(home)...)[:12]
	appID := dockertest.Run(t, hello(app, "--stop-timeout", "1")...)[:12]
	const grace = 8 * time.Second
	proxies := protoProxies(t, "--default-host", home, "--unavailable-grace", grace.String())

	each := func(what string, check func(t *testing.T, addr string)) {
		t.Helper()
		for name, addr := range proxies {
			t.Run(what+"/"+name, func(t *testing.T) { check(t, addr) })
		}
	}
	each("up", func(t *testing.T, addr string) {
		waitAnswer(t, addr, app, 200, "hello from "+appID)
		waitAnswer(t, addr, "nobody-routes-this.test", 200, "hello from "+homeID)
	})
	stopped := time.Now()
	dockertest.Docker(t, "stop", appID)
	each("stopped", func(t *testing.T, addr string) {
		a := waitAsk(t, addr, "GET", app, "/", "", "", func(a answer) bool { return a.status == 503 }, "503 for a stopped host")
		if a.header.Get("Retry-After") == "" || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("503 without Retry-After and no-store: %v", a.header)
		}
		if !strings.Contains(a.body, "Service Unavailable") {
			t.Errorf("503 page: %q", a.body)
		}
	})
	if time.Since(stopped) > grace/2 {
		t.Fatalf("checking the 503s took %v, too close to the grace (%v) for what follows", time.Since(stopped), grace)
	}
	dockertest.Docker(t, "start", appID)
	each("back", func(t *testing.T, addr string) { waitAnswer(t, addr, app, 200, "hello from "+appID) })
	dockertest.Docker(t, "stop", appID)
	each("grace over", func(t *testing.T, addr string) {
		waitAsk(t, addr, "GET", app, "/", "", "", func(a answer) bool { return a.status == 503 }, "503 within the grace")
		eventually(t, grace+10*time.Second, func() (bool, string) {
			a, err := ask(addr, "GET", app, "/", "", "")
			return err == nil && a.status == 200 && strings.Contains(a.body, "hello from "+homeID), fmt.Sprintf("%v %v, want the default host's answer", a, err)
		})
	})
}
