//go:build e2e

package main

// End-to-end tests of --output caddy: the dockroute binary, real containers
// and a real Caddy process per version in DOCKROUTE_CADDY.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

func startCaddyDaemon(t *testing.T, c *caddytest.Caddy, listen string, extra ...string) *proc {
	return startDaemon(t, nil, append([]string{"--output", "caddy", "--caddy-admin", c.Admin, "--caddy-listen", listen, "--caddy-check", "500ms"}, extra...)...)
}

// waitAnswer polls through Caddy until host answers with status and a body
// containing body.
func waitAnswer(t testing.TB, addr, host string, status int, body string) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		s, b, err := caddytest.Get(addr, host, "/")
		return err == nil && s == status && strings.Contains(b, body), fmt.Sprintf("%s via %s: answer %d %q %v, want %d %q", host, addr, s, b, err, status, body)
	})
}

func userPart(t *testing.T, c *caddytest.Caddy) any {
	raw, err := c.Config("/config/apps/http/servers/user")
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(raw, &v)
	return v
}

func TestCaddyEndToEnd(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		userPort, ourPort := caddytest.FreePort(t), caddytest.FreePort(t)
		c := caddytest.Start(t, bin, caddytest.UserConfig(userPort))
		before := userPart(t, c)
		proxy := fmt.Sprintf("127.0.0.1:%d", ourPort)
		startCaddyDaemon(t, c, proxy)
		host := dockertest.Unique("caddy") + ".test"

		a := dockertest.Run(t, hello(host)...)
		b := dockertest.Run(t, hello(host)...)
		waitAnswer(t, proxy, host, 200, "hello from "+b[:12])
		seen := map[string]int{}
		for range 20 {
			_, body, err := caddytest.GetAnswered(proxy, host, "/")
			if err != nil {
				t.Fatal(err)
			}
			seen[strings.Fields(body)[2]]++
		}
		if seen[a[:12]] == 0 || seen[b[:12]] == 0 {
			t.Fatalf("requests reached %v, want both replicas %s and %s", seen, a[:12], b[:12])
		}

		// Once dockroute has pushed the change, the other replica serves
		// everything. (No request failing while a replica stops is the
		// drain feature's test.)
		dockertest.Docker(t, "stop", "-t", "1", a)
		waitReplicas(t, "http://"+proxy, host, b)
		for range 10 {
			if s, body, err := caddytest.GetAnswered(proxy, host, "/"); err != nil || s != 200 || !strings.Contains(body, b[:12]) {
				t.Fatalf("with one replica stopped: %d %q %v", s, body, err)
			}
		}
		dockertest.Docker(t, "stop", "-t", "1", b)
		waitAnswer(t, proxy, host, 404, "no route")

		// Caddy crashes and comes back with only its own config file: the
		// check brings dockroute's routes back.
		dockertest.Docker(t, "start", a)
		waitAnswer(t, proxy, host, 200, "hello from "+a[:12])
		c.Restart(t, caddytest.UserConfig(userPort))
		start := time.Now()
		waitAnswer(t, proxy, host, 200, "hello from "+a[:12])
		t.Logf("routes back %v after Caddy restarted empty (check interval 500ms)", time.Since(start).Round(time.Millisecond))

		if after := userPart(t, c); !reflect.DeepEqual(before, after) {
			t.Fatalf("the user's server changed:\nbefore %v\nafter  %v", before, after)
		}
		waitAnswer(t, fmt.Sprintf("127.0.0.1:%d", userPort), "any", 200, "user says hi")
	})
}

// TestCaddyBurst starts 50 containers at once and reports how many config
// loads Caddy received and how long until every host answered. Then it
// pauses them all and unpauses them together: a burst of 50 changes
// within a fraction of a second, which must reach Caddy in a few loads.
// (Starts are a burst only on an engine quick to start containers: one
// that takes 0.5 s a start spreads 50 over half a minute, and each is
// then rightly published on its own.)
func TestCaddyBurst(t *testing.T) {
	dockertest.Require(t)
	const n = 50
	caddytest.Each(t, func(t *testing.T, bin string) {
		ourPort := caddytest.FreePort(t)
		c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
		proxy := fmt.Sprintf("127.0.0.1:%d", ourPort)
		d := startCaddyDaemon(t, c, proxy)
		waitAnswer(t, proxy, "nothing.test", 404, "no route") // first (empty) push done
		loadsBefore := c.Writes()

		prefix := dockertest.Unique("burst")
		start := time.Now()
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { ids[i] = dockertest.Run(t, hello(fmt.Sprintf("%s-%d.test", prefix, i))...) })
		}
		wg.Wait()
		started := time.Since(start)
		for i := range n {
			waitAnswer(t, proxy, fmt.Sprintf("%s-%d.test", prefix, i), 200, "hello from")
		}
		all := time.Since(start)
		t.Logf("BURST %s: %d containers started in %v; all answering through Caddy after %v; Caddy config loads: %d",
			bin, n, started.Round(time.Millisecond), all.Round(time.Millisecond), c.Writes()-loadsBefore)

		dockertest.Docker(t, append([]string{"pause"}, ids...)...)
		waitAnswer(t, proxy, fmt.Sprintf("%s-%d.test", prefix, n-1), 404, "")
		time.Sleep(time.Second) // the pauses' publishes done
		loadsBefore = c.Writes()
		start = time.Now()
		for _, id := range ids {
			wg.Go(func() { dockertest.Docker(t, "unpause", id) })
		}
		wg.Wait()
		unpaused := time.Since(start)
		for i := range n {
			waitAnswer(t, proxy, fmt.Sprintf("%s-%d.test", prefix, i), 200, "hello from")
		}
		loads := c.Writes() - loadsBefore
		t.Logf("BURST %s: %d containers unpaused in %v; all answering after %v; Caddy config loads: %d",
			bin, n, unpaused.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), loads)
		// The unpauses land over ~3 s here (4.8 s in a loaded CI run,
		// which then took 13 loads); the coalescer publishes at most
		// 500 ms after a burst's first change, so about one load per
		// 500 ms of unpausing is batching; one per container would be 50.
		if allowed := max(n/4, int(unpaused/(400*time.Millisecond))+3); loads > allowed {
			t.Fatalf("%d containers unpaused at once caused %d Caddy loads: pushes are not batched\n%s", n, loads, d.log)
		}
	})
}

