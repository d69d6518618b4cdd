package caddy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// BenchmarkCaddyChange is a one-upstream change pushed to a real Caddy
// (each version) holding 100, 1,000 or 10,000 routes: render, the admin
// API's PATCH (a full config load in Caddy) and the read-back, until it
// answers. Issue 13 asks what a change costs Caddy at scale before
// choosing how to feed it. With lookups (--caddy-dns; no lookup server
// runs, as no request comes), the same change reaches Caddy as an answer:
// what it costs dockroute to find nothing to write.
func BenchmarkCaddyChange(b *testing.B) {
	for _, bin := range caddytest.Binaries(b) {
		for _, n := range []int{100, 1000, 10000} {
			for _, lookups := range []bool{false, true} {
				name := fmt.Sprintf("%s/routes=%d", version(bin), n)
				if lookups {
					name += "/lookups"
				}
				b.Run(name, func(b *testing.B) { caddyChange(b, bin, n, lookups) })
			}
		}
	}
}

func caddyChange(b *testing.B, bin string, n int, lookups bool) {
	c := caddytest.Start(b, bin, nil)
	admin, err := NewAdmin(c.Admin)
	if err != nil {
		b.Fatal(err)
	}
	opt := Options{ID: "dockroute", Listen: []string{fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))}}
	if lookups {
		opt.Lookup = &Lookup{Resolver: "udp/127.0.0.1:1053", Refresh: 250 * time.Millisecond}
	}
	p := NewPublisher(admin, opt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	bs := make([]route.Backend, n)
	for i := range bs {
		bs[i] = route.Backend{Host: fmt.Sprintf("app%d.example.com", i), Server: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256)}
	}
	ctx := context.Background()
	if err := p.Publish(ctx, route.Build(bs)); err != nil {
		b.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the first load's log line
	loads := c.Loads()
	var took time.Duration
	for i := 0; b.Loop(); i++ {
		bs[i%n].Server = fmt.Sprintf("10.1.%d.%d:8080", i/256%256, i%256) // one replica moved
		// The daemon's route.Builder makes this table in 0.5 ms; not
		// measured here.
		t := route.Build(bs)
		start := time.Now()
		if err := p.Publish(ctx, t); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
	}
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/change")
	if lookups && c.Loads() != loads {
		b.Fatalf("with lookups, replica changes loaded caddy's config %d times", c.Loads()-loads)
	}
}

// version names a Caddy binary by what it says of itself, or by its file
// name when it does not know (a go install build prints "unknown").
func version(bin string) string {
	out, _ := exec.Command(bin, "version").Output()
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if v == "" || v == "unknown" {
		v = strings.TrimPrefix(filepath.Base(bin), "caddy-")
	}
	return v
}

// BenchmarkNewPlainHost10k is dockroute's share of a new plain host beside
// 10,000 (each version of Caddy, host lookups on): the lookup answers made
// for the new table, the server rendered and found unchanged, no push.
// Host churn is what plain hosts see most; the lookups make it no Caddy
// load, so this is the whole of its cost.
func BenchmarkNewPlainHost10k(b *testing.B) {
	bins := caddytest.Binaries(b)
	c := caddytest.Start(b, bins[len(bins)-1], nil)
	o, err := NewOutput(OutputConfig{Admin: c.Admin, Lookups: true, Check: time.Minute, Options: Options{
		ID: "dockroute", Listen: []string{fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))},
		Lookup: &Lookup{Resolver: "udp/127.0.0.1:1053", Hosts: "127.0.0.1:9", Refresh: 250 * time.Millisecond},
	}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	bs := make([]route.Backend, n, n+1)
	for i := range bs {
		bs[i] = route.Backend{Host: fmt.Sprintf("app%d.example.com", i), Server: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256)}
	}
	ctx := context.Background()
	if _, err := o.Publish(ctx, route.Build(bs)); err != nil {
		b.Fatal(err)
	}
	writes := o.pub.Writes()
	var took time.Duration
	for i := 0; b.Loop(); i++ {
		t := route.Build(append(bs, route.Backend{Host: fmt.Sprintf("new%d.example.com", i), Server: "10.9.0.1:8080"}))
		start := time.Now()
		if _, err := o.Publish(ctx, t); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
	}
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/host")
	if o.pub.Writes() != writes {
		b.Fatalf("new plain hosts wrote caddy's config %d times", o.pub.Writes()-writes)
	}
}
