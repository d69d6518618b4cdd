package docker

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// fleetOf runs a fleet of fake engines until the test ends.
func fleetOf(t *testing.T, grace time.Duration, eps map[string]*enginetest.Engine) (*Fleet, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	var members []*Member
	for _, name := range slices.Sorted(maps.Keys(eps)) {
		ep := engine.Endpoint{Name: name, Address: contract.AddrNetwork}
		if strings.HasPrefix(name, "remote") {
			ep = engine.Endpoint{Name: name, Address: contract.AddrPublished, Advertise: "192.0.2.7"}
		}
		members = append(members, &Member{Endpoint: ep, Engine: eps[name]})
	}
	f := NewFleetOf(members, Options{}, time.Hour, grace, slog.New(rec))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("fleet log:\n%s", rec)
		}
	})
	return f, rec
}

func fleetServers(f *Fleet, host string) ([]string, bool) {
	bs, ok := f.Backends()
	var out []string
	for _, b := range bs {
		if b.Host == host {
			out = append(out, b.Server)
		}
	}
	slices.Sort(out)
	return out, ok
}

func waitFleet(t *testing.T, f *Fleet, timeout time.Duration, host string, want ...string) time.Duration {
	t.Helper()
	slices.Sort(want)
	return waitFor(t, timeout, host+" routed to "+strings.Join(want, ","), func() bool {
		got, ok := fleetServers(f, host)
		return ok && slices.Equal(got, want)
	})
}

// Replicas of one host on two engines are one route with both servers; an
// engine that goes away keeps its server for the grace, then loses only
// its own; it comes back when the engine does. The other engine's routes
// are untouched throughout.
func TestFleetMergesAndGraces(t *testing.T) {
	t.Parallel()
	a, b := enginetest.New(), enginetest.New()
	a.Run(app("web", "10.0.0.2"))
	a.Run(app("only-a", "10.0.0.3"))
	other := app("web", "10.1.0.2") // a replica on engine b: its own ID
	other.ID = strings.Repeat("b", 64)
	b.Run(other)
	f, rec := fleetOf(t, 2*time.Second, map[string]*enginetest.Engine{"a": a, "b": b})
	waitFleet(t, f, 5*time.Second, "web.test", "10.0.0.2:8080", "10.1.0.2:8080")

	b.Down()
	lost := time.Now()
	time.Sleep(time.Second)
	if got, ok := fleetServers(f, "web.test"); !ok || len(got) != 2 {
		t.Fatalf("within the grace, the lost engine's server went: %v", got)
	}
	waitFleet(t, f, 5*time.Second, "web.test", "10.0.0.2:8080")
	dropped := time.Since(lost)
	if dropped < 2*time.Second {
		t.Fatalf("the lost engine's route went after %v, before its 2 s grace", dropped)
	}
	waitFleet(t, f, time.Second, "only-a.test", "10.0.0.3:8080")
	waitFor(t, time.Second, "the drop logged", func() bool { return rec.count("dropping its routes") == 1 })
	b.Up()
	waitFleet(t, f, 3*time.Second, "web.test", "10.0.0.2:8080", "10.1.0.2:8080")
	t.Logf("the lost engine's route dropped %v after the engine went (grace 2 s)", dropped)
	states := f.Engines()
	if len(states) != 2 || !states[0].Connected || !states[1].Connected || states[1].Reconnects != 1 {
		t.Fatalf("engine states %+v", states)
	}
}

// The same engine reached twice (two endpoints) is counted once.
func TestFleetSameEngineTwice(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	e.Run(app("web", "10.0.0.2"))
	f, rec := fleetOf(t, time.Minute, map[string]*enginetest.Engine{"a": e, "b": e})
	waitFleet(t, f, 5*time.Second, "web.test", "10.0.0.2:8080")
	if n := len(f.Verdicts()); n != 1 {
		t.Fatalf("%d verdicts for one container", n)
	}
	waitFor(t, time.Second, "the twin engines reported", func() bool { return rec.count("one engine reached twice") == 1 })
}

// A remote engine's containers are routed at their published ports on
// its advertised address; one that publishes nothing is refused, saying
// so; explain says which address was used and why.
func TestFleetPublishedAddresses(t *testing.T) {
	t.Parallel()
	r := enginetest.New()
	pub := app("pub", "10.9.0.2")
	pub.Published = map[uint16]uint16{8080: 32768}
	r.Run(pub)
	unpub := r.Run(app("unpub", "10.9.0.3"))
	local := enginetest.New()
	local.Run(app("here", "10.0.0.2"))
	f, _ := fleetOf(t, time.Minute, map[string]*enginetest.Engine{"remote": r, "local": local})
	waitFleet(t, f, 5*time.Second, "pub.test", "192.0.2.7:32768")
	waitFleet(t, f, time.Second, "here.test", "10.0.0.2:8080")
	var v contract.Verdict
	for _, x := range f.Verdicts() {
		if x.ID == unpub {
			v = x
		}
	}
	if v.Code != "port_not_published" || !strings.Contains(v.Reason, "port 8080 is not published: engine remote's containers are routed at their published ports on 192.0.2.7") || v.Engine != "remote" {
		t.Fatalf("unpublished container on a remote engine: %+v", v)
	}
	vs, err := f.Explain(context.Background(), []string{"pub"})
	if err != nil || len(vs) != 1 || !strings.Contains(strings.Join(vs[0].Info, " "), "published ports on 192.0.2.7, where the proxy reaches engine remote") {
		t.Fatalf("explain of the published container: %+v %v", vs, err)
	}
}

// On a swarm manager the fleet follows services: routed at their VIP, or
// each task with dockroute.lb=tasks; tasks that change without an event
// (on another node) are picked up by the poll after a service event; a
// service removed between its list and its tasks' is just gone; task
// containers are not routed as containers.
func TestFleetFollowsServices(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	e.Manager()
	task := app("web.1.abc", "10.0.1.9")
	task.Labels = map[string]string{"com.docker.swarm.task.id": "abc", "com.docker.swarm.service.id": "s1"}
	e.Run(task) // a task container carries the service's env: not routed itself
	e.SetService(enginetest.Service{ID: "s1", Name: "web", Network: "front", VIP: "10.0.1.2",
		Labels: map[string]string{"dockroute.host": "svc.test", "dockroute.port": "8080"}, Tasks: []string{"10.0.1.9"}})
	f, _ := fleetOf(t, time.Minute, map[string]*enginetest.Engine{"mgr": e})
	waitFleet(t, f, 5*time.Second, "svc.test", "10.0.1.2:8080")
	if got, _ := fleetServers(f, "web.1.abc.test"); len(got) != 0 {
		t.Fatalf("a task container was routed as a container: %v", got)
	}

	e.SetService(enginetest.Service{ID: "s1", Name: "web", Network: "front", VIP: "10.0.1.2",
		Labels: map[string]string{"dockroute.host": "svc.test", "dockroute.port": "8080", "dockroute.lb": "tasks"}, Tasks: []string{"10.0.1.9"}})
	waitFleet(t, f, 2*time.Second, "svc.test", "10.0.1.9:8080")
	// Scaled: the new tasks start later, on other nodes, without events.
	time.Sleep(200 * time.Millisecond)
	e.SetTasks("s1", "10.0.1.9", "10.0.1.10", "10.0.1.11")
	took := waitFleet(t, f, 2*time.Second, "svc.test", "10.0.1.9:8080", "10.0.1.10:8080", "10.0.1.11:8080")
	t.Logf("tasks changed without an event picked up after %v", took)

	e.RemoveService("s1")
	waitFleet(t, f, 2*time.Second, "svc.test")
}
