package docker

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
	"github.com/dockroute/dockroute/provider/route"
)

// randomVerdict is a container asking for a few routes on a handful of
// shared hosts, with edge and route settings that differ between
// containers, so that claims refuse some of them; sometimes it is not
// routed at all.
func randomVerdict(r *rand.Rand, id string) contract.Verdict {
	edges := []route.Edge{{}, {TLS: route.TLSOn}}
	v := contract.Verdict{ID: id, Name: "n-" + id, Started: time.Unix(int64(r.IntN(5)), 0), OptedIn: true}
	edge := edges[r.IntN(len(edges))]
	// Like Decide's, one container's routes agree with each other: one
	// edge, one strip setting, one auth group, each host and path once.
	strip, auth := r.IntN(3) == 0, []string{"", "", "staff"}[r.IntN(3)]
	for range r.IntN(3) {
		b := route.Backend{Name: v.Name, Host: fmt.Sprintf("h%d.test", r.IntN(4)), Edge: edge,
			Path: []string{"", "/api"}[r.IntN(2)], Strip: strip, Auth: auth, Server: fmt.Sprintf("10.0.%d.%d:80", r.IntN(3), r.IntN(9))}
		if r.IntN(6) == 0 {
			b = route.Backend{Name: v.Name, Host: b.Host, Edge: route.Edge{EntryPoints: edge.EntryPoints}, TCP: true, Server: b.Server}
		}
		if !slices.ContainsFunc(v.Backends, func(o route.Backend) bool { return o.Host == b.Host && o.Path == b.Path && o.TCP == b.TCP }) {
			v.Backends = append(v.Backends, b)
		}
	}
	if len(v.Backends) == 0 {
		v.Code, v.Reason = "not_opted_in", "no"
	}
	return v
}

// TestChangesAddUp drives the verdicts of a fleet's sources (two
// engines' containers and one engine's services) through thousands of
// random changes — containers arriving, changing and leaving, a
// container seen on both engines (one engine reached twice), engines lost
// and synced again — and checks after each round that what Changes handed
// out so far, applied in order, is exactly the table Backends computes
// from scratch, claims settled. Rounds take the changes of one to a few
// steps at once. With a grace of 0 a lost engine stops counting at once;
// with an hour it keeps counting. With a hold of an hour, a host keeps
// its settings after its claimants leave (Options.Hold); with 0 it does
// not.
func TestChangesAddUp(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		for _, hold := range []time.Duration{0, time.Hour} {
			t.Run(fmt.Sprintf("grace=%v/hold=%v", grace, hold), func(t *testing.T) { changesAddUp(t, grace, hold) })
		}
	}
}

func changesAddUp(t *testing.T, grace, hold time.Duration) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var members []*Member
	for _, name := range []string{"a", "b"} {
		members = append(members, &Member{Endpoint: engine.Endpoint{Name: name}, Engine: enginetest.New()})
	}
	f := NewFleetOf(members, Options{Options: contract.Options{Hold: hold}}, time.Hour, grace, log)
	sw := NewServiceWatcher(nil, Options{}, time.Hour, log)
	members[1].services = sw
	for _, m := range members {
		m.Watcher.markSynced()
		m.Watcher.setConnected(true)
	}
	sw.markSynced()
	r := rand.New(rand.NewPCG(3, 4))
	b := route.NewBuilder()
	for step := range 4000 {
		m := members[r.IntN(2)]
		id := fmt.Sprintf("c%d", r.IntN(14))
		switch op := r.IntN(20); {
		case op == 0: // the engine is lost, or synced again
			if synced, _ := m.Watcher.linkState(); synced {
				m.Watcher.setConnected(false)
			} else {
				m.Watcher.markSynced()
				m.Watcher.setConnected(true)
			}
		case op < 3: // a service
			sw.mu.Lock()
			sid := fmt.Sprintf("s%d", r.IntN(4))
			if r.IntN(3) == 0 {
				sw.verdicts.remove(sid)
			} else {
				sw.verdicts.put(sid, randomVerdict(r, sid))
			}
			sw.mu.Unlock()
		case op < 6:
			m.Watcher.mu.Lock()
			m.Watcher.setVerdictLocked(id, contract.Verdict{}, false)
			m.Watcher.mu.Unlock()
		default:
			m.Watcher.mu.Lock()
			m.Watcher.setVerdictLocked(id, randomVerdict(r, id), true)
			m.Watcher.mu.Unlock()
		}
		if r.IntN(3) != 0 {
			continue // the next round takes this step's changes too
		}
		changes, ok := f.Changes()
		want, wantOK := f.Backends()
		if ok != wantOK {
			t.Fatalf("step %d: Changes says publishable=%v, Backends %v", step, ok, wantOK)
		}
		if !ok {
			continue
		}
		for id, bs := range changes {
			b.Set(id, bs)
		}
		if got, want := b.Table(), route.Build(want); !got.Equal(want) {
			t.Fatalf("step %d: the changes add up to\n%+v\nnot\n%+v", step, got.Routes, want.Routes)
		}
	}
}
