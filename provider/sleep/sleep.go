// Package sleep puts containers to sleep when idle and wakes them on the
// next request (--sleep, the label dockroute.idle=DURATION).
//
// Idleness is measured where every request of such a container passes:
// dockroute's holding endpoint. A route that sleeps is always sent there
// by the proxy (awake too), and the endpoint tells the Sleeper when each
// request begins and ends. A container is idle when none of its routes
// has a request under way and none began or ended for its dockroute.idle;
// it is then stopped, as `docker stop` does. Checks run every second, so
// a container is stopped between its idle time and a second after it.
//
// A container put to sleep keeps its routes: Keep adds them to each
// table, without servers, so the proxy's config does not change and the
// next request is held by the endpoint, which asks Wake to start the
// container; the request goes to it once it is routed again (running,
// healthy if it has a healthcheck). Which containers are asleep is kept
// in memory: a dockroute that restarts wakes every stopped container
// labelled dockroute.idle in its scope (Run), and they sleep again once
// idle.
package sleep

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/dockroute/dockroute/provider/route"
)

// Label is the label that asks for sleep.
const Label = "dockroute.idle"

// Control starts and stops containers (the Docker fleet).
type Control interface {
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string) error
	ContainerExists(ctx context.Context, id string) (bool, error)
	StoppedWithLabel(ctx context.Context, label string) ([]string, error)
}

type state int8

const (
	awake    state = iota
	stopping       // dockroute asked Docker to stop it
	asleep
	starting // dockroute asked Docker to start it; not routed yet
)

func (s state) String() string {
	return [...]string{"awake", "stopping", "asleep", "starting"}[s]
}

// sleeper is one container that sleeps when idle.
type sleeper struct {
	name     string
	idle     time.Duration
	backends []route.Backend // its HTTP backends as last routed
	state    state
	since    time.Time // when state began
	// wake is set when a request came while it was being stopped: it is
	// started again once stopped.
	wake     bool
	failedAt time.Time // the last start that failed
}

type key struct{ host, path string }

// activity is what the endpoint saw of one route's requests.
type activity struct {
	inflight int
	last     time.Time // the last request's beginning or end
	ids      []string  // the sleepers that serve the route
}

// Sleeper decides which containers sleep, and wakes them.
type Sleeper struct {
	control Control
	log     *slog.Logger
	// changed asks for a publish: a container went to sleep or woke.
	changed func()
	// startWithin is how long a started container may take to be routed
	// before a request may start it again (the hold limit).
	startWithin time.Duration
	now         func() time.Time

	mu       sync.Mutex
	slept    uint64 // containers put to sleep since the start
	woken    uint64 // and woken by a request
	sleepers map[string]*sleeper
	routes   map[key]*activity
	ctx      context.Context // Run's: starts and stops end with it
}

// New returns a Sleeper that starts and stops containers through c.
// changed is called when a publish is due; startWithin is the hold limit.
func New(c Control, startWithin time.Duration, changed func(), log *slog.Logger) *Sleeper {
	return &Sleeper{control: c, log: log, changed: changed, startWithin: startWithin, now: time.Now,
		sleepers: map[string]*sleeper{}, routes: map[key]*activity{}, ctx: context.Background()}
}

// Track takes a container's backends as the route table has them now (nil
// when it has none): one whose backends sleep is followed, and counts as
// awake from then on. A container that lost its backends while dockroute
// stops or starts it keeps them (it is asleep); one that lost them
// otherwise (it stopped or was refused on its own) is no longer followed.
func (s *Sleeper) Track(id string, bs []route.Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var idle time.Duration
	var http []route.Backend
	for _, b := range bs {
		if b.Idle > 0 && !b.TCP {
			idle = max(idle, b.Idle)
			http = append(http, b)
		}
	}
	sl := s.sleepers[id]
	if len(http) == 0 {
		if sl != nil && sl.state == awake {
			s.forget(id, sl)
		}
		return
	}
	woke := false
	switch {
	case sl == nil:
		sl = &sleeper{name: http[0].Name, since: now}
		s.sleepers[id] = sl
		woke = true
	case sl.state == asleep || sl.state == starting:
		s.log.Info("woke", "container", sl.name, "after", now.Sub(sl.since).Round(time.Millisecond), "was", sl.state.String())
		sl.state, sl.since, sl.wake = awake, now, false
		woke = true
	}
	old := sl.backends
	s.unindex(id, sl, false)
	sl.idle, sl.backends = idle, http
	defer s.prune(old)
	for _, b := range http {
		k := key{b.Host, b.Path}
		a := s.routes[k]
		if a == nil {
			a = &activity{last: now}
			s.routes[k] = a
		}
		if woke {
			a.last = now // its idle time starts when it is routed
		}
		a.ids = append(a.ids, id)
	}
}

// forget stops following a container.
func (s *Sleeper) forget(id string, sl *sleeper) {
	s.unindex(id, sl, true)
	delete(s.sleepers, id)
}

