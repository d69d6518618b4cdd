//go:build e2e

package main

// The deploy harness: a bounded request loop (several concurrent clients,
// each sending its next request when the last one was answered) through a
// real proxy while a routed app goes through a lifecycle event — a compose
// recreate, `docker restart`, a crash under --restart always, one of two
// replicas replaced by hand, a recreate of an app that needs 3 s to become
// healthy. Any answer but 2xx, or a failed connection, fails the test.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// deployClients is how many clients send requests at once.
const deployClients = 4

// loadResult is what a request loop saw.
type loadResult struct {
	mu       sync.Mutex
	sent     int
	failures []string // the first few, as "status body" or the error
	failed   int
	slowest  time.Duration
	wait     func() // returns once the loop stopped and its requests ended
}

func (r *loadResult) note(status int, body string, err error, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	r.slowest = max(r.slowest, took)
	if err == nil && status/100 == 2 {
		return
	}
	r.failed++
	if len(r.failures) < 5 {
		msg := fmt.Sprintf("%d %.80q", status, body)
		if err != nil {
			msg = err.Error()
		}
		r.failures = append(r.failures, time.Now().Format("15:04:05.000")+" "+msg)
	}
}

// loop sends GET / with Host host to base (scheme://host:port) from
// deployClients clients until stop is closed, then waits for the
// requests in flight.
func loop(base, host string, stop <-chan struct{}) *loadResult {
	r := &loadResult{}
	var wg sync.WaitGroup
	for range deployClients {
		wg.Go(func() {
			// A client of its own per loop: keep-alive connections, as a
			// browser or an API client has. The timeout is past the hold.
			c := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
				req.Host = host
				start := time.Now()
				resp, err := c.Do(req)
				status, body := 0, ""
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					status, body = resp.StatusCode, string(b)
				}
				r.note(status, body, err, time.Since(start))
			}
		})
	}
	r.wait = wg.Wait
	return r
}

// deployApp is one app under a lifecycle event: how to start it and the
// event itself.
type deployApp struct {
	name  string
	start func(t *testing.T, host string) // runs the app, routed
	event func(t *testing.T)              // the lifecycle event, returning when Docker has done it
}

// composeApp is a one-service compose project whose every `up` after the
// first recreates the container (its REV changes), as a deploy of a new
// image does.
type composeApp struct {
	dir, project string
	rev          int
}

func (c *composeApp) up(t *testing.T, host, image string, env ...string) {
	t.Helper()
	c.rev++
	var b strings.Builder
	fmt.Fprintf(&b, "version: \"2.4\"\nservices:\n  app:\n    image: %s\n    network_mode: bridge\n    labels: [%q]\n    environment:\n", image, dockertest.TestLabel)
	for _, kv := range append([]string{"VIRTUALHOST=" + host, "PORT=8080", fmt.Sprintf("REV=%d", c.rev)}, env...) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "      %s: %q\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "docker-compose.yml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c.compose(t, "up", "-d")
}

func (c *composeApp) compose(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"-p", c.project}, args...)...)
	cmd.Dir = c.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newComposeApp(t *testing.T) *composeApp {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed (Debian's package docker-compose): the deploy tests recreate with it")
	}
	c := &composeApp{dir: t.TempDir(), project: strings.ReplaceAll(dockertest.Unique("deploy"), "-", "")}
	t.Cleanup(func() { c.compose(t, "down", "-t", "1") })
	return c
}

