//go:build e2e

package main

// End-to-end tests of --caddy-dns: Caddy looks each route's upstreams up
// from dockroute, so replicas come and go without a Caddy config load.

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// lookupArgs are dockroute's arguments for answering lookups on a free
// loopback port.
func lookupArgs(t *testing.T) []string {
	return []string{"--caddy-dns", fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))}
}

// replicasAnswering returns the hello containers (short IDs) that answered
// n requests for host through the proxy; a failed request counts as "error".
func replicasAnswering(t testing.TB, proxy, host string, n int) []string {
	var who []string
	for range n {
		status, body, err := caddytest.Get(proxy, host, "/")
		id := "error"
		if f := strings.Fields(body); err == nil && status == 200 && len(f) > 2 {
			id = f[2]
		}
		if !slices.Contains(who, id) {
			who = append(who, id)
		}
	}
	slices.Sort(who)
	return who
}

// TestCaddyLookups: with --caddy-dns and every host written
// (--caddy-dns-hosts=false: each route looks its own upstreams up), a
// replica starting and one stopping reach Caddy without any config load,
// on both Caddy versions; the stopping replica gets no new requests within
// the refresh interval of its stop, while it is still running; a new host
// is one load; with dockroute killed, Caddy routes to the upstreams of its
// last load.
func TestCaddyLookups(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
		proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		metrics := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		d := startCaddyDaemon(t, c, proxy, append(lookupArgs(t), "--metrics-addr", metrics, "--caddy-dns-hosts=false")...)
		host := dockertest.Unique("lookup") + ".test"
		// DRAIN: a stopping replica keeps serving for 5 s, so a request
		// sent to it would succeed and show.
		a := dockertest.Run(t, hello(host, "-e", "DRAIN=5s")...)
		waitReplicas(t, "http://"+proxy, host, a)
		writes := c.Writes()

		b := dockertest.Run(t, hello(host, "-e", "DRAIN=5s")...)
		waitReplicas(t, "http://"+proxy, host, a, b)

		stopped := make(chan struct{})
		start := time.Now()
		go func() { dockertest.Docker(t, "stop", "-t", "10", a); close(stopped) }()
		waitReplicas(t, "http://"+proxy, host, b)
		took := time.Since(start)
		select {
		case <-stopped:
			t.Fatal("the stopped replica exited before it was unrouted: the test shows nothing")
		default:
		}
		t.Logf("LOOKUP %s: a stopping replica got its last request within %v of docker stop (quiet window 100ms, refresh 250ms)", bin, took.Round(time.Millisecond))
		// Every request after the switch goes to b, while a still drains.
		if got := replicasAnswering(t, proxy, host, 30); !slices.Equal(got, []string{b[:12]}) {
			t.Fatalf("after the switch: %v", got)
		}
		if took > 2*time.Second {
			t.Fatalf("the stopping replica was still sent requests %v after its stop", took)
		}
		if got := c.Writes() - writes; got != 0 {
			t.Fatalf("replica changes wrote caddy's config %d times, want 0\n%s", got, c.Log())
		}
		fams := scrape(t, metrics)
		if n := value(fams, "dockroute_publishes_total", "result=answered"); n < 2 {
			t.Fatalf("%v publishes by answers alone, want at least 2", n)
		}
		if n := value(fams, "dockroute_caddy_lookups_total", ""); n <= 0 {
			t.Fatalf("dockroute_caddy_lookups_total is %v after requests through looked-up routes", n)
		}
		<-stopped

		// A new host is a config load, which also gives b to Caddy as the
		// route's fallback upstream.
		other := dockertest.Unique("lookup") + ".test"
		o := dockertest.Run(t, hello(other)...)
		waitReplicas(t, "http://"+proxy, other, o)
		if got := c.Writes() - writes; got != 1 {
			t.Fatalf("a new host: %d writes, want 1", got)
		}

		// dockroute gone: no answers; Caddy uses what its last load said.
		d.stop(syscall.SIGKILL)
		time.Sleep(500 * time.Millisecond) // past the refresh
		if got := replicasAnswering(t, proxy, host, 10); !slices.Equal(got, []string{b[:12]}) {
			t.Fatalf("without dockroute: %v", got)
		}
	})
}

// TestStopUnderLoadByLookup is TestDrainUnderLoad and TestAbruptStopUnderLoad
// with --caddy-dns: no request fails while a replica stops, whether it
// drains or exits at once, though Caddy learns of it by lookup.
func TestStopUnderLoadByLookup(t *testing.T) {
	dockertest.Require(t)
	for _, app := range []string{"DRAIN=2s", "ABRUPT=1"} {
		t.Run(app, func(t *testing.T) {
			caddytest.Each(t, func(t *testing.T, bin string) {
				stopUnderLoad(t, bin, lookupArgs(t), "-e", app)
			})
		})
	}
}
