//go:build e2e

package main

// Docker Swarm on the machine's engine: the test makes it a single-node
// manager and leaves the swarm whatever happens (dockertest.Swarm). The
// proxies run as containers on the services' overlay network, as they do
// in a swarm, publishing their port to the host for the test to use.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// serverCount is how many servers the published file gives host.
func serverCount(t *testing.T, d *proc, host string) int {
	return len(servers(t, d.file())[host])
}

// swarmOverlay makes the engine a single-node swarm for the test and
// returns a new attachable overlay network, after checking the images the
// test runs.
func swarmOverlay(t *testing.T, prefix string, images ...string) string {
	t.Helper()
	for _, img := range images {
		if exec.Command("docker", "image", "inspect", img).Run() != nil {
			t.Fatalf("image %s is missing: run `make image standins` (make test builds them)", img)
		}
	}
	dockertest.Swarm(t)
	net := dockertest.Unique(prefix)
	dockertest.Docker(t, "network", "create", "--driver", "overlay", "--attachable", "--label", dockertest.TestLabel, net)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", net).Run() })
	return net
}

// overlayTraefik runs Traefik on net, reading dir, and returns the
// loopback port it is published at.
func overlayTraefik(t *testing.T, net, dir string) int {
	t.Helper()
	port := caddytest.FreePort(t)
	dockertest.Run(t, "--network", net, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "-v", dir+":/dynamic",
		"traefik:v3", "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--entrypoints.web.address=:80",
		"--providers.file.directory=/dynamic", "--providers.file.watch=true", "--providers.providersThrottleDuration=10ms")
	return port
}

// overlayCaddy runs Caddy on net with its admin API on admin.sock in the
// directory admin (socket mode as given, e.g. "|0666"), and returns the
// loopback port it is published at once the socket is there.
func overlayCaddy(t *testing.T, net, admin, mode string) int {
	t.Helper()
	port := caddytest.FreePort(t)
	writeFile(t, filepath.Join(admin, "caddy.json"), `{"admin":{"listen":"unix//admin/admin.sock`+mode+`"}}`)
	dockertest.Run(t, "--network", net, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "-v", admin+":/admin", "caddy:2", "caddy", "run", "--config", "/admin/caddy.json")
	eventually(t, 15*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(admin, "admin.sock"))
		return err == nil, "caddy's admin socket never appeared"
	})
	return port
}