// unindex takes the container off its routes' activity, and with prune
// drops the activity of routes left without containers. (Track keeps it:
// a container's backends handed out again must not start its idle time
// over.)
func (s *Sleeper) unindex(id string, sl *sleeper, prune bool) {
	for _, b := range sl.backends {
		if a := s.routes[key{b.Host, b.Path}]; a != nil {
			a.ids = slices.DeleteFunc(a.ids, func(o string) bool { return o == id })
		}
	}
	if prune {
		s.prune(sl.backends)
	}
}

// prune drops the activity of bs's routes that no container serves and
// no request uses.
func (s *Sleeper) prune(bs []route.Backend) {
	for _, b := range bs {
		k := key{b.Host, b.Path}
		if a := s.routes[k]; a != nil && len(a.ids) == 0 && a.inflight == 0 {
			delete(s.routes, k)
		}
	}
}

// Begin counts a request of the route as under way until end is called.
func (s *Sleeper) Begin(host, path string) (end func()) {
	k := key{host, path}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.routes[k]
	if a == nil {
		return func() {}
	}
	a.inflight++
	a.last = s.now()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		a.inflight--
		a.last = s.now()
		if len(a.ids) == 0 && a.inflight == 0 && s.routes[k] == a {
			delete(s.routes, k)
		}
	}
}

// Wake starts the route's sleeping containers; it returns at once.
func (s *Sleeper) Wake(host, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.routes[key{host, path}]
	if a == nil {
		return
	}
	now := s.now()
	for _, id := range a.ids {
		sl := s.sleepers[id]
		switch {
		case sl.state == stopping:
			sl.wake = true
		case sl.state == asleep && now.Sub(sl.failedAt) >= retryStart:
			s.start(id, sl, "a request came")
		}
	}
}

// retryStart is how long after a failed start a request may try again:
// a container that cannot start is not asked to on every request.
const retryStart = 5 * time.Second

// start starts a sleeping container; s.mu is held.
func (s *Sleeper) start(id string, sl *sleeper, why string) {
	sl.state, sl.since = starting, s.now()
	s.woken++
	s.log.Info("waking", "container", sl.name, "because", why)
	go func() {
		err := s.control.StartContainer(s.ctx, id)
		if err == nil {
			return // awake once routed (Track)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if errdefs.IsNotFound(err) && s.sleepers[id] == sl {
			s.log.Info("a sleeping container was removed; its routes go", "container", sl.name)
			s.forget(id, sl)
			s.changed()
			return
		}
		if sl.state == starting {
			sl.state, sl.failedAt = asleep, s.now()
		}
		s.log.Warn("could not wake a sleeping container; held requests for its routes are answered 503 past the hold", "container", sl.name, "err", err)
	}()
}

// stop puts an idle container to sleep; s.mu is held.
func (s *Sleeper) stop(id string, sl *sleeper, idleFor time.Duration) {
	sl.state, sl.since = stopping, s.now()
	s.log.Info("putting to sleep", "container", sl.name, "idle", idleFor.Round(time.Second))
	go func() {
		err := s.control.StopContainer(s.ctx, id)
		s.mu.Lock()
		defer s.mu.Unlock()
		if sl.state != stopping {
			return
		}
		if err != nil {
			s.log.Warn("could not put an idle container to sleep; it stays routed", "container", sl.name, "err", err)
			sl.state, sl.since = awake, s.now()
			s.touch(sl)
			return
		}
		sl.state, sl.since = asleep, s.now()
		s.slept++
		if sl.wake {
			sl.wake = false
			s.start(id, sl, "a request came while it stopped")
		}
	}()
}

// touch starts a container's idle time over.
func (s *Sleeper) touch(sl *sleeper) {
	for _, b := range sl.backends {
		if a := s.routes[key{b.Host, b.Path}]; a != nil {
			a.last = s.now()
		}
	}
}

// idleFor is how long none of sl's routes has had a request (0 while one
// is under way).
func (s *Sleeper) idleFor(sl *sleeper, now time.Time) time.Duration {
	var last time.Time
	for _, b := range sl.backends {
		a := s.routes[key{b.Host, b.Path}]
		if a == nil {
			continue
		}
		if a.inflight > 0 {
			return 0
		}
		if a.last.After(last) {
			last = a.last
		}
	}
	return now.Sub(last)
}

// Check puts to sleep the containers idle for their time, and gives a
// start that never led to a routed container back to sleep, so that the
// next request tries again.
func (s *Sleeper) Check() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, id := range slices.Sorted(maps.Keys(s.sleepers)) {
		sl := s.sleepers[id]
		switch sl.state {
		case awake:
			if d := s.idleFor(sl, now); d >= sl.idle {
				s.stop(id, sl, d)
			}
		case starting:
			if now.Sub(sl.since) > s.startWithin+retryStart {
				s.log.Warn("a woken container was not routed within the hold; the next request starts it again (see `dockroute explain`)", "container", sl.name)
				sl.state, sl.failedAt = asleep, now
			}
		}
	}
}

