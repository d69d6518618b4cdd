//go:build e2e

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/output"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// BenchmarkConvergence measures, with the real engine, the time from
// `docker run` returning to the route being in the published file, and the
// same for `docker rm -f`. Reported as ms per direction.
func BenchmarkConvergence(b *testing.B) {
	dockertest.Require(b)
	d := startDaemon(b, nil)
	var up, down time.Duration
	for b.Loop() {
		host := dockertest.Unique("bench") + ".test"
		id := dockertest.Run(b, hello(host)...)
		start := time.Now()
		waitFile(b, d, host, true)
		up += time.Since(start)

		dockertest.Docker(b, "rm", "-f", id)
		start = time.Now()
		waitFile(b, d, host, false)
		down += time.Since(start)
	}
	b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "ms-to-route")
	b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "ms-to-unroute")
}

func waitFile(b testing.TB, d *proc, host string, present bool) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		data, _ := os.ReadFile(d.file())
		if strings.Contains(string(data), "`"+host+"`") == present {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s present=%v not reached", host, present)
		}
	}
}

// BenchmarkTraefikPickup measures how long a real Traefik (file provider,
// watch on, providersThrottleDuration 10 ms as traefiktest sets it; the
// default is 2 s) takes from dockroute's rename of the file to serving the
// new route. Each iteration adds a static route through the routes file.
func BenchmarkTraefikPickup(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	b.Cleanup(backend.Close)
	// Beside 0, 1,000 and 10,000 other routes: how long Traefik takes to
	// load a file of that size again (issue 13 asks for its reload time).
	for _, n := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { pickup(b, backend.URL, n) })
	}
}

func pickup(b *testing.B, backend string, n int) {
	tr := traefiktest.Start(b, b.TempDir()+"/dynamic")
	routes := filepath.Join(b.TempDir(), "routes.yaml")
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf("  other-%d.test: %s\n", i, backend))
	}
	writeFile(b, routes, "routes:\n"+strings.Join(lines, "")+"  first.test: "+backend+"\n")
	d := startDaemonDir(b, tr.Dir, nil, "--routes-file", routes)
	waitFile(b, d, "first.test", true)
	var pickup time.Duration
	for i := 0; b.Loop(); i++ {
		host := fmt.Sprintf("pickup-%d.test", i)
		lines = append(lines, fmt.Sprintf("  %s: %s\n", host, backend))
		writeFile(b, routes, "routes:\n"+strings.Join(lines, ""))
		waitFile(b, d, host, true)
		renamed := time.Now()
		for deadline := renamed.Add(60 * time.Second); ; time.Sleep(time.Millisecond) {
			if s, _, _, err := through("http://"+tr.Web, host, "/"); err == nil && s == 200 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("traefik never served %s", host)
			}
		}
		pickup += time.Since(renamed)
	}
	b.ReportMetric(float64(pickup.Microseconds())/1000/float64(b.N), "ms-rename-to-serve")
}

// traefik10k is a Traefik output writing to a test directory, and the
// backends of 10,000 containers, one host each.
func traefik10k(b *testing.B) (output.Output, []route.Backend) {
	cfg, _ := parseConfig("run", []string{"--traefik-dir", b.TempDir()}, io.Discard)
	o, err := newOutput(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	var bs []route.Backend
	for i := range 10000 {
		bs = append(bs, route.Backend{Host: fmt.Sprintf("app%d.example.com", i), Server: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256)})
	}
	return o, bs
}

// BenchmarkPublishUnchanged10k is a publish of a table equal to the last
// one published, at 10,000 routes: compared, not rendered nor written.
func BenchmarkPublishUnchanged10k(b *testing.B) {
	o, bs := traefik10k(b)
	t := route.Build(bs)
	if _, err := o.Publish(context.Background(), t); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if did, err := o.Publish(context.Background(), t); err != nil || did != output.Unchanged {
			b.Fatalf("an unchanged publish was %s or failed: %v", did, err)
		}
	}
}

// BenchmarkChangePublish10k is the pipeline's cost for a one-container
// change at 10,000 routes, past the quiet window: the table updated with
// the container's new backends, the change rendered, and the file written
// (the Docker side is per event: one inspect at most, and the fleet's
// share is BenchmarkChanges10k).
func BenchmarkChangePublish10k(b *testing.B) {
	o, bs := traefik10k(b)
	routes := route.NewBuilder()
	for i, be := range bs {
		routes.Set(fmt.Sprint(i), []route.Backend{be})
	}
	if _, err := o.Publish(context.Background(), routes.Table()); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		be := bs[i%len(bs)]
		be.Server = fmt.Sprintf("10.1.%d.%d:8080", i/256%256, i%256) // one container moved
		routes.Set(fmt.Sprint(i%len(bs)), []route.Backend{be})
		i++
		if _, err := o.Publish(context.Background(), routes.Table()); err != nil {
			b.Fatal(err)
		}
	}
}
