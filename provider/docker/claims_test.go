package docker

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
	"github.com/dockroute/dockroute/provider/route"
)

// claimant is a verdict routing id to targets (contract's tests have the
// same helper: test files are not shared across packages).
func claimant(id, name string, created int, edge route.Edge, targets ...route.Backend) contract.Verdict {
	v := contract.Verdict{ID: id, Name: name, Started: time.Unix(int64(created), 0), OptedIn: true}
	for _, b := range targets {
		b.Name, b.Edge = name, edge
		b.Server = id + ":80"
		v.Backends = append(v.Backends, b)
	}
	return v
}

// claimsFleet is a one-engine fleet whose verdicts a test sets by hand,
// settled as a running daemon settles them (Changes), with the hold.
type claimsFleet struct {
	t   *testing.T
	f   *Fleet
	w   *Watcher
	b   *route.Builder
	log *logRecorder
}

func newClaimsFleet(t *testing.T, hold time.Duration) *claimsFleet {
	rec := &logRecorder{}
	m := &Member{Endpoint: engine.Endpoint{Name: "local"}, Engine: enginetest.New()}
	f := NewFleetOf([]*Member{m}, Options{Options: contract.Options{Hold: hold}}, time.Hour, 0, slog.New(rec))
	m.Watcher.markSynced()
	m.Watcher.setConnected(true)
	return &claimsFleet{t: t, f: f, w: m.Watcher, b: route.NewBuilder(), log: rec}
}

func (c *claimsFleet) set(vs ...contract.Verdict) {
	c.w.mu.Lock()
	for _, v := range vs {
		c.w.setVerdictLocked(v.ID, v, true)
	}
	c.w.mu.Unlock()
}

func (c *claimsFleet) remove(ids ...string) {
	c.w.mu.Lock()
	for _, id := range ids {
		c.w.setVerdictLocked(id, contract.Verdict{}, false)
	}
	c.w.mu.Unlock()
}

// servers publishes the changes and returns who serves host+path
// (container names, from the servers "ID:80").
func (c *claimsFleet) servers(hostPath string) []string {
	c.t.Helper()
	changes, ok := c.f.Changes()
	if !ok {
		c.t.Fatal("fleet not publishable")
	}
	for id, bs := range changes {
		c.b.Set(id, bs)
	}
	var out []string
	for _, r := range c.b.Table().Routes {
		if r.Host+r.Path == hostPath {
			for _, s := range r.Servers {
				out = append(out, strings.TrimSuffix(s, ":80"))
			}
		}
	}
	slices.Sort(out)
	return out
}

// reason is why id's route for hostPath is refused now ("" if it is not).
func (c *claimsFleet) reason(id, hostPath string) string {
	for _, v := range c.f.Verdicts() {
		for _, cf := range v.Conflicts {
			if v.ID == id && cf.Backend.Host+cf.Backend.Path == hostPath {
				return cf.Reason
			}
		}
	}
	return ""
}

// A container whose claim is refused is never said "routed" (it was, at
// Info, then "route refused" 100 ms later: issue 27); the holder is, once;
// the refused one is when the host is settled to it.
func TestRefusedClaimIsNeverSaidRouted(t *testing.T) {
	c := newClaimsFleet(t, 0)
	c.set(claimant("v1", "victim", 100, route.Edge{}, route.Backend{Host: "victim.test", Auth: "staff"}))
	c.servers("victim.test")
	c.set(claimant("i1", "intruder", 200, route.Edge{}, route.Backend{Host: "victim.test"}))
	c.servers("victim.test")
	if n := c.log.count("INFO routed container=intruder"); n != 0 {
		t.Errorf("the refused intruder was said routed %d times:\n%s", n, c.log)
	}
	if n := c.log.count("WARN route refused container=intruder"); n != 1 {
		t.Errorf("the intruder's refusal was logged %d times, want once:\n%s", n, c.log)
	}
	if n := c.log.count("INFO routed container=victim"); n != 1 {
		t.Errorf("the victim was said routed %d times, want once:\n%s", n, c.log)
	}
	c.remove("v1")
	if got := c.servers("victim.test"); !slices.Equal(got, []string{"i1"}) {
		t.Fatalf("with no hold, the host went to %v, want the intruder", got)
	}
	if n := c.log.count("INFO routed container=intruder"); n != 1 {
		t.Errorf("the intruder, settled the host, was said routed %d times, want once:\n%s", n, c.log)
	}
}

