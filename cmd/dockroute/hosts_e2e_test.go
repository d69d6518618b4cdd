//go:build e2e

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// TestPlainHostChurnLoadsNothing: with --caddy-dns on loopback, plain
// hosts (a host and a port) come, scale, restart and go without a single
// Caddy config load, on both Caddys; a host nothing routes answers 404
// (not 502), in its absolute form too; a host with settings of its own
// is one load.
func TestPlainHostChurnLoadsNothing(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
		proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, proxy, "--caddy-dns", fmt.Sprint(caddytest.FreePort(t)))
		first := dockertest.Unique("plain") + ".test"
		a := dockertest.Run(t, hello(first)...)
		waitAnswer(t, proxy, first, 200, a[:12])
		loads := c.Loads()

		// New hosts, a second replica, a restart, a removal.
		var hosts []string
		var ids []string
		for range 4 {
			h := dockertest.Unique("plain") + ".test"
			id := dockertest.Run(t, hello(h)...)
			waitAnswer(t, proxy, h, 200, id[:12])
			hosts, ids = append(hosts, h), append(ids, id)
		}
		b := dockertest.Run(t, hello(first)...)
		waitReplicas(t, "http://"+proxy, first, a, b)
		dockertest.Docker(t, "restart", "-t", "1", ids[0])
		waitAnswer(t, proxy, hosts[0], 200, ids[0][:12])
		dockertest.Docker(t, "rm", "-f", ids[1])
		waitAnswer(t, proxy, hosts[1], 404, "no route for this host")
		waitAnswer(t, proxy, hosts[2]+".", 200, ids[2][:12])
		for _, h := range []string{"never.test", "NEVER.test.", "127.0.0.1"} {
			waitAnswer(t, proxy, h, 404, "no route for this host")
		}
		if got := c.Loads() - loads; got != 0 {
			t.Fatalf("plain host churn: %d Caddy config loads, want 0\n%s", got, c.Log())
		}

		// A host with a path is written: one load.
		withPath := dockertest.Unique("path") + ".test"
		p := dockertest.Run(t, hello(withPath, "-e", "VIRTUAL_PATH=/api")...)
		eventually(t, 10*time.Second, func() (bool, string) {
			s, body, err := caddytest.Get(proxy, withPath, "/api")
			return err == nil && s == 200 && strings.Contains(body, p[:12]), fmt.Sprintf("%s/api: %d %q %v", withPath, s, body, err)
		})
		if got := c.Loads() - loads; got != 1 {
			t.Errorf("a host with a path: %d loads, want 1", got)
		}
		// Its other paths are nobody's.
		if s, _, _ := caddytest.GetAnswered(proxy, withPath, "/other"); s != 404 {
			t.Errorf("%s/other answers %d, want 404", withPath, s)
		}
	})
}
