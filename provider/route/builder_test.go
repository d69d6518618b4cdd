package route_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/static"
)

// randomBackends are the backends of one owner: a few, on a handful of
// hosts and paths so that owners share routes, with settings that differ
// so the deciding backend matters.
func randomBackends(r *rand.Rand, owner string) []route.Backend {
	n := r.IntN(4) // none, sometimes
	if r.IntN(8) == 0 {
		n = 20 + r.IntN(20) // an owner with many, as the routes file has
	}
	bs := make([]route.Backend, 0, n)
	for range n {
		b := route.Backend{
			Name:   owner,
			Host:   fmt.Sprintf("h%d.test", r.IntN(6)),
			Path:   []string{"", "", "/api"}[r.IntN(3)],
			TCP:    r.IntN(8) == 0,
			Strip:  r.IntN(2) == 0,
			Proto:  []string{"", "h2c"}[r.IntN(2)],
			Server: fmt.Sprintf("10.0.0.%d:80", r.IntN(5)),
		}
		if b.TCP {
			b.Path, b.Strip, b.Proto = "", false, ""
		}
		bs = append(bs, b)
	}
	return bs
}

// TestBuilderIsBuild: after every one of thousands of random changes
// (owners arriving, changing, leaving; the overriding backends changing)
// the Builder's table is Build's of static.Merge of what is set, route by
// route, and an earlier table it returned is left as it was.
func TestBuilderIsBuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := route.NewBuilder()
	owned := map[string][]route.Backend{}
	var override []route.Backend
	var kept route.Table
	var keptCopy []route.Route
	for step := range 5000 {
		switch r.IntN(10) {
		case 0:
			override = nil
			for _, be := range randomBackends(r, "file") {
				if !be.TCP {
					override = append(override, be)
				}
			}
			b.Override(override)
		default:
			owner := fmt.Sprintf("c%d", r.IntN(12))
			bs := randomBackends(r, owner)
			owned[owner] = bs
			b.Set(owner, bs)
		}
		var all []route.Backend
		for _, o := range slices.Sorted(func(yield func(string) bool) {
			for o := range owned {
				if !yield(o) {
					return
				}
			}
		}) {
			all = append(all, owned[o]...)
		}
		merged, _ := static.Merge(override, all)
		want := route.Build(merged)
		got := b.Table()
		if !got.Equal(want) {
			t.Fatalf("step %d: the Builder's table\n%+v\nis not Build's\n%+v", step, got.Routes, want.Routes)
		}
		if !slices.EqualFunc(kept.Routes, keptCopy, route.Route.Equal) {
			t.Fatalf("step %d: a table returned earlier was modified", step)
		}
		if step%7 == 0 {
			kept = got
			keptCopy = slices.Clone(got.Routes)
			for i := range keptCopy {
				keptCopy[i].Servers = slices.Clone(keptCopy[i].Servers)
			}
		}
	}
}

// TestBuilderUnchangedIsFree: a Set of what an owner already has changes
// nothing, and the table is then the very same.
func TestBuilderUnchangedIsFree(t *testing.T) {
	b := route.NewBuilder()
	bs := []route.Backend{{Name: "a", Host: "a.test", Server: "10.0.0.1:80"}}
	b.Set("a", bs)
	first := b.Table()
	b.Set("a", slices.Clone(bs))
	if second := b.Table(); &second.Routes[0] != &first.Routes[0] {
		t.Fatal("an unchanged Set built a new table")
	}
}

// BenchmarkBuilderRoutesFile10k is a routes file of 10,000 routes given
// to the Builder and built: a walk of all of them for each of its routes
// took 10 s.
func BenchmarkBuilderRoutesFile10k(b *testing.B) {
	var bs []route.Backend
	for i := range 10000 {
		bs = append(bs, route.Backend{Name: "file", Host: fmt.Sprintf("app%d.example.com", i), Server: "10.0.0.1:80"})
	}
	for b.Loop() {
		bl := route.NewBuilder()
		bl.Override(bs)
		if n := len(bl.Table().Routes); n != 10000 {
			b.Fatalf("%d routes", n)
		}
	}
}

// BenchmarkBuilderChange10k is a one-container change beside 10,000
// routes (the table every publish needs), against BenchmarkBuild10k's
// build of the whole fleet.
func BenchmarkBuilderChange10k(b *testing.B) {
	bl := route.NewBuilder()
	for i := range 10000 {
		bl.Set(fmt.Sprintf("c%d", i), []route.Backend{{Name: fmt.Sprintf("c%d", i), Host: fmt.Sprintf("app%d.example.com", i), Server: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256)}})
	}
	bl.Table()
	i := 0
	for b.Loop() {
		i++
		bl.Set("c5000", []route.Backend{{Name: "c5000", Host: "app5000.example.com", Server: fmt.Sprintf("10.1.%d.%d:8080", i/256%256, i%256)}})
		bl.Table()
	}
}