// TestClaimsCannotBeWonByTiming plays a hostile tenant against a
// protected host: every way of taking it by timing must fail.
func TestClaimsCannotBeWonByTiming(t *testing.T) {
	guarded := route.Backend{Host: "victim.test", Auth: "staff"}
	open := route.Backend{Host: "victim.test"}
	t.Run("created first, started later", func(t *testing.T) {
		c := newClaimsFleet(t, time.Minute)
		// Claims go by the time a container started, not by its creation.
		ic := running("VIRTUALHOST=victim.test")
		ic.Created, ic.Started = time.Unix(100, 0), time.Unix(300, 0)
		intruder := claimant("i1", "intruder", int(contract.Decide(ic, contract.Options{}).Started.Unix()), route.Edge{}, open)
		c.set(claimant("v1", "victim", 200, route.Edge{}, guarded), intruder)
		if got := c.servers("victim.test"); !slices.Equal(got, []string{"v1"}) {
			t.Fatalf("victim.test served by %v, want the victim only", got)
		}
	})
	t.Run("start-first redeploy", func(t *testing.T) {
		c := newClaimsFleet(t, time.Minute)
		c.set(claimant("v1", "victim-1", 100, route.Edge{}, guarded), claimant("i1", "intruder", 200, route.Edge{}, open))
		c.servers("victim.test")
		c.set(claimant("v2", "victim-2", 300, route.Edge{}, guarded))
		c.servers("victim.test")
		c.remove("v1")
		if got := c.servers("victim.test"); !slices.Equal(got, []string{"v2"}) {
			t.Fatalf("after the redeploy victim.test is served by %v, want the new victim only", got)
		}
	})
	t.Run("stop-first redeploy", func(t *testing.T) {
		c := newClaimsFleet(t, time.Minute)
		c.set(claimant("v1", "victim", 100, route.Edge{}, guarded), claimant("i1", "intruder", 200, route.Edge{}, open))
		c.servers("victim.test")
		c.remove("v1")
		if got := c.servers("victim.test"); len(got) != 0 {
			t.Fatalf("in the gap of a redeploy victim.test is served by %v, want no one", got)
		}
		if why := c.reason("i1", "victim.test"); !strings.Contains(why, "is held with no middlewares and no auth") && !strings.Contains(why, "held with auth group staff by container victim, which left at") {
			t.Errorf("the intruder's refusal: %q", why)
		}
		// The victim's new container has its name: it takes the host back
		// at once, even with other settings.
		c.set(claimant("v2", "victim", 300, route.Edge{}, route.Backend{Host: "victim.test", Auth: "admins"}))
		if got := c.servers("victim.test"); !slices.Equal(got, []string{"v2"}) {
			t.Fatalf("the victim's successor: victim.test served by %v", got)
		}
	})
	t.Run("sub-path", func(t *testing.T) {
		c := newClaimsFleet(t, time.Minute)
		c.set(claimant("i1", "intruder", 100, route.Edge{}, route.Backend{Host: "victim.test", Path: "/login"}),
			claimant("v1", "victim", 200, route.Edge{}, guarded))
		if got := c.servers("victim.test/login"); len(got) != 0 {
			t.Fatalf("an open sub-path of a protected host is served by %v", got)
		}
		if why := c.reason("i1", "victim.test/login"); !strings.Contains(why, "victim.test/login lies under victim.test, which is already routed with auth group staff by container victim") {
			t.Errorf("the sub-path's refusal: %q", why)
		}
		// The same guards are fine: an API behind the same login.
		c.set(claimant("a1", "api", 300, route.Edge{}, route.Backend{Host: "victim.test", Path: "/api", Auth: "staff"}))
		if got := c.servers("victim.test/api"); !slices.Equal(got, []string{"a1"}) {
			t.Fatalf("a guarded sub-path: served by %v", got)
		}
	})
	t.Run("beside a guarded path", func(t *testing.T) {
		// Paths are whole segments: /adminx is beside /admin, not under it.
		c := newClaimsFleet(t, time.Minute)
		c.set(claimant("s1", "shop", 100, route.Edge{}, route.Backend{Host: "shop.test"}),
			claimant("a1", "admin", 150, route.Edge{}, route.Backend{Host: "shop.test", Path: "/admin", Auth: "staff"}),
			claimant("o1", "beside", 200, route.Edge{}, route.Backend{Host: "shop.test", Path: "/adminx"}),
			claimant("i1", "under", 250, route.Edge{}, route.Backend{Host: "shop.test", Path: "/admin/open"}))
		if got := c.servers("shop.test/adminx"); !slices.Equal(got, []string{"o1"}) {
			t.Errorf("shop.test/adminx, beside the guarded /admin: served by %v", got)
		}
		if got := c.servers("shop.test/admin/open"); len(got) != 0 {
			t.Errorf("shop.test/admin/open, under the guarded /admin: served by %v", got)
		}
	})
	t.Run("hold ends", func(t *testing.T) {
		c := newClaimsFleet(t, 50*time.Millisecond)
		c.set(claimant("v1", "victim", 100, route.Edge{}, guarded), claimant("i1", "other", 200, route.Edge{}, open))
		c.servers("victim.test")
		c.remove("v1")
		if got := c.servers("victim.test"); len(got) != 0 {
			t.Fatalf("in the hold victim.test is served by %v", got)
		}
		select {
		case <-c.f.Changed(): // the hold's end wakes the fleet
		case <-time.After(5 * time.Second):
			t.Fatal("the end of the hold did not wake the fleet")
		}
		if got := c.servers("victim.test"); !slices.Equal(got, []string{"i1"}) {
			t.Fatalf("after the hold victim.test is served by %v, want the remaining container", got)
		}
	})
}
