package docker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
	"github.com/dockroute/dockroute/provider/route"
)

// fakeWatcher follows n synthetic running containers of the fake engine
// through its Docker API (the real client, over HTTP): 10,000 real
// containers do not fit on a 2-core test machine; every behavioural test
// runs against the real engine instead.
func fakeWatcher(b *testing.B, n int) (*Watcher, *enginetest.Engine) {
	e := enginetest.New()
	e.LogLimit = 256
	for i := range n {
		e.Run(enginetest.Container{ID: fmt.Sprintf("%064x", i+1), Name: fmt.Sprintf("c%d", i),
			Env: []string{fmt.Sprintf("VIRTUALHOST=app%d.example.com", i), "PORT=8080"},
			IP:  fmt.Sprintf("10.%d.%d.%d", (i+1)>>16&255, (i+1)>>8&255, (i+1)&255)})
	}
	srv := httptest.NewServer(enginetest.Handler(e))
	b.Cleanup(srv.Close)
	cli, err := engine.Endpoint{Host: "tcp://" + srv.Listener.Addr().String()}.Engine() // dockroute's own client settings
	if err != nil {
		b.Fatal(err)
	}
	return New(cli, Options{}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))), e
}

// BenchmarkFirstSync10k is start-up with 10,000 opted-in containers: one
// list and one inspect each.
func BenchmarkFirstSync10k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		w, _ := fakeWatcher(b, 10000)
		b.StartTimer()
		if err := w.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeriodicResync10k is the safety-net resync once the containers
// are known: a single list call, no inspects.
func BenchmarkPeriodicResync10k(b *testing.B) {
	w, f := fakeWatcher(b, 10000)
	if err := w.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	before := f.Calls("ContainerInspect")
	for b.Loop() {
		if err := w.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(f.Calls("ContainerInspect")-before)/float64(b.N), "inspects/op")
	bs, _ := w.Backends()
	if n := len(route.Build(bs).Routes); n != 10000 {
		b.Fatalf("%d routes, want 10000", n)
	}
}

// BenchmarkTable10k is the cost of computing the table at publish time.
func BenchmarkTable10k(b *testing.B) {
	w, _ := fakeWatcher(b, 10000)
	if err := w.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		backends, _ := w.Backends()
		route.Build(backends)
	}
}

// BenchmarkResolveClaims10k settles the claims of 10,000 containers on
// hosts of their own plus 100 hosts shared by two replicas: the work done
// on every publish.
func BenchmarkResolveClaims10k(b *testing.B) {
	vs := make([]contract.Verdict, 0, 10200)
	for i := range 10000 {
		vs = append(vs, claimant(fmt.Sprintf("%064x", i), fmt.Sprintf("c%d", i), i, route.Edge{}, route.Backend{Host: fmt.Sprintf("app%d.example.com", i)}))
	}
	for i := range 100 {
		for r := range 2 {
			vs = append(vs, claimant(fmt.Sprintf("r%d-%d", i, r), fmt.Sprintf("r%d-%d", i, r), 20000+i, route.Edge{}, route.Backend{Host: fmt.Sprintf("shared%d.example.com", i)}))
		}
	}
	for b.Loop() {
		contract.ResolveClaims(vs, nil, time.Time{})
	}
}

// BenchmarkChanges10k is the fleet's share of a one-container change
// beside 10,000 others: the changed verdict taken, its host settled, its
// backends handed out (Changes), where a publish once gathered and settled
// every verdict (BenchmarkTable10k).
func BenchmarkChanges10k(b *testing.B) {
	w, _ := fakeWatcher(b, 10000)
	if err := w.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	f := NewFleetOf([]*Member{{Endpoint: engine.Endpoint{Name: "local"}}}, Options{}, time.Hour, 0, w.log)
	f.members[0].Watcher = w // the synced one
	if _, ok := f.Changes(); !ok {
		b.Fatal("not publishable after a sync")
	}
	v := w.verdict(fmt.Sprintf("%064x", 5000))
	if v == nil {
		b.Fatal("no such container")
	}
	i := 0
	for b.Loop() {
		moved := *v
		moved.Backends = []route.Backend{v.Backends[0]}
		moved.Backends[0].Server = fmt.Sprintf("10.9.%d.%d:8080", i/256%256, i%256)
		i++
		w.mu.Lock()
		w.setVerdictLocked(v.ID, moved, true)
		w.mu.Unlock()
		if changes, _ := f.Changes(); len(changes) != 1 {
			b.Fatalf("%d changes, want 1", len(changes))
		}
	}
}
