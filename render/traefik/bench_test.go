package traefik

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

func table(n int) route.Table {
	backends := make([]route.Backend, n)
	for i := range backends {
		backends[i] = route.Backend{
			Host:   fmt.Sprintf("app%d.example.com", i/2), // two replicas per host
			Server: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 8080).String(),
		}
	}
	return route.Build(backends)
}

// BenchmarkRender10k renders 5,000 hosts with two servers each.
func BenchmarkRender10k(b *testing.B) {
	t := table(10000)
	var size int
	for b.Loop() {
		size = len(Render(t, Options{}))
	}
	b.ReportMetric(float64(size), "bytes")
}

// BenchmarkRenderAndCompare10k is a write that is not known to differ (a
// run's first, a repair, a retry): the whole file rendered and compared
// with the one on disk, which holds it, so nothing is written. (An
// unchanged table renders nothing at all: cmd/dockroute's
// BenchmarkPublishUnchanged10k.)
func BenchmarkRenderAndCompare10k(b *testing.B) {
	t := table(10000)
	p := FilePublisher{Dir: b.TempDir(), Name: "dockroute.yml"}
	if _, err := p.Publish(Render(t, Options{})); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if wrote, err := p.Publish(Render(t, Options{})); err != nil || wrote {
			b.Fatalf("wrote=%v err=%v", wrote, err)
		}
	}
}

// BenchmarkRendererChange10k is a Renderer's cost for a one-route change
// beside the 5,000 hosts of BenchmarkRender10k: a host arriving, then
// leaving.
func BenchmarkRendererChange10k(b *testing.B) {
	t := table(10000)
	more := table(10001)
	var rd Renderer
	rd.Render(t, Options{})
	i := 0
	for b.Loop() {
		if i++; i%2 == 0 {
			rd.Render(t, Options{})
		} else {
			rd.Render(more, Options{})
		}
	}
}

// BenchmarkReplaceFile is the file's share of a publish: a rendered file
// of 1,000 or 10,000 routes (250 KB, 2.5 MB) written and renamed over the
// last one, again and again, in a directory of the file system the tests
// run on (t.TempDir). Besides the mean, it reports the median and the
// 99th percentile of one replacement, where the disk shows.
func BenchmarkReplaceFile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			var rd [2]Renderer // two versions of the file, one route apart
			rd[0].Update(table(2*n), Options{})
			rd[1].Update(table(2*n+1), Options{})
			p := FilePublisher{Dir: b.TempDir(), Name: "dockroute.yml"}
			var took []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if err := p.WriteFrom(&rd[i%2]); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkRouters10k is what a publish with --traefik-api hands the
// delivery check: the routers of 5,000 hosts (0.75 ms when it spelled and
// sorted Traefik's names).
func BenchmarkRouters10k(b *testing.B) {
	var rd Renderer
	rd.Render(table(10000), Options{})
	for b.Loop() {
		rd.Routers()
	}
}
