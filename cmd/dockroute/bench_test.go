package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
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
