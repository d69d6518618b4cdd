//go:build e2e

package main

// Upstream protocols end to end: containers that serve cleartext HTTP/2
// (gRPC style) or TLS with a self-signed certificate, through a real
// Traefik and real Caddys.

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// everyProxy starts Traefik and every Caddy, each fed by its own
// dockroute with args, and returns name → web address.
func everyProxy(t *testing.T, args ...string) map[string]string {
	t.Helper()
	proxies := map[string]string{}
	tr := traefiktest.Start(t, t.TempDir()+"/dynamic")
	startDaemonDir(t, tr.Dir, nil, args...)
	proxies["traefik"] = tr.Web
	for _, bin := range caddytest.Binaries(t) {
		c := caddytest.Start(t, bin, nil)
		listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, listen, args...)
		proxies[bin] = listen
	}
	return proxies
}

// slowGet asks addr for host's "/" and waits longer than Caddy's
// try_duration (5 s), during which Caddy retries a failing upstream before
// it answers 502.
func slowGet(addr, host string) (int, string, error) {
	return getHost(&http.Client{Timeout: 15 * time.Second}, "http://"+addr, host)
}

// TestUpstreamProtocols: dockroute.proto=h2c reaches the backend over
// HTTP/2 without TLS (VIRTUAL_PROTO=grpc, nginx-proxy's spelling, means
// the same); https reaches a self-signed backend only when the operator
// opted into --upstream-insecure, and fails closed (5xx) otherwise; a plain
// backend beside them still speaks HTTP/1.1.
func TestUpstreamProtocols(t *testing.T) {
	dockertest.Require(t)
	plain := dockertest.Unique("pplain") + ".test"
	h2c := dockertest.Unique("ph2c") + ".test"
	tlsHost := dockertest.Unique("ptls") + ".test"
	dockertest.Run(t, hello(plain)...)
	dockertest.Run(t, hello(h2c, "-e", "PROTO=h2c", "-e", "VIRTUAL_PROTO=grpc")...)
	dockertest.Run(t, hello(tlsHost, "-e", "PROTO=https", "--label", "dockroute.proto=https")...)

	for name, addr := range everyProxy(t, "--upstream-insecure") {
		t.Run(name, func(t *testing.T) {
			waitAnswer(t, addr, plain, 200, "proto http HTTP/1.1")
			waitAnswer(t, addr, h2c, 200, "proto http HTTP/2.0")
			waitAnswer(t, addr, tlsHost, 200, "proto https")
		})
	}
	for name, addr := range everyProxy(t) {
		t.Run(name+"/verified", func(t *testing.T) {
			t.Parallel() // each waits out Caddy's retries
			waitAnswer(t, addr, plain, 200, "proto http HTTP/1.1")
			status, body, err := slowGet(addr, tlsHost)
			if err != nil || status < 500 {
				t.Fatalf("a self-signed https backend without --upstream-insecure answered %d %q %v, want a 5xx", status, body, err)
			}
			t.Logf("self-signed backend, verification on: %d", status)
		})
	}
}