// deployApps are the lifecycle events of issue 25, each on a host of its
// own (host names are made unique per proxy by the caller).
func deployApps() []deployApp {
	var apps []deployApp
	{
		var c *composeApp
		var host string
		apps = append(apps, deployApp{name: "compose-recreate",
			start: func(t *testing.T, h string) {
				c, host = newComposeApp(t), h
				c.up(t, host, dockertest.HelloImage)
			},
			event: func(t *testing.T) { c.up(t, host, dockertest.HelloImage) },
		})
	}
	{
		var c *composeApp
		var host string
		apps = append(apps, deployApp{name: "compose-recreate-healthcheck-3s",
			start: func(t *testing.T, h string) {
				c, host = newComposeApp(t), h
				c.up(t, host, dockertest.HelloHealthImage, "HEALTHY_AFTER=3s")
			},
			event: func(t *testing.T) { c.up(t, host, dockertest.HelloHealthImage, "HEALTHY_AFTER=3s") },
		})
	}
	{
		var id string
		apps = append(apps, deployApp{name: "docker-restart",
			start: func(t *testing.T, h string) { id = dockertest.Run(t, hello(h)...) },
			event: func(t *testing.T) { dockertest.Docker(t, "restart", id) },
		})
	}
	{
		var id string
		apps = append(apps, deployApp{name: "crash-restart-always",
			start: func(t *testing.T, h string) { id = dockertest.Run(t, hello(h, "--restart", "always")...) },
			event: func(t *testing.T) {
				dockertest.Docker(t, "exec", id, "/hello", "crash")
				// Done when Docker has restarted it.
				eventually(t, 20*time.Second, func() (bool, string) {
					out := dockertest.Docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.Running}}", id)
					return strings.TrimSpace(out) == "1 true", "restarts, running: " + out
				})
			},
		})
	}
	{
		var ids []string
		var host string
		apps = append(apps, deployApp{name: "one-of-two-replaced",
			start: func(t *testing.T, h string) {
				host = h
				ids = []string{dockertest.Run(t, hello(h)...), dockertest.Run(t, hello(h)...)}
			},
			event: func(t *testing.T) {
				dockertest.Docker(t, "stop", ids[0])
				dockertest.Docker(t, "rm", ids[0])
				ids[0] = dockertest.Run(t, hello(host)...)
			},
		})
	}
	return apps
}

// TestDeploysFailNoRequest runs every lifecycle event through every proxy
// under a request loop: no request may fail.
func TestDeploysFailNoRequest(t *testing.T) {
	dockertest.Require(t)
	// The 503 grace keeps a host whose containers all stopped, which is
	// what holding needs; the hold is dockroute's default.
	args := []string{"--unavailable-grace", "1m"}
	type proxy struct {
		name  string
		start func(t *testing.T) (d *proc, base string)
		// only, when set, names the events run through this proxy.
		only []string
	}
	proxies := []proxy{
		{"traefik", func(t *testing.T) (*proc, string) {
			d, tr := startTraefik(t, args...)
			return d, "http://" + tr.Web
		}, nil},
		{"traefik-throttle-2s", func(t *testing.T) (*proc, string) {
			tr := traefiktest.StartThrottled(t, t.TempDir()+"/dynamic", 2*time.Second)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("traefik log:\n%s", tr.Log())
				}
			})
			return startDaemonDir(t, tr.Dir, nil, args...), "http://" + tr.Web
		}, []string{"compose-recreate", "docker-restart"}}, // the throttle matters where the config changes
	}
	for _, bin := range caddytest.Binaries(t) {
		proxies = append(proxies, proxy{"caddy-" + filepath.Base(bin), func(t *testing.T) (*proc, string) {
			port := caddytest.FreePort(t)
			c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
			listen := fmt.Sprintf("127.0.0.1:%d", port)
			// Caddy holds a request itself while it looks the upstreams up.
			dns := fmt.Sprint(caddytest.FreePort(t))
			return startCaddyDaemon(t, c, listen, append(args, "--caddy-dns", dns)...), "http://" + listen
		}, nil})
	}
	var summary []string
	for _, px := range proxies {
		t.Run(px.name, func(t *testing.T) {
			_, base := px.start(t)
			for _, app := range deployApps() {
				if px.only != nil && !slices.Contains(px.only, app.name) {
					continue
				}
				t.Run(app.name, func(t *testing.T) {
					host := dockertest.Unique(app.name) + ".test"
					app.start(t, host)
					waitOK(t, base, host)
					stop := make(chan struct{})
					res := loop(base, host, stop)
					time.Sleep(time.Second)
					began := time.Now()
					app.event(t)
					took := time.Since(began)
					time.Sleep(5 * time.Second)
					close(stop)
					res.wait()
					line := fmt.Sprintf("%-20s %-32s %5d requests, %3d failed, slowest %v (event took %v)", px.name, app.name, res.sent, res.failed, res.slowest.Round(time.Millisecond), took.Round(time.Millisecond))
					summary = append(summary, line)
					t.Log(line)
					if os.Getenv("DEPLOY_LOG") != "" {
						t.Fail()
					}
					if res.failed > 0 {
						t.Errorf("%d of %d requests failed across %s; first: %s", res.failed, res.sent, app.name, strings.Join(res.failures, "; "))
					}
				})
			}
		})
	}
	slices.Sort(summary)
	t.Logf("deploys:\n%s", strings.Join(summary, "\n"))
}

