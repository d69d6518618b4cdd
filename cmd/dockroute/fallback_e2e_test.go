//go:build e2e

package main

// Fallback end to end: --default-host catches unknown hosts, and a host
// whose only container stopped answers 503 for --unavailable-grace, through
// a real Traefik and real Caddys.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
)

// TestFallback: an unknown host reaches the default host's container; when
// a host's only container stops, every proxy answers 503 (Caddy with
// dockroute's page, Traefik with its own "no available server"), with
// Retry-After; 200 again when it starts; once the grace is over the host
// is unknown, so it reaches the default host too.
func TestFallback(t *testing.T) {
	dockertest.Require(t)
	home := dockertest.Unique("fhome") + ".test"
	app := dockertest.Unique("fapp") + ".test"
	// The default host receives every unknown name: only the owner the
	// policy file names may serve it.
	homeID := dockertest.Run(t, hello(home, "--label", "com.example.role=home")...)[:12]
	appID := dockertest.Run(t, hello(app, "--stop-timeout", "1")...)[:12]
	policy := filepath.Join(t.TempDir(), "policy.yml")
	writeFile(t, policy, fmt.Sprintf("hosts:\n  - names: [%s]\n    owners: [{label: com.example.role=home}]\n", home))
	const grace = 8 * time.Second
	// --hold 0: the 503s themselves (holding has TestHoldPastTheLimit).
	proxies := everyProxy(t, "--default-host", home, "--unavailable-grace", grace.String(), "--policy-file", policy, "--hold", "0")

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
		a := wait503(t, addr, app)
		if a.header.Get("Retry-After") == "" || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("503 without Retry-After and no-store: %v", a.header)
		}
		page := "Service Unavailable" // dockroute's page in Caddy
		if strings.HasSuffix(t.Name(), "/traefik") {
			page = "no available server" // Traefik's own answer
		}
		if !strings.Contains(a.body, page) {
			t.Errorf("503 page: %q, want %q", a.body, page)
		}
	})
	if time.Since(stopped) > grace/2 {
		t.Fatalf("checking the 503s took %v, too close to the grace (%v) for what follows", time.Since(stopped), grace)
	}
	dockertest.Docker(t, "start", appID)
	each("back", func(t *testing.T, addr string) { waitAnswer(t, addr, app, 200, "hello from "+appID) })
	dockertest.Docker(t, "stop", appID)
	each("stopped again", func(t *testing.T, addr string) { wait503(t, addr, app) })
	each("grace over", func(t *testing.T, addr string) {
		eventually(t, grace+10*time.Second, func() (bool, string) {
			a, err := ask(addr, "GET", app, "/", "", "")
			return err == nil && a.status == 200 && strings.Contains(a.body, "hello from "+homeID), fmt.Sprintf("%v %v, want the default host's answer", a, err)
		})
	})
}

// wait503 polls until host answers 503. Each try gives up after a second:
// a request sent just before dockroute's publish goes to the stopped
// container's address, where Traefik's dial waits (30 s by default) for
// an answer that never comes.
func wait503(t *testing.T, addr, host string) answer {
	t.Helper()
	var last answer
	eventually(t, 5*time.Second, func() (bool, string) {
		a, err := askWithin(time.Second, addr, "GET", host, "/", "", "")
		last = a
		return err == nil && a.status == 503, fmt.Sprintf("%s via %s: %v %v, want 503", host, addr, a, err)
	})
	return last
}
