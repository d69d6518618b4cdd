//go:build e2e

package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/provider/docker/podmantest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// podURL is a Podman container's published server URL on network.
func podURL(t testing.TB, p *podmantest.Podman, id, network string) string {
	return fmt.Sprintf("http://%s:8080", p.IP(t, id, network))
}

func podHello(host string, extra ...string) []string {
	return append(append([]string{"-e", "VIRTUALHOST=" + host, "-e", "PORT=8080"}, extra...), podmantest.HelloImage)
}

// TestPodmanLifecycle runs the container lifecycle against a real rootful
// Podman (its Docker-compatible API on a socket of its own), as
// TestLifecycle does against Docker. The resync is an hour away, so every
// step is seen through Podman's events alone.
func TestPodmanLifecycle(t *testing.T) {
	p := podmantest.Start(t)
	early := dockertest.Unique("pmearly") + ".test"
	e := p.Run(t, podHello(early)...) // running before dockroute starts
	d := startDaemon(t, nil, "--docker-host", p.Host(), "--resync", "1h")
	d.waitServers(t, early, podURL(t, p, e, "podman"))

	host := dockertest.Unique("pmlife") + ".test"
	a := p.Run(t, podHello(host)...)
	d.waitServers(t, host, podURL(t, p, a, "podman"))
	if body := get(t, podURL(t, p, a, "podman"), host); !strings.Contains(body, "hello from "+a[:12]) {
		t.Fatalf("published server answered %q", body)
	}
	b := p.Run(t, podHello(host)...)
	ua, ub := podURL(t, p, a, "podman"), podURL(t, p, b, "podman")
	d.waitServers(t, host, ua, ub)

	t.Run("pause", func(t *testing.T) {
		p.Podman(t, "pause", a)
		d.waitServers(t, host, ub)
		p.Podman(t, "unpause", a)
		d.waitServers(t, host, ua, ub)
	})
	t.Run("stop and start", func(t *testing.T) {
		p.Podman(t, "stop", "-t", "1", a)
		d.waitServers(t, host, ub)
		p.Podman(t, "start", a)
		ua = podURL(t, p, a, "podman")
		d.waitServers(t, host, ua, ub)
	})
	t.Run("kill", func(t *testing.T) {
		p.Podman(t, "kill", b)
		d.waitServers(t, host, ua)
		p.Podman(t, "start", b)
		ub = podURL(t, p, b, "podman")
		d.waitServers(t, host, ua, ub)
	})
	t.Run("crash", func(t *testing.T) {
		// The app dies on its own (no stop, no kill through Podman).
		pid, err := strconv.Atoi(p.Podman(t, "inspect", "-f", "{{.State.Pid}}", b))
		if err != nil || pid <= 0 {
			t.Fatalf("pid %d %v", pid, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d.waitServers(t, host, ua)
		p.Podman(t, "start", b)
		ub = podURL(t, p, b, "podman")
		d.waitServers(t, host, ua, ub)
	})
	t.Run("network connect and disconnect", func(t *testing.T) {
		n := dockertest.Unique("pmnet")
		p.Podman(t, "network", "create", n)
		p.Podman(t, "network", "connect", n, a)
		d.waitServers(t, host, ub) // on two networks and no --network: refused
		p.Podman(t, "network", "disconnect", n, a)
		d.waitServers(t, host, ua, ub)
	})
	t.Run("rename", func(t *testing.T) {
		name := dockertest.Unique("pmren")
		p.Podman(t, "rename", a, name)
		eventually(t, 10*time.Second, func() (bool, string) {
			out := explainOut(t, "--docker-host", p.Host(), name)
			return strings.Contains(out, name+" ("+a[:12]+"): routed"), out
		})
	})
	t.Run("rm", func(t *testing.T) {
		p.Podman(t, "rm", "-f", a)
		d.waitServers(t, host, ub)
	})
	t.Run("service restarted", func(t *testing.T) {
		p.StopService()
		c := p.RunLocal(t, podHello(host)...) // while the API is down
		p.StartService(t)
		d.waitServers(t, host, ub, podURL(t, p, c, "podman"))
	})
	t.Run("pod", func(t *testing.T) {
		pod := dockertest.Unique("pmpod")
		p.Podman(t, "pod", "create", "--name", pod)
		ph := dockertest.Unique("pmpod") + ".test"
		c := p.Run(t, podHello(ph, "--pod", pod)...)
		d.waitServers(t, ph, podURL(t, p, c, "podman"))
	})
}

// TestPodmanHealth: a container's healthcheck gates its route on Podman as
// on Docker, and a resync (every second here) does not forget what the
// checks said (Podman's container list carries no health), nor a paused
// container (its default list leaves them out).
func TestPodmanHealth(t *testing.T) {
	p := podmantest.Start(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemon(t, nil, "--docker-host", p.Host(), "--resync", "1s", "--metrics-addr", metrics)
	host := dockertest.Unique("pmhealth") + ".test"
	// A healthcheck of a short start period (during one, Podman counts
	// no failure) that the test runs itself: Podman runs checks from
	// systemd timers, and there is no systemd here.
	a := p.Run(t, "--health-cmd", `["/hello","healthcheck"]`, "--health-start-period", "1s", "--health-retries", "1", "--health-interval", "1h",
		"-e", "VIRTUALHOST="+host, "-e", "PORT=8080", podmantest.HelloImage)
	ua := podURL(t, p, a, "podman")
	p.Healthcheck(t, a)
	d.waitServers(t, host, ua)
	steady := func(want ...string) {
		t.Helper()
		for range 3 { // three resyncs
			time.Sleep(time.Second)
			if got := servers(t, d.file())[host]; !slices.Equal(got, want) {
				t.Fatalf("after a resync: servers %v, want %v", got, want)
			}
		}
	}
	steady(ua)
	// The app's /healthz fails from now on; the next check says so.
	time.Sleep(1500 * time.Millisecond) // past the start period
	p.Podman(t, "exec", a, "/hello", "unhealthy")
	p.Healthcheck(t, a)
	d.waitServers(t, host)
	steady()
	p.Podman(t, "exec", a, "/hello", "healthy")
	p.Healthcheck(t, a)
	d.waitServers(t, host, ua)
	steady(ua)

	// Paused, it stays known across resyncs (Podman's default list leaves
	// paused containers out): refused, not forgotten.
	p.Podman(t, "pause", a)
	d.waitServers(t, host)
	steady()
	if n := value(scrape(t, metrics), "dockroute_containers", "state=refused"); n != 1 {
		t.Fatalf("a paused container after resyncs: %v refused containers, want 1", n)
	}
	p.Podman(t, "unpause", a)
	d.waitServers(t, host, ua)
}

// TestPodmanThroughCaddy: a Podman container is served by a real Caddy.
func TestPodmanThroughCaddy(t *testing.T) {
	p := podmantest.Start(t)
	bins := caddytest.Binaries(t)
	c := caddytest.Start(t, bins[len(bins)-1], caddytest.UserConfig(caddytest.FreePort(t)))
	proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	startDaemon(t, nil, "--docker-host", p.Host(), "--output", "caddy", "--caddy-admin", c.Admin, "--caddy-listen", proxy)
	host := dockertest.Unique("pmcaddy") + ".test"
	a := p.Run(t, podHello(host)...)
	waitAnswer(t, proxy, host, 200, "hello from "+a[:12])
	p.Podman(t, "stop", "-t", "1", a)
	waitAnswer(t, proxy, host, 404, "")
}

// TestPodmanRootless: a rootless Podman (as most users run it) leaves its
// containers on no network the host reaches; dockroute, told by the engine
// it is rootless, routes them at their published ports on the host, and
// tells a container that publishes nothing to.
func TestPodmanRootless(t *testing.T) {
	p := podmantest.StartRootless(t)
	d := startDaemon(t, nil, "--docker-host", p.Host(), "--resync", "1h")
	host := dockertest.Unique("pmrootless") + ".test"
	port := caddytest.FreePort(t)
	a := p.Run(t, podHello(host, "-p", fmt.Sprintf("%d:8080", port))...)
	server := fmt.Sprintf("http://127.0.0.1:%d", port)
	d.waitServers(t, host, server)
	if body := get(t, server, host); !strings.Contains(body, "hello from "+a[:12]) {
		t.Fatalf("published server answered %q", body)
	}
	d.waitLog(t, "rootless")

	lone := dockertest.Unique("pmlone")
	p.Run(t, podHello(lone+".test", "--name", lone)...)
	eventually(t, 10*time.Second, func() (bool, string) {
		out := explainOut(t, "--docker-host", p.Host(), lone)
		return strings.Contains(out, "port 8080 is not published") && strings.Contains(out, "-p 8080"), out
	})

	port2 := caddytest.FreePort(t)
	b := p.Run(t, podHello(host, "-p", fmt.Sprintf("%d:8080", port2))...)
	server2 := fmt.Sprintf("http://127.0.0.1:%d", port2)
	d.waitServers(t, host, server, server2)
	// (No pause: rootless Podman cannot pause on cgroup v1, as here.)
	p.Podman(t, "stop", "-t", "1", a)
	d.waitServers(t, host, server2)
	p.Podman(t, "rm", "-f", b)
	d.waitServers(t, host)
}
