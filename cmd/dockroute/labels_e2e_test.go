//go:build e2e

package main

// Traefik's Docker labels end to end (--traefik-labels): containers
// labelled for Traefik's Docker provider, routed through a real Traefik
// and real Caddys by dockroute.

import (
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
)

// TestTraefikLabels: hosts joined by ||, a PathPrefix, the service's port
// and an h2c scheme reach the containers in every proxy; without the
// switch the same labels route nothing.
func TestTraefikLabels(t *testing.T) {
	dockertest.Require(t)
	a, b := dockertest.Unique("tla")+".test", dockertest.Unique("tlb")+".test"
	grpc := dockertest.Unique("tlg") + ".test"
	web := dockertest.Run(t,
		"--label", "traefik.enable=true",
		"--label", "traefik.http.routers.web.rule=Host(`"+a+"`) || Host(`"+b+"`)",
		"--label", "traefik.http.routers.api.rule=Host(`"+a+"`) && PathPrefix(`/api`)",
		"--label", "traefik.http.services.web.loadbalancer.server.port=8080",
		dockertest.HelloImage)[:12]
	h2c := dockertest.Run(t, "-e", "LISTEN=9000", "-e", "PROTO=h2c", "--expose", "9000",
		"--label", "traefik.http.routers.g.rule=Host(`"+grpc+"`)",
		"--label", "traefik.http.services.g.loadbalancer.server.port=9000",
		"--label", "traefik.http.services.g.loadbalancer.server.scheme=h2c",
		dockertest.HelloImage)[:12]
	for name, addr := range everyProxy(t, "--traefik-labels") {
		t.Run(name, func(t *testing.T) {
			waitAnswer(t, addr, a, 200, "hello from "+web)
			waitAnswer(t, addr, b, 200, "hello from "+web)
			waitAsk(t, addr, "GET", a, "/api/v1", "", "", func(x answer) bool { return x.status == 200 }, "200 from /api")
			waitAnswer(t, addr, grpc, 200, "hello from "+h2c+" port 9000")
			waitAnswer(t, addr, grpc, 200, "HTTP/2.0")
		})
	}
	// Without --traefik-labels the labels route nothing. A container of
	// dockroute's own contract, routed first, shows dockroute published:
	// Traefik answers 404 for every host before dockroute's first write.
	ctl := dockertest.Unique("tlctl") + ".test"
	ctlID := dockertest.Run(t, hello(ctl)...)[:12]
	for name, addr := range everyProxy(t) {
		t.Run(name+"/off", func(t *testing.T) {
			waitAnswer(t, addr, ctl, 200, "hello from "+ctlID)
			waitAnswer(t, addr, a, 404, "")
		})
	}
}

// TestIPv6Backend: on a dual-stack network, --ip-family 6 routes the
// container's IPv6 address in every proxy (the app sees the proxy
// connect from the network's IPv6 side); auto keeps IPv4.
func TestIPv6Backend(t *testing.T) {
	dockertest.Require(t)
	network := dockertest.Unique("dual")
	dockertest.DualStackNetwork(t, network)
	host := dockertest.Unique("v6") + ".test"
	id := dockertest.Run(t, append([]string{"--network", network}, hello(host)...)...)[:12]
	for family, v6 := range map[string]bool{"6": true, "auto": false} {
		for name, addr := range everyProxy(t, "--network", network, "--ip-family", family) {
			t.Run(family+"/"+name, func(t *testing.T) {
				a := waitAsk(t, addr, "GET", host, "/", "", "", func(a answer) bool { return a.status == 200 }, "200")
				// The proxy's address as the app sees it: [fd…]:port over
				// IPv6, a.b.c.d:port over IPv4 (Docker picks the v4 pool).
				client := a.header.Get("X-Hello-Client")
				if !strings.Contains(a.body, "hello from "+id) || strings.HasPrefix(client, "[fd") != v6 {
					t.Errorf("--ip-family %s: %v client %q, want IPv6 %v", family, a, client, v6)
				}
			})
		}
	}
}