// TestBareCaddy starts Caddy exactly as the README's first command does —
// `caddy run`, no flags, no config (its config is null) — and dockroute with
// its default --caddy-admin: dockroute's server must arrive and route a
// container, on both Caddy versions. Before, creating it failed with 500
// forever (a POST of the server without the "apps" level).
func TestBareCaddy(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		caddytest.StartBare(t, bin)
		listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		d := startDaemon(t, nil, "--output", "caddy", "--caddy-listen", listen)
		host := dockertest.Unique("bare") + ".test"
		id := dockertest.Run(t, hello(host)...)
		waitAnswer(t, listen, host, 200, "hello from "+id[:12])
		if strings.Contains(d.log.String(), "level=ERROR") {
			t.Fatalf("errors on the way:\n%s", d.log)
		}
	})
}

// TestCaddyListenTaken: --caddy-listen on an address another server of
// Caddy's config has (a packaged Caddy's Caddyfile serves :80) is said
// once, naming that server and what to do, and not every second.
func TestCaddyListenTaken(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		port := caddytest.FreePort(t)
		c := caddytest.Start(t, bin, caddytest.UserConfig(port))
		d := startCaddyDaemon(t, c, fmt.Sprintf("127.0.0.1:%d", port))
		d.waitLog(t, "is taken by Caddy's server user, from the rest of Caddy's config")
		time.Sleep(3 * time.Second) // three retries or so
		logs := d.log.String()
		if n := strings.Count(logs, "publish failed"); n != 1 {
			t.Errorf("%d publish failures logged in 3 s, want 1:\n%s", n, logs)
		}
		if strings.Contains(logs, "looking for the route it refuses") {
			t.Errorf("dockroute looked for a route to blame:\n%s", logs)
		}
		if a, _ := c.Config("/id/user-route"); len(a) == 0 {
			t.Error("the user's route is gone")
		}
	})
}

// TestTwoCaddyWritersAreNamed: two dockroutes with different routes on one
// Caddy (the same --caddy-server) replaced each other's server at every
// check, each a full Caddy reload, logged only at Warn. Now the fight is
// named as an error, and the put-backs (and so the loads) stop.
func TestTwoCaddyWritersAreNamed(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.StartBare(t, bin)
		listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		a := startCaddyDaemon(t, c, listen)
		host := dockertest.Unique("fight") + ".test"
		dockertest.Run(t, hello(host)...)
		waitAnswer(t, listen, host, 200, "hello from")
		// The other one routes nothing: its server has no route for host.
		b := startCaddyDaemon(t, c, listen, "--filter", "label=dockroute.fight=none")
		eventually(t, 20*time.Second, func() (bool, string) {
			logs := a.log.String() + b.log.String()
			return strings.Contains(logs, "another writer keeps replacing dockroute's server in Caddy"), "no fight named:\n" + logs
		})
		time.Sleep(2 * time.Second) // the last put-backs before the fight was named
		before := c.Loads()
		time.Sleep(5 * time.Second)
		if n := c.Loads() - before; n > 1 {
			t.Errorf("Caddy loaded %d configs in 5 s once the fight was named; want the put-backs held off", n)
		}
	})
}

// TestCaddyChecksQuietly: Caddy logs every admin request at Info, and a
// check every --caddy-check made 120 lines in 8 minutes of a quiet Caddy.
// While nothing changes the interval grows to 6 checks' worth; meanwhile
// a Caddy on this host is probed at dockroute's listen address (a bare
// connect, not logged), so one restarted without dockroute's server still
// gets it back within about one --caddy-check, twice in a row.
func TestCaddyChecksQuietly(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.StartBare(t, bin)
		listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, listen) // --caddy-check 500ms
		host := dockertest.Unique("quiet") + ".test"
		dockertest.Run(t, hello(host)...)
		waitAnswer(t, listen, host, 200, "hello from")
		gets := func() int { return strings.Count(c.Log(), `"method":"GET"`) }
		before := gets()
		time.Sleep(8 * time.Second)
		// At a steady 500 ms: 16. Growing: 1, 2, 3 s then every 3 s: 4-5.
		if n := gets() - before; n > 7 {
			t.Errorf("%d admin reads in 8 s of a quiet Caddy; want the checks to thin out", n)
		}
		for i := range 2 {
			if i > 0 {
				time.Sleep(7 * time.Second) // the checks thin out again
			}
			c.Restart(t, nil)
			start := time.Now()
			waitAnswer(t, listen, host, 200, "hello from")
			took := time.Since(start)
			t.Logf("routes back %v after Caddy restarted without them", took.Round(time.Millisecond))
			// The checks are 3 s apart by now; the probe is every 500 ms.
			if took > 1200*time.Millisecond {
				t.Errorf("routes back only %v after a restart; want within about one --caddy-check (500ms)", took.Round(time.Millisecond))
			}
		}
	})
}