// waitOK waits until host answers 200 through the proxy at base.
func waitOK(t testing.TB, base, host string) {
	t.Helper()
	eventually(t, 20*time.Second, func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, fmt.Sprintf("%s answers %d", host, resp.StatusCode)
	})
}

// TestHoldPastTheLimit: a request for a host whose container stopped is
// held for --hold, then answered 503 with Retry-After, through Traefik
// (the holding endpoint) and Caddy with and without --caddy-dns (Caddy's
// own retries, then its error route; the holding endpoint); a request
// held when the container starts again is answered by it.
func TestHoldPastTheLimit(t *testing.T) {
	dockertest.Require(t)
	args := []string{"--unavailable-grace", "1m", "--hold", "3s"}
	bins := caddytest.Binaries(t)
	bin := bins[len(bins)-1]
	type proxy struct {
		name  string
		start func(t *testing.T) string
	}
	caddyWith := func(extra ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
			listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
			startCaddyDaemon(t, c, listen, append(slices.Clone(args), extra...)...)
			return "http://" + listen
		}
	}
	for _, px := range []proxy{
		{"traefik", func(t *testing.T) string { _, tr := startTraefik(t, args...); return "http://" + tr.Web }},
		{"caddy", caddyWith()},
		{"caddy-dns", caddyWith("--caddy-dns", fmt.Sprint(caddytest.FreePort(t)))},
	} {
		t.Run(px.name, func(t *testing.T) {
			base := px.start(t)
			host := dockertest.Unique("held") + ".test"
			id := dockertest.Run(t, hello(host)...)
			waitOK(t, base, host)
			dockertest.Docker(t, "stop", id)
			get := func() (*http.Response, string, time.Duration) {
				req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
				req.Host = host
				start := time.Now()
				resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, string(b), time.Since(start)
			}
			// The first may still meet the container's last moments; the
			// next is held the whole limit.
			eventually(t, 10*time.Second, func() (bool, string) {
				resp, body, took := get()
				return resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" && took >= 2*time.Second,
					fmt.Sprintf("%d %q Retry-After %q after %v, want 503 with Retry-After after the hold", resp.StatusCode, body, resp.Header.Get("Retry-After"), took)
			})
			go func() {
				time.Sleep(300 * time.Millisecond)
				exec.Command("docker", "start", id).Run()
			}()
			if resp, body, took := get(); resp.StatusCode != 200 || !strings.Contains(body, id[:12]) {
				t.Fatalf("held while the container started: %d %q after %v", resp.StatusCode, body, took)
			}
		})
	}
}

// TestRestartKeepsTheHoldingEndpoint: a restarted dockroute takes up the
// token and port its Traefik file names, so the file stays as it was (no
// Traefik reload of every route for a restart).
func TestRestartKeepsTheHoldingEndpoint(t *testing.T) {
	dockertest.Require(t)
	dir := filepath.Join(t.TempDir(), "dynamic")
	d := startDaemonDir(t, dir, nil, "--unavailable-grace", "1m")
	host := dockertest.Unique("keep") + ".test"
	id := dockertest.Run(t, hello(host)...)
	d.waitServers(t, host, url(t, id, 8080))
	before, err := os.ReadFile(d.file())
	if err != nil || !strings.Contains(string(before), "/.dockroute-hold/") {
		t.Fatalf("no holding endpoint in the file: %v\n%s", err, before)
	}
	ino := func() uint64 {
		fi, err := os.Stat(d.file())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	first := ino()
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemonDir(t, dir, nil, "--unavailable-grace", "1m")
	d2.waitLog(t, "holding requests")
	d2.waitLog(t, "connected")
	time.Sleep(time.Second) // its first publish, which finds the file as it would write it
	after, _ := os.ReadFile(d.file())
	if ino() != first || string(after) != string(before) {
		t.Fatalf("the restart rewrote the file:\nbefore\n%s\nafter\n%s\n%s", before, after, d2.log)
	}
}
