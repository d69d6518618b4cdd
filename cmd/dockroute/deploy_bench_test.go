//go:build e2e

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// BenchmarkWarmPath measures proxy → app latency (keep-alive, sequential
// GETs to one hello container) with holding on (the default) and off
// (--hold 0), through Traefik and the current Caddy (with --caddy-dns):
// holding must cost nothing once a container is ready. Both setups run
// side by side and requests alternate between them, so the machine's
// noise falls on both alike. Reported as p50 and p99 in µs, per setup.
func BenchmarkWarmPath(b *testing.B) {
	dockertest.Require(b)
	proxies := benchProxies(b)
	for _, px := range proxies {
		b.Run(px.name, func(b *testing.B) {
			on := px.start(b, "--unavailable-grace", "1m")
			off := px.start(b, "--unavailable-grace", "1m", "--hold", "0")
			host := dockertest.Unique("warm") + ".test"
			dockertest.Run(b, hello(host)...)
			waitOK(b, on, host)
			waitOK(b, off, host)
			c := &http.Client{Timeout: 5 * time.Second}
			send := func(base string) time.Duration {
				req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
				req.Host = host
				start := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				return time.Since(start)
			}
			for range 500 { // warm the connections and the proxies up
				send(on)
				send(off)
			}
			var withHold, without []time.Duration
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					withHold = append(withHold, send(on))
				} else {
					without = append(without, send(off))
				}
			}
			for _, m := range []struct {
				name string
				took []time.Duration
			}{{"hold", withHold}, {"nohold", without}} {
				slices.Sort(m.took)
				b.ReportMetric(float64(m.took[len(m.took)/2].Microseconds()), m.name+"-p50-µs")
				b.ReportMetric(float64(m.took[len(m.took)*99/100].Microseconds()), m.name+"-p99-µs")
			}
		})
	}
}

// benchProxy is a proxy a benchmark starts, fed by a dockroute of its own
// run with args; start returns the proxy's base URL.
type benchProxy struct {
	name  string
	start func(b *testing.B, args ...string) string
}

// benchProxies are Traefik (10 ms throttle) and the current Caddy, with
// lookups on a port of its own.
func benchProxies(b *testing.B) []benchProxy {
	proxies := []benchProxy{{"traefik", func(b *testing.B, args ...string) string {
		tr := traefiktest.Start(b, b.TempDir()+"/dynamic")
		startDaemonDir(b, tr.Dir, nil, args...)
		return "http://" + tr.Web
	}}}
	if bins := caddytest.Binaries(b); len(bins) > 0 {
		bin := bins[len(bins)-1]
		proxies = append(proxies, benchProxy{"caddy", func(b *testing.B, args ...string) string {
			c := caddytest.Start(b, bin, caddytest.UserConfig(caddytest.FreePort(b)))
			listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))
			startDaemon(b, nil, append([]string{"--output", "caddy", "--caddy-admin", c.Admin, "--caddy-listen", listen,
				"--caddy-dns", fmt.Sprint(caddytest.FreePort(b))}, args...)...)
			return "http://" + listen
		}})
	}
	return proxies
}

// BenchmarkTraefikDefaultThrottle measures, through a real Traefik with its
// default providersThrottleDuration (2 s), the time from `docker run`
// returning to Traefik serving the new container's host: the first change
// after a quiet spell is applied at once, unless something else took the
// throttle's slot (dockroute's temporary file did: 2.1 s). Iterations
// are 3 s apart, so each starts outside the last one's throttle.
func BenchmarkTraefikDefaultThrottle(b *testing.B) {
	dockertest.Require(b)
	tr := traefiktest.StartThrottled(b, b.TempDir()+"/dynamic", 2*time.Second)
	startDaemonDir(b, tr.Dir, nil)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		time.Sleep(3 * time.Second)
		b.StartTimer()
		host := dockertest.Unique("throttle") + ".test"
		dockertest.Run(b, hello(host)...)
		start := time.Now()
		for deadline := start.Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if s, _, _, err := through("http://"+tr.Web, host, "/"); err == nil && s == 200 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("traefik never served %s", host)
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-run-to-serve")
}