func TestSwarm(t *testing.T) {
	dockertest.Require(t)
	net := swarmOverlay(t, "swarmnet", "traefik:v3", "caddy:2")

	// Traefik on the overlay, reading dockroute's directory.
	dir := filepath.Join(t.TempDir(), "dynamic")
	os.MkdirAll(dir, 0o755)
	tport := overlayTraefik(t, net, dir)
	d := startDaemonDir(t, dir, nil, "--network", net)
	// Caddy on the overlay, its admin API on a socket in a shared directory.
	admin := t.TempDir()
	cport := overlayCaddy(t, net, admin, "")
	startDaemon(t, nil, "--network", net, "--output", "caddy", "--caddy-admin", "unix/"+filepath.Join(admin, "admin.sock"), "--caddy-listen", ":80", "--caddy-check", "500ms")
	traefikAddr, caddyAddr := fmt.Sprintf("127.0.0.1:%d", tport), fmt.Sprintf("127.0.0.1:%d", cport)

	host := dockertest.Unique("swarm") + ".test"
	svc := dockertest.Service(t, "--name", dockertest.Unique("web"), "--network", net,
		"--label", "dockroute.host="+host, "--label", "dockroute.port=8080", "--replicas", "1", dockertest.HelloImage)
	waitCount := func(n int) time.Duration {
		t.Helper()
		start := time.Now()
		eventually(t, 30*time.Second, func() (bool, string) {
			got := serverCount(t, d, host)
			return got == n, fmt.Sprintf("%s has %d servers, want %d", host, got, n)
		})
		return time.Since(start)
	}

	// By default the service's virtual IP: one server, the swarm balances.
	ran := waitTasks(t, svc, 1)
	waitCount(1)
	t.Logf("service routed at its VIP %v after its task ran", time.Since(ran))
	vip := strings.Split(dockertest.Docker(t, "service", "inspect", "-f", `{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}`, svc), "/")[0]
	if got := servers(t, d.file())[host]; len(got) != 1 || got[0] != "http://"+vip+":8080" {
		t.Fatalf("VIP service routed to %v, want [http://%s:8080]", got, vip)
	}
	if r := traefiktest.Check(t, dir, host)[host]; len(r.Servers) != 1 {
		t.Fatalf("Traefik routes the VIP service to %+v", r)
	}
	// Swarm virtual IPs need the kernel's IPVS, which not every machine
	// has (this project's test machines do not): only then can a request
	// through a proxy reach one.
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		for _, addr := range []string{traefikAddr, caddyAddr} {
			waitAnswer(t, addr, host, 200, "hello from")
		}
	} else {
		t.Log("no IPVS in this kernel: the VIP is checked in the file and by Traefik's router, not through the proxies")
	}

	// Each task (dockroute.lb=tasks), through both proxies, and scaling.
	dockertest.Docker(t, "service", "update", "--detach", "--label-add", "dockroute.lb=tasks", svc)
	waitCount(1)
	for _, addr := range []string{traefikAddr, caddyAddr} {
		waitAnswer(t, addr, host, 200, "hello from")
	}
	dockertest.Docker(t, "service", "scale", "--detach", svc+"=3")
	ran = waitTasks(t, svc, 3)
	waitCount(3)
	t.Logf("scale 1 → 3: 3 servers %v after docker reported the third task running", time.Since(ran))
	for _, addr := range []string{traefikAddr, caddyAddr} {
		seen := map[string]bool{}
		eventually(t, 10*time.Second, func() (bool, string) {
			_, body, _ := caddytest.Get(addr, host, "/")
			if f := strings.Fields(body); len(f) > 2 {
				seen[f[2]] = true
			}
			return len(seen) == 3, fmt.Sprintf("requests through %s reached tasks %v, want 3", addr, seen)
		})
	}

	name := dockertest.Docker(t, "service", "inspect", "-f", "{{.Spec.Name}}", svc)
	out, err := exec.Command(binary, "explain", "--network", net, name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "service "+name+" ("+svc[:12]+"): routed") || strings.Count(string(out), host+" -> ") != 3 {
		t.Fatalf("explain of the service: %v\n%s", err, out)
	}

	// A drained node's tasks go (here the only node: all of them), and come
	// back when it is active again; node events say so.
	node := dockertest.Docker(t, "info", "-f", "{{.Swarm.NodeID}}")
	dockertest.Docker(t, "node", "update", "--availability", "drain", node)
	t.Logf("node drained: its tasks unrouted %v after the drain", waitCount(0))
	dockertest.Docker(t, "node", "update", "--availability", "active", node)
	waitTasks(t, svc, 3)
	waitCount(3)

	// A rolling update, start-first: never no server while a task runs.
	done := make(chan struct{})
	var empty []string
	go func() {
		defer close(done)
		deadline := time.Now().Add(40 * time.Second)
		for time.Now().Before(deadline) {
			if serverCount(t, d, host) == 0 {
				empty = append(empty, time.Now().Format("15:04:05.000"))
			}
			out, _ := exec.Command("docker", "service", "inspect", "-f", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", svc).Output()
			if strings.TrimSpace(string(out)) == "completed" {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	dockertest.Docker(t, "service", "update", "--detach", "--update-order", "start-first", "--update-parallelism", "1", "--env-add", "ROLL=1", svc)
	<-done
	if len(empty) > 0 {
		t.Fatalf("the route had no server during the rolling update at %v", empty)
	}
	waitCount(3)

	dockertest.Docker(t, "service", "scale", "--detach", svc+"=0")
	t.Logf("scale 3 → 0: route gone %v after the scale", waitCount(0))
	waitAnswer(t, traefikAddr, host, 404, "")
	dockertest.Docker(t, "service", "scale", "--detach", svc+"=1")
	waitCount(1)
	dockertest.Docker(t, "service", "rm", svc)
	waitCount(0)
}

// waitTasks waits until n tasks of the service run, and returns when.
func waitTasks(t *testing.T, svc string, n int) time.Time {
	t.Helper()
	eventually(t, 60*time.Second, func() (bool, string) {
		out, _ := exec.Command("docker", "service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", svc).Output()
		got := strings.Count(string(out), "Running")
		return got >= n, fmt.Sprintf("%d tasks of %s run, want %d", got, svc, n)
	})
	return time.Now()
}

// TestSwarmRollingUpdateFailsNoRequest: a one-replica service updated
// stop-first (Swarm's default order) under request loops through Traefik
// and Caddy: no request fails, at its tasks (dockroute.lb=tasks), and at
// the service's virtual IP (dockroute's default) where the kernel has
// IPVS. It is deployed as in a
// swarm: the proxies and dockroute (its image) are containers on the
// service's overlay network, which the host does not reach. While no task
// runs the host is held: by dockroute's holding endpoint for Traefik, by
// Caddy itself with --caddy-dns.
func TestSwarmRollingUpdateFailsNoRequest(t *testing.T) {
	dockertest.Require(t)
	net := swarmOverlay(t, "rollnet", "traefik:v3", "caddy:2", "dockroute/dockroute:dev")
	var sock syscall.Stat_t
	if err := syscall.Stat("/var/run/docker.sock", &sock); err != nil {
		t.Fatal(err)
	}
	// dockroute as a swarm user runs it: the image, on the overlay, with
	// the socket through its group; --filter keeps it to this test's.
	dockroute := func(name, shared string, args ...string) {
		t.Helper()
		dockertest.Run(t, append([]string{"--name", name, "--network", net, "--group-add", strconv.Itoa(int(sock.Gid)),
			"-v", "/var/run/docker.sock:/var/run/docker.sock:ro", "-v", shared + ":/shared", "dockroute/dockroute:dev",
			"run", "--network", net, "--filter", "label=" + dockertest.TestLabel, "--unavailable-grace", "1m"}, args...)...)
	}

	tdir := t.TempDir()
	if err := os.Chown(tdir, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	tport := overlayTraefik(t, net, tdir)
	tname := dockertest.Unique("dr-traefik")
	dockroute(tname, tdir, "--traefik-dir", "/shared", "--hold-listen", ":9494", "--hold-advertise", tname+":9494")

	admin := t.TempDir()
	if err := os.Chmod(admin, 0o777); err != nil {
		t.Fatal(err)
	}
	// The socket is Caddy's (root's); dockroute's user writes to it.
	cport := overlayCaddy(t, net, admin, "|0666")
	cname := dockertest.Unique("dr-caddy")
	dockroute(cname, admin, "--output", "caddy", "--caddy-admin", "unix//shared/admin.sock", "--caddy-listen", ":80", "--caddy-check", "500ms",
		"--caddy-dns", "0.0.0.0:1053", "--caddy-dns-advertise", cname+":1053")
	bases := map[string]string{"traefik": fmt.Sprintf("http://127.0.0.1:%d", tport), "caddy": fmt.Sprintf("http://127.0.0.1:%d", cport)}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{tname, cname} {
				out, _ := exec.Command("docker", "logs", n).CombinedOutput()
				t.Logf("%s:\n%s", n, out)
			}
		}
	})

	// A virtual IP needs the kernel's IPVS to be reached at all (see
	// TestSwarm); this project's test machines have none.
	lbs := []string{"tasks"}
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		lbs = append(lbs, "vip")
	} else {
		t.Log("no IPVS in this kernel: the rolling update is measured at the tasks (dockroute.lb=tasks) only")
	}
	for _, lb := range lbs {
		t.Run(lb, func(t *testing.T) {
			host := dockertest.Unique("roll-"+lb) + ".test"
			svc := dockertest.Service(t, "--name", dockertest.Unique("roll"), "--network", net, "--update-order", "stop-first",
				"--label", "dockroute.host="+host, "--label", "dockroute.port=8080", "--label", "dockroute.lb="+lb,
				"--replicas", "1", dockertest.HelloImage)
			waitTasks(t, svc, 1)
			stop := make(chan struct{})
			results := map[string]*loadResult{}
			for name, base := range bases {
				waitOK(t, base, host)
				results[name] = loop(base, host, stop)
			}
			time.Sleep(time.Second)
			began := time.Now()
			dockertest.Docker(t, "service", "update", "--force", "--detach=false", svc)
			took := time.Since(began)
			time.Sleep(5 * time.Second)
			close(stop)
			for name, res := range results {
				res.wait()
				t.Logf("%-8s %-6s %5d requests, %3d failed, slowest %v (update took %v)", name, lb, res.sent, res.failed, res.slowest.Round(time.Millisecond), took.Round(time.Millisecond))
				if res.failed > 0 {
					t.Errorf("%s: %d of %d requests failed across a stop-first rolling update; first: %s", name, res.failed, res.sent, strings.Join(res.failures, "; "))
				}
			}
		})
	}
}
