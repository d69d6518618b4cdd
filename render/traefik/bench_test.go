package traefik

import (
	"fmt"
	"net/netip"
	"testing"

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

// BenchmarkPublishUnchanged10k is the common case of a resync that changes
// nothing: render, compare, no write.
func BenchmarkPublishUnchanged10k(b *testing.B) {
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