// BenchmarkSleeping measures, through Traefik and the current Caddy (with
// --caddy-dns), what --sleep costs:
//
//   - warm: proxy → app p50/p99 of a container labelled dockroute.idle
//     (its requests go through dockroute's holding endpoint, which counts
//     them) beside one that is not, on the same daemon, requests
//     alternating between the two;
//   - cold: one request to the container asleep, until its answer, against
//     the container's own ready time (the Docker API's start, then GETs
//     straight to its address every 2 ms until one is answered), measured
//     each iteration right before: cold-minus-ready is dockroute's cost.
func BenchmarkSleeping(b *testing.B) {
	dockertest.Require(b)
	proxies := benchProxies(b)
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	c := &http.Client{Timeout: 40 * time.Second}
	send := func(base, host string) time.Duration {
		start := time.Now()
		s, body, err := getHost(c, base, host)
		if err != nil || s != 200 {
			b.Fatalf("%s: %d %q %v", host, s, body, err)
		}
		return time.Since(start)
	}
	for _, px := range proxies {
		b.Run(px.name+"/warm", func(b *testing.B) {
			base := px.start(b, "--unavailable-grace", "1m", "--sleep")
			sleepy, plain := dockertest.Unique("sleepy")+".test", dockertest.Unique("plain")+".test"
			dockertest.Run(b, hello(sleepy, "--label", "dockroute.idle=1h")...)
			dockertest.Run(b, hello(plain)...)
			waitOK(b, base, sleepy)
			waitOK(b, base, plain)
			for range 500 {
				send(base, sleepy)
				send(base, plain)
			}
			var viaHold, direct []time.Duration
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					viaHold = append(viaHold, send(base, sleepy))
				} else {
					direct = append(direct, send(base, plain))
				}
			}
			reportPercentiles(b, "sleepy", viaHold)
			reportPercentiles(b, "plain", direct)
		})
		b.Run(px.name+"/cold", func(b *testing.B) {
			base := px.start(b, "--unavailable-grace", "1m", "--sleep")
			host := dockertest.Unique("cold") + ".test"
			id := dockertest.Run(b, hello(host, "--label", "dockroute.idle=1s")...)
			waitOK(b, base, host)
			asleep := func() {
				eventually(b, 10*time.Second, func() (bool, string) { return !running(b, id), "not put to sleep" })
				time.Sleep(200 * time.Millisecond) // past the stop's last events
			}
			// Five wakes per iteration: one takes seconds (the idle time
			// and the stop), so a 1 s benchtime would give one sample.
			var cold, ready []time.Duration
			for b.Loop() {
				for range 5 {
					b.StopTimer()
					asleep()
					ready = append(ready, readyTime(b, cli, id))
					asleep()
					b.StartTimer()
					cold = append(cold, send(base, host))
				}
			}
			reportPercentiles(b, "cold", cold)
			reportPercentiles(b, "ready", ready)
			slices.Sort(cold)
			slices.Sort(ready)
			b.ReportMetric(float64((cold[len(cold)/2] - ready[len(ready)/2]).Milliseconds()), "cold-minus-ready-p50-ms")
		})
	}
}

// readyTime starts the container id through the Docker API and returns
// how long it took to answer a GET at its own address.
func readyTime(b *testing.B, cli *client.Client, id string) time.Duration {
	ctx := context.Background()
	start := time.Now()
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		b.Fatal(err)
	}
	ci, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	url := "http://" + net.JoinHostPort(ci.NetworkSettings.IPAddress, "8080") + "/"
	hc := &http.Client{Timeout: time.Second}
	for deadline := start.Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(start)
			}
		}
	}
	b.Fatalf("%s never answered at %s", id[:12], url)
	return 0
}

// reportPercentiles reports p50 and p99 of took, in µs below 10 ms, else ms.
func reportPercentiles(b *testing.B, name string, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	p50, p99 := took[len(took)/2], took[len(took)*99/100]
	if p99 < 10*time.Millisecond {
		b.ReportMetric(float64(p50.Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(p99.Microseconds()), name+"-p99-µs")
		return
	}
	b.ReportMetric(float64(p50.Milliseconds()), name+"-p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), name+"-p99-ms")
}
