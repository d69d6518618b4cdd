//go:build e2e

package main

// Several Docker engines into one proxy: the machine's engine and a second,
// real one in a network namespace of its own (dockertest.Engine2), standing
// for another host whose containers the proxy reaches at their published
// ports.

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// TestTwoEngines routes one replica on each engine to the same host
// through a real Traefik. The second engine stopped as a service stops
// (its containers first): its replica leaves at once and the first keeps
// serving; started again: back. Crashed (kill -9, its containers still
// running): its replica is kept for the grace, then dropped; the first is
// never touched. /healthz stays 200 throughout, naming the lost engine.
func TestTwoEngines(t *testing.T) {
	dockertest.Require(t)
	e2 := dockertest.StartEngine2(t, false)
	host := dockertest.Unique("twoeng") + ".test"
	local := dockertest.Run(t, hello(host)...)
	remote := e2.Run(t, append([]string{"--restart", "always", "-p", "18080:8080"}, hello(host)...)...)

	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	engines := "unix:///var/run/docker.sock," + e2.Host() + "?addr=published&advertise=" + e2.Addr + "&name=node2"
	_, tr := startTraefik(t, "--docker-host", engines, "--engine-grace", "3s", "--metrics-addr", addr)
	web := "http://" + tr.Web
	start := time.Now()
	waitReplicas(t, web, host, local, remote)
	t.Logf("both replicas served %v after start", time.Since(start))

	// A service stop: dockerd stops its containers, then goes.
	e2.Stop(syscall.SIGTERM)
	stopped := time.Now()
	waitReplicas(t, web, host, local)
	t.Logf("service stop: the remote replica left %v after the engine was told to stop", time.Since(stopped))
	waitHealthzWithin(t, 5*time.Second, addr, 200, "ok, but engines node2 are unreachable")

	e2.Start(t)
	started := time.Now()
	waitReplicas(t, web, host, local, remote)
	t.Logf("engine back: the remote replica served %v after the engine answered", time.Since(started))

	// A crash: the containers keep running; dockroute keeps the replica
	// for the grace (3 s), then drops it, and only it.
	e2.Stop(syscall.SIGKILL)
	crashed := time.Now()
	time.Sleep(time.Second)
	waitReplicas(t, web, host, local, remote) // kept: it still runs
	waitReplicas(t, web, host, local)
	if took := time.Since(crashed); took < 3*time.Second {
		t.Fatalf("the crashed engine's replica was dropped after %v, before the 3 s grace", took)
	}
	t.Logf("crash: the remote replica dropped %v after the engine died (grace 3 s)", time.Since(crashed))
	e2.Start(t)
	waitReplicas(t, web, host, local, remote)
	if code, body := healthz(addr); code != 200 || strings.Contains(body, "unreachable") {
		t.Fatalf("/healthz after both engines are back: %d %q", code, body)
	}
}

// TestTwoInstances: two dockroutes following the same engine write
// byte-identical Traefik files, and against one Caddy whose config holds
// every host (--caddy-dns off) cause no more reloads than one alone, plus
// at most one: the second finds Caddy already serving what it would push.
// (With lookups, each dockroute answers on a port of its own, which its
// server in Caddy names: two on one Caddy need a --caddy-server each.)
func TestTwoInstances(t *testing.T) {
	dockertest.Require(t)
	a, b := startDaemon(t, nil), startDaemon(t, nil)
	var hosts []string
	for range 3 {
		host, id := a.routedHello(t, "twin")
		b.waitServers(t, host, url(t, id, 8080))
		hosts = append(hosts, host)
	}
	if fa, fb := mustRead(t, a.file()), mustRead(t, b.file()); string(fa) != string(fb) {
		t.Fatalf("two instances wrote different files:\n%s\n---\n%s", fa, fb)
	}

	c := caddytest.Start(t, caddytest.Binaries(t)[0], nil)
	listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	changes := func(n int) int {
		before := c.Loads()
		for range n {
			host := dockertest.Unique("load") + ".test"
			id := dockertest.Run(t, hello(host)...)
			waitAnswer(t, listen, host, 200, "hello from "+id[:12])
			time.Sleep(300 * time.Millisecond) // let both instances settle
		}
		return c.Loads() - before
	}
	startCaddyDaemon(t, c, listen, "--caddy-dns", "off")
	waitAnswer(t, listen, hosts[0], 200, "hello from")
	alone := changes(5)
	startCaddyDaemon(t, c, listen, "--caddy-dns", "off")
	time.Sleep(time.Second)
	two := changes(5)
	t.Logf("Caddy loads for 5 changes: %d with one instance, %d with two", alone, two)
	if two > alone+1 {
		t.Fatalf("two instances caused %d Caddy loads for 5 changes, one alone %d", two, alone)
	}
}

// TestTLSEngine follows a remote engine over tcp:// with TLS, with the
// client certificates as the docker CLI reads them (tls=DIR), and routes
// its container at its published port on the engine's address (the
// defaults for tcp://). A container that publishes nothing is refused,
// saying so.
func TestTLSEngine(t *testing.T) {
	dockertest.Require(t)
	e2 := dockertest.StartEngine2(t, true)
	host := dockertest.Unique("tlseng") + ".test"
	remote := e2.Run(t, append([]string{"-p", "18081:8080"}, hello(host)...)...)
	unpub := e2.Run(t, hello(dockertest.Unique("unpub")+".test")...)
	d := startDaemon(t, nil, "--docker-host", e2.TCP+"?tls="+e2.ClientCerts)
	d.waitServers(t, host, "http://"+e2.Addr+":18081")
	if body := get(t, "http://"+e2.Addr+":18081", host); !strings.Contains(body, "hello from "+remote[:12]) {
		t.Fatalf("the published address answered %q", body)
	}
	out, err := exec.Command(binary, "explain", "--docker-host", e2.TCP+"?tls="+e2.ClientCerts, unpub).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "port 8080 is not published: engine "+e2.Addr+"'s containers are routed at their published ports on "+e2.Addr) {
		t.Fatalf("explain of an unpublished remote container: %v\n%s", err, out)
	}
}