// Stats says how many containers sleep now (asleep or being put to
// sleep), and how many were put to sleep and woken since the start.
func (s *Sleeper) Stats() (sleeping int, slept, woken uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.sleepers {
		if sl.state != awake {
			sleeping++
		}
	}
	return sleeping, s.slept, s.woken
}

// Describe says, for explain, where the container id stands ("" when it
// does not sleep).
func (s *Sleeper) Describe(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.sleepers[id]
	if sl == nil {
		return ""
	}
	now := s.now()
	ago := now.Sub(sl.since).Round(time.Second)
	switch sl.state {
	case awake:
		return fmt.Sprintf("%s=%v: awake; idle for %v, put to sleep after %v without a request", Label, sl.idle, s.idleFor(sl, now).Round(time.Second), sl.idle)
	case stopping:
		return fmt.Sprintf("%s=%v: being put to sleep (stopped %v ago)", Label, sl.idle, ago)
	case asleep:
		return fmt.Sprintf("%s=%v: asleep since %v ago (dockroute stopped it); its routes stay, and the next request starts it", Label, sl.idle, ago)
	}
	return fmt.Sprintf("%s=%v: waking, started by a request %v ago, not routed yet", Label, sl.idle, ago)
}

// Keep returns t with the routes of sleeping containers added, without
// servers, where t has no live route of theirs: the proxy keeps sending
// their requests to the endpoint, which wakes them. A host another
// container serves now is left to it.
func (s *Sleeper) Keep(t route.Table) route.Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	down := map[key]route.Route{}
	for _, id := range slices.Sorted(maps.Keys(s.sleepers)) {
		sl := s.sleepers[id]
		if sl.state == awake {
			continue
		}
		for _, b := range sl.backends {
			k := key{b.Host, b.Path}
			if _, ok := down[k]; ok {
				continue
			}
			if r, ok := t.Find(b.Host, b.Path); ok && !r.Down() {
				continue
			}
			_, port, _ := net.SplitHostPort(b.Server)
			down[k] = route.Route{Host: b.Host, Path: b.Path, Strip: b.Strip, Edge: b.Edge, Proto: b.Proto,
				Middlewares: b.Middlewares, Auth: b.Auth, Idle: b.Idle, LastPort: port}
		}
	}
	if len(down) == 0 {
		return t
	}
	out := route.Table{Routes: make([]route.Route, 0, len(t.Routes)+len(down))}
	for _, r := range t.Routes {
		if _, ok := down[key{r.Host, r.Path}]; ok && !r.TCP {
			continue // kept down by Recent: the sleeping route replaces it
		}
		out.Routes = append(out.Routes, r)
	}
	for _, r := range down {
		out.Routes = append(out.Routes, r)
	}
	route.Sort(out.Routes)
	return out
}

// Run checks idleness every second until ctx ends. It first wakes the
// stopped containers labelled dockroute.idle (which of them dockroute put
// to sleep before it restarted is not known), and every minute forgets
// the sleeping containers that were removed.
func (s *Sleeper) Run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.wakeStopped(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.Check()
		if n%60 == 0 {
			s.forgetRemoved(ctx)
		}
	}
}

// wakeStopped starts the stopped containers that sleep when idle.
func (s *Sleeper) wakeStopped(ctx context.Context) {
	ids, err := s.control.StoppedWithLabel(ctx, Label)
	if err != nil {
		s.log.Warn("could not list the stopped containers labelled "+Label+"; they stay stopped until started", "err", err)
	}
	if len(ids) == 0 {
		return
	}
	s.log.Info("starting the stopped containers labelled "+Label+": which of them dockroute put to sleep before it restarted is not known, so all wake, and sleep again once idle", "containers", len(ids))
	for _, id := range ids {
		if err := s.control.StartContainer(ctx, id); err != nil {
			s.log.Warn("could not start a stopped container labelled "+Label, "id", id[:min(12, len(id))], "err", err)
		}
	}
}

// forgetRemoved stops following sleeping containers that no longer exist
// (removed while asleep): their routes go.
func (s *Sleeper) forgetRemoved(ctx context.Context) {
	s.mu.Lock()
	var ids []string
	for id, sl := range s.sleepers {
		if sl.state == asleep {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	gone := false
	for _, id := range ids {
		if ok, err := s.control.ContainerExists(ctx, id); err == nil && !ok {
			s.mu.Lock()
			if sl := s.sleepers[id]; sl != nil && sl.state == asleep {
				s.log.Info("a sleeping container was removed; its routes go", "container", sl.name)
				s.forget(id, sl)
				gone = true
			}
			s.mu.Unlock()
		}
	}
	if gone {
		s.changed()
	}
}
