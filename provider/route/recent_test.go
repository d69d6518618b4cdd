package route

import (
	"fmt"
	"testing"
	"time"
)

func TestRecentKeepsLostRoutesForTheGrace(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := NewRecent(time.Minute)
	up := Build([]Backend{
		{Name: "a", Host: "a.test", Server: "10.0.0.1:80", Auth: "ops"},
		{Name: "b", Host: "b.test", Server: "10.0.0.2:80"},
		{Name: "t", Host: "t.test", TCP: true, Server: "10.0.0.3:443"},
	})
	if got, next := r.Keep(up, t0); !got.Equal(up) || !next.IsZero() {
		t.Fatalf("with every route up: %+v, next %v", got, next)
	}
	onlyB := Build([]Backend{{Name: "b", Host: "b.test", Server: "10.0.0.2:80"}})
	lost := t0.Add(10 * time.Second)
	got, next := r.Keep(onlyB, lost)
	want := Table{Routes: []Route{{Host: "a.test", Auth: "ops", LastPort: "80"}, onlyB.Routes[0]}}
	if !got.Equal(want) {
		t.Fatalf("a.test lost its server: got %+v, want it kept without servers (and the passthrough gone)", got.Routes)
	}
	if !got.Routes[0].Down() || got.Routes[1].Down() {
		t.Fatalf("Down: %v %v", got.Routes[0].Down(), got.Routes[1].Down())
	}
	if want := lost.Add(time.Minute); !next.Equal(want) {
		t.Fatalf("next expiry %v, want %v (a minute after a.test was found gone)", next, want)
	}
	if len(onlyB.Routes) != 1 {
		t.Fatal("Keep modified its input")
	}
	if got, _ := r.Keep(onlyB, lost.Add(59*time.Second)); len(got.Routes) != 2 {
		t.Fatalf("still within the grace: %+v", got.Routes)
	}
	if got, next := r.Keep(onlyB, lost.Add(time.Minute)); !got.Equal(onlyB) || !next.IsZero() {
		t.Fatalf("after the grace: %+v, next %v; want a.test gone", got.Routes, next)
	}
	// Coming back ends the memory; going again starts a new grace.
	r.Keep(up, t0.Add(2*time.Minute))
	if got, _ := r.Keep(up, t0.Add(2*time.Minute)); !got.Equal(up) {
		t.Fatalf("back up: %+v", got.Routes)
	}
	if got, _ := r.Keep(Table{}, t0.Add(3*time.Minute)); len(got.Routes) != 2 {
		t.Fatalf("both HTTP routes lost: %+v", got.Routes)
	}
}

func TestRecentDisabled(t *testing.T) {
	r := NewRecent(0)
	r.Keep(Build([]Backend{{Name: "a", Host: "a.test", Server: "10.0.0.1:80"}}), time.Now())
	if got, _ := r.Keep(Table{}, time.Now()); len(got.Routes) != 0 {
		t.Fatalf("grace 0 kept %+v", got.Routes)
	}
}

// BenchmarkBuild10k builds the table of 10,000 containers, each its own
// host, plus 100 hosts of two replicas: the table computed on every publish.
func BenchmarkBuild10k(b *testing.B) {
	var bs []Backend
	for i := range 10000 {
		bs = append(bs, Backend{Name: fmt.Sprintf("c%d", i), Host: fmt.Sprintf("app%d.example.com", i), Server: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256)})
	}
	for i := range 100 {
		for r := range 2 {
			bs = append(bs, Backend{Name: fmt.Sprintf("r%d-%d", i, r), Host: fmt.Sprintf("shared%d.example.com", i), Server: fmt.Sprintf("10.1.%d.%d:8080", i, r)})
		}
	}
	for b.Loop() {
		Build(bs)
	}
}

// TestRecentNeverHidesALiveRoute: a path's route that went is not kept as
// a 503 while a live route of its host covers it: requests for the path
// reach that route, as they would without the path's (nginx-proxy does
// the same); a path with no live route over it is kept.
func TestRecentNeverHidesALiveRoute(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := NewRecent(time.Minute)
	r.Keep(Build([]Backend{
		{Name: "web", Host: "a.test", Server: "10.0.0.1:80"},
		{Name: "web4", Host: "a.test", Path: "/web4", Server: "10.0.0.4:80"},
		{Name: "api", Host: "b.test", Path: "/api", Server: "10.0.0.5:80"},
	}), t0)
	onlyRoot := Build([]Backend{{Name: "web", Host: "a.test", Server: "10.0.0.1:80"}})
	got, _ := r.Keep(onlyRoot, t0.Add(time.Second))
	var kept []string
	for _, rt := range got.Routes {
		kept = append(kept, fmt.Sprintf("%s%s down=%v", rt.Host, rt.Path, rt.Down()))
	}
	if fmt.Sprint(kept) != "[a.test down=false b.test/api down=true]" {
		t.Fatalf("routes %v, want a.test/web4 left to a.test's live route and b.test/api kept as 503", kept)
	}
}
