//go:build e2e

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik"
)

// sleepProxy is a proxy dockroute runs with --sleep, and what tells
// whether the proxy's config changed (Traefik's file, Caddy's loads).
type sleepProxy struct {
	name  string
	start func(t *testing.T, args ...string) (d *proc, base string, config func() string)
}

func sleepProxies(t *testing.T) []sleepProxy {
	pxs := []sleepProxy{{"traefik", func(t *testing.T, args ...string) (*proc, string, func() string) {
		d, tr := startTraefik(t, args...)
		return d, "http://" + tr.Web, func() string { b, _ := os.ReadFile(d.file()); return string(b) }
	}}}
	for _, bin := range caddytest.Binaries(t) {
		pxs = append(pxs, sleepProxy{"caddy-" + filepath.Base(bin), func(t *testing.T, args ...string) (*proc, string, func() string) {
			c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
			listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
			d := startCaddyDaemon(t, c, listen, append(args, "--caddy-dns", fmt.Sprint(caddytest.FreePort(t)))...)
			return d, "http://" + listen, func() string { return fmt.Sprintf("%d loads", c.Loads()) }
		}})
	}
	return pxs
}

// running tells whether the container id runs.
func running(t testing.TB, id string) bool {
	return strings.TrimSpace(dockertest.Docker(t, "inspect", "-f", "{{.State.Running}}", id)) == "true"
}

// getHost sends GET / with Host host to base and returns the status and body.
func getHost(c *http.Client, base, host string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestSleepingContainers: with --sleep, a container labelled
// dockroute.idle stays up while requests come, is stopped once idle for
// that long, and is started by the next request: a burst of 100
// concurrent first requests is answered by it, none failing. Through
// Traefik and both Caddys, whose config does not change across sleep and
// wake.
func TestSleepingContainers(t *testing.T) {
	dockertest.Require(t)
	for _, px := range sleepProxies(t) {
		t.Run(px.name, func(t *testing.T) {
			d, base, config := px.start(t, "--unavailable-grace", "1m", "--sleep")
			host := dockertest.Unique("sleepy") + ".test"
			id := dockertest.Run(t, hello(host, "--label", "dockroute.idle=2s")...)
			waitOK(t, base, host)
			c := &http.Client{Timeout: 40 * time.Second}
			// A request every half second for 4 s: never idle for 2 s.
			for range 8 {
				if s, b, err := getHost(c, base, host); err != nil || s != 200 {
					t.Fatalf("awake: %d %q %v", s, b, err)
				}
				time.Sleep(500 * time.Millisecond)
			}
			if !running(t, id) {
				t.Fatalf("put to sleep while requests came:\n%s", d.log)
			}
			before := config()
			eventually(t, 6*time.Second, func() (bool, string) { return !running(t, id), "still running after 2 s idle" })
			d.waitLog(t, "putting to sleep")

			for round := range 2 {
				var wg sync.WaitGroup
				var mu sync.Mutex
				var failed []string
				began := time.Now()
				var slowest time.Duration
				for range 100 {
					wg.Go(func() {
						s, b, err := getHost(c, base, host)
						mu.Lock()
						defer mu.Unlock()
						slowest = max(slowest, time.Since(began))
						if err != nil || s != 200 || !strings.Contains(b, id[:12]) {
							failed = append(failed, fmt.Sprintf("%d %.60q %v", s, b, err))
						}
					})
				}
				wg.Wait()
				t.Logf("round %d: 100 concurrent first requests, %d failed, the last answered after %v", round, len(failed), slowest.Round(time.Millisecond))
				if len(failed) > 0 {
					t.Fatalf("round %d: %d of 100 first requests failed; first: %s", round, len(failed), failed[0])
				}
				if !running(t, id) {
					t.Fatal("answered, but the container is not running")
				}
				// Asleep again once idle, and woken again.
				eventually(t, 6*time.Second, func() (bool, string) { return !running(t, id), "still running after 2 s idle" })
			}
			if after := config(); after != before {
				t.Errorf("the proxy's config changed across sleep and wake:\nbefore\n%s\nafter\n%s", before, after)
			}
		})
	}
}

// TestRestartWakesSleepers: which containers it put to sleep is kept in
// dockroute's memory, so a restarted dockroute starts the stopped
// containers labelled dockroute.idle in its scope (and only those): they
// are routed again, and sleep again once idle. A container put to sleep
// stays routed (down) in the file while dockroute runs.
func TestRestartWakesSleepers(t *testing.T) {
	dockertest.Require(t)
	dir := filepath.Join(t.TempDir(), "dynamic")
	d := startDaemonDir(t, dir, nil, "--unavailable-grace", "1m", "--sleep")
	host := dockertest.Unique("restart-sleepy") + ".test"
	id := dockertest.Run(t, hello(host, "--label", "dockroute.idle=1s")...)
	other := dockertest.Run(t, hello(dockertest.Unique("plain")+".test")...)
	d.waitFileContains(t, traefik.Name(host, ""), true)
	eventually(t, 6*time.Second, func() (bool, string) { return !running(t, id), "not put to sleep" })
	dockertest.Docker(t, "stop", other)
	time.Sleep(time.Second)
	if b, _ := os.ReadFile(d.file()); !strings.Contains(string(b), traefik.Name(host, "")) {
		t.Fatalf("the sleeping container's route is gone from the file:\n%s", b)
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemonDir(t, dir, nil, "--unavailable-grace", "1m", "--sleep", "--hold", "5s")
	eventually(t, 10*time.Second, func() (bool, string) {
		return running(t, id), "not started by the restarted dockroute:\n" + d2.log.String()
	})
	d2.waitLog(t, "starting the stopped containers labelled dockroute.idle")
	if running(t, other) {
		t.Error("a stopped container without dockroute.idle was started")
	}
	// And asleep again once idle.
	eventually(t, 10*time.Second, func() (bool, string) { return !running(t, id), "not put to sleep again" })
}
