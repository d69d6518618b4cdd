package sleep

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/dockroute/dockroute/provider/route"
)

// control records starts and stops and answers them with what the test
// sets. It stands in for Docker where a real engine cannot be made to
// answer on cue: a start refused (a socket proxy's 403), a container
// removed between the decision and the call. TestSleepingContainers
// (cmd/dockroute) runs the same Sleeper against a real engine.
type control struct {
	mu       sync.Mutex
	starts   []string
	stops    []string
	startErr error
	done     chan string // each start and stop, once answered
}

func newControl() *control { return &control{done: make(chan string, 16)} }

func (c *control) StartContainer(_ context.Context, id string) error {
	c.mu.Lock()
	c.starts = append(c.starts, id)
	err := c.startErr
	c.mu.Unlock()
	c.done <- "start " + id
	return err
}

func (c *control) StopContainer(_ context.Context, id string) error {
	c.mu.Lock()
	c.stops = append(c.stops, id)
	c.mu.Unlock()
	c.done <- "stop " + id
	return nil
}

func (c *control) ContainerExists(context.Context, string) (bool, error) { return true, nil }
func (c *control) StoppedWithLabel(context.Context, string) ([]string, error) {
	return nil, nil
}

func (c *control) wait(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-c.done:
		if got != want {
			t.Fatalf("docker was asked %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("docker was not asked %q", want)
	}
}

// asleepNow waits for the sleeper to have taken Docker's answer to its
// stop: the stand-in tells the test of the call before the sleeper hears
// back.
func asleepNow(t *testing.T, s *Sleeper, id string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.Describe(id), "asleep"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not asleep after docker stopped it: %s", s.Describe(id))
		}
	}
}

func (c *control) quiet(t *testing.T) {
	t.Helper()
	select {
	case got := <-c.done:
		t.Fatalf("docker was asked %q, want nothing", got)
	case <-time.After(50 * time.Millisecond):
	}
}

// clock is the Sleeper's time, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newSleeper(t *testing.T) (*Sleeper, *control, *clock, *int) {
	c, clk, changed := newControl(), &clock{now: time.Unix(1e9, 0)}, new(int)
	s := New(c, 30*time.Second, func() { *changed++ }, slog.New(slog.DiscardHandler))
	s.now = clk.Now
	return s, c, clk, changed
}

var app = []route.Backend{{Name: "app", Host: "a.test", Idle: time.Minute, Server: "172.17.0.2:8080"}}

func TestIdleContainerSleepsAndKeepsItsRoute(t *testing.T) {
	s, c, clk, _ := newSleeper(t)
	s.Track("id1", app)
	clk.add(59 * time.Second)
	s.Check()
	c.quiet(t)
	// A request under way keeps it awake however long it lasts.
	end := s.Begin("a.test", "")
	clk.add(2 * time.Minute)
	s.Check()
	c.quiet(t)
	end()
	// Re-emitted backends (another container's change) do not reset it.
	clk.add(30 * time.Second)
	s.Track("id1", app)
	clk.add(30 * time.Second)
	s.Check()
	c.wait(t, "stop id1")
	asleepNow(t, s, "id1")
	// Stopped: the watcher sees it go, and its route stays, down, with
	// the settings that make the proxy send it to the endpoint.
	s.Track("id1", nil)
	up := route.Table{Routes: []route.Route{{Host: "b.test", Servers: []string{"172.17.0.3:80"}}}}
	got := s.Keep(up)
	if len(got.Routes) != 2 || got.Routes[0].Host != "a.test" || !got.Routes[0].Down() || !got.Routes[0].Sleeps() || got.Routes[0].LastPort != "8080" {
		t.Fatalf("kept %+v", got.Routes)
	}
	if d := s.Describe("id1"); !strings.Contains(d, "asleep") {
		t.Errorf("explain says %q", d)
	}
	if n, slept, _ := s.Stats(); n != 1 || slept != 1 {
		t.Errorf("stats %d asleep, %d slept", n, slept)
	}
	// A live route of another container on the host wins over it.
	taken := route.Table{Routes: []route.Route{{Host: "a.test", Servers: []string{"172.17.0.9:80"}}}}
	if got := s.Keep(taken); len(got.Routes) != 1 || got.Routes[0].Servers[0] != "172.17.0.9:80" {
		t.Errorf("over a live route: %+v", got.Routes)
	}
	// A down route kept for the grace is replaced, not doubled.
	kept := route.Table{Routes: []route.Route{{Host: "a.test", LastPort: "8080", Idle: time.Minute}}}
	if got := s.Keep(kept); len(got.Routes) != 1 {
		t.Errorf("over a kept route: %+v", got.Routes)
	}

	// The next request wakes it, once however many come.
	s.Wake("a.test", "")
	s.Wake("a.test", "")
	c.wait(t, "start id1")
	c.quiet(t)
	s.Track("id1", app)
	if got := s.Keep(up); len(got.Routes) != 1 {
		t.Errorf("awake, its route is the table's: %+v", got.Routes)
	}
	// Its idle time starts over from the wake.
	clk.add(59 * time.Second)
	s.Check()
	c.quiet(t)
}

// TestRefusedStartIsTriedAgainLater: a start Docker refuses leaves the
// container asleep; a request tries again only after retryStart, not on
// every request.
func TestRefusedStartIsTriedAgainLater(t *testing.T) {
	s, c, clk, _ := newSleeper(t)
	s.Track("id1", app)
	clk.add(time.Minute)
	s.Check()
	c.wait(t, "stop id1")
	asleepNow(t, s, "id1")
	s.Track("id1", nil)
	c.startErr = errors.New("403 Forbidden")
	s.Wake("a.test", "")
	c.wait(t, "start id1")
	time.Sleep(20 * time.Millisecond) // the failure is recorded
	s.Wake("a.test", "")
	c.quiet(t)
	clk.add(retryStart)
	c.startErr = nil
	s.Wake("a.test", "")
	c.wait(t, "start id1")
	// Started but never routed: given back to sleep past the hold, so the
	// next request starts it again.
	clk.add(s.startWithin + retryStart + time.Second)
	s.Check()
	clk.add(retryStart)
	s.Wake("a.test", "")
	c.wait(t, "start id1")
}

// TestRemovedWhileAsleep: a start that finds the container gone drops
// its routes at once and asks for a publish.
func TestRemovedWhileAsleep(t *testing.T) {
	s, c, clk, changed := newSleeper(t)
	s.Track("id1", app)
	clk.add(time.Minute)
	s.Check()
	c.wait(t, "stop id1")
	asleepNow(t, s, "id1")
	s.Track("id1", nil)
	c.startErr = errdefs.ErrNotFound
	before := *changed
	s.Wake("a.test", "")
	c.wait(t, "start id1")
	time.Sleep(20 * time.Millisecond)
	if got := s.Keep(route.Table{}); len(got.Routes) != 0 || *changed == before {
		t.Fatalf("a removed container's routes stay: %+v", got.Routes)
	}
}

// TestStoppedOnItsOwnIsNotFollowed: a container that stops without
// dockroute (a crash, docker stop) is no longer followed: no route is
// kept for it and no request starts it.
func TestStoppedOnItsOwnIsNotFollowed(t *testing.T) {
	s, c, _, _ := newSleeper(t)
	s.Track("id1", app)
	s.Track("id1", nil)
	if got := s.Keep(route.Table{}); len(got.Routes) != 0 {
		t.Fatalf("kept %+v", got.Routes)
	}
	s.Wake("a.test", "")
	c.quiet(t)
}
