// Package docker is the Docker provider: it follows a Docker Engine's events
// and keeps a verdict (routed, or why not) for every running container. A
// Fleet hands out the verdicts that changed since the last publish
// (Changes), claims settled on the hosts they touch; what it hands out
// always adds up to what the current verdicts give from scratch, so the
// table is a function of the containers as last seen, not of the event
// history (with two bounded memories: claims' tenure and, in the daemon,
// the routes kept as 503).
package docker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/route"
)

// Watcher follows one Docker Engine. Create it with New and start it with
// Run; the way it follows (and recovers) is in follow.go.
type Watcher struct {
	link
	engine engine.Engine
	opt    Options
	log    *slog.Logger
	resync time.Duration

	mu sync.Mutex
	// ident is what the engine said it is at the last sync that asked
	// (nil: not known yet); Podman and rootless engines are followed and
	// reached differently (identity.go).
	ident *engine.Identity
	// identFailed tells that the last attempt to ask failed: the sync is
	// then retried soon, which asks again.
	identFailed bool
	// cache holds the running or paused containers by ID, as pointers
	// (a map of 10,000 whole containers kept a container-sized slot for
	// every place it had room for); a cached container is never
	// modified, only replaced.
	cache map[string]*contract.Container
	// kills are the signals sent to them since they started.
	kills    kills
	verdicts verdictSet
	// retryAt is when containers Docker failed to inspect are tried again
	// (zero: none failed), and retryWait how long the next wait is.
	retryAt   time.Time
	retryWait time.Duration
	// flights are the events' inspects under way, by container ID;
	// inspectSlots bounds them and broken reports an engine that stopped
	// answering one, wakeMoved a retry it scheduled (inspects.go).
	// outOfScope are the containers noted as outside the scope.
	outOfScope   map[string]bool
	flights      map[string]*flight
	inspectSlots chan struct{}
	broken       chan error
	wakeMoved    chan struct{}
}

// New returns a watcher of engine that resyncs in full every resync
// interval.
func New(engine engine.Engine, opt Options, resync time.Duration, log *slog.Logger) *Watcher {
	return &Watcher{
		engine:       engine,
		opt:          opt,
		log:          log,
		resync:       resync,
		link:         newLink(),
		cache:        map[string]*contract.Container{},
		kills:        kills{},
		verdicts:     newVerdictSet(),
		flights:      map[string]*flight{},
		outOfScope:   map[string]bool{},
		inspectSlots: make(chan struct{}, eventInspects),
		broken:       make(chan error, 1),
		wakeMoved:    make(chan struct{}, 1),
	}
}

// Backends returns the backends of every routed container, and whether
// they describe Docker as it is now. They do not before the first full
// sync, nor from the moment the engine is lost until a full sync after it
// answers again: an engine that restarted gives its containers new
// addresses and old ones to other containers, so what was true before must
// never be published again. Callers keep what they last published instead.
//
// These are this engine's alone: claims on hosts shared with other
// containers are settled across every engine by a Fleet.
func (w *Watcher) Backends() ([]route.Backend, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	backends := make([]route.Backend, 0, w.verdicts.len())
	for _, v := range w.verdicts.byID {
		backends = append(backends, v.Backends...)
	}
	synced, _ := w.linkState()
	return backends, synced
}

// state reports the verdicts, whether they describe the engine as it is
// now (see Backends), and since when the engine is lost (zero: it is not,
// or was never synced).
func (w *Watcher) state() (vs []contract.Verdict, synced bool, lostAt time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	synced, lostAt = w.linkState()
	return w.verdicts.values(), synced, lostAt
}

// SetOptions changes the operator's choices and re-decides every known
// container from the cache, without asking Docker.
func (w *Watcher) SetOptions(opt Options) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opt = opt
	w.redecideLocked(time.Now())
}

// Verdicts returns the current verdicts sorted by container name.
func (w *Watcher) Verdicts() []contract.Verdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sortVerdicts(w.verdicts.values())
}

// Sync lists the running containers and rebuilds every verdict, with the
// stops under way read from Docker's event log. Containers already known
// are refreshed from the list alone (their env and ports cannot change);
// only new ones are inspected, so a periodic sync of thousands of
// containers is one list call. A container Docker fails to inspect is left
// out with a logged reason, and tried again soon; every other one is
// synced. Sync fails, changing nothing, only when the list does.
func (w *Watcher) Sync(ctx context.Context) error {
	w.identify(ctx)
	w.mu.Lock()
	known, scope, podman := maps.Clone(w.cache), w.opt.Scope, w.ident != nil && w.ident.Podman
	w.mu.Unlock()
	list, err := listRunning(ctx, w.engine, scope, podman)
	if err != nil {
		return err
	}

	next := make(map[string]*contract.Container, len(list))
	failed := map[string]contract.Verdict{}
	// Of a container to inspect, only its ID and name are kept, so that
	// the list itself can be collected while the inspects run: decoded,
	// a list of 10,000 containers was 17 MB.
	var fresh []listed
	// Whose health the list did not say (Podman's): installed, they take
	// it from the container as known then, which an event's inspect may
	// have changed while the list was read.
	quiet := map[string]bool{}
	for _, s := range list {
		if c, ok := known[s.ID]; ok {
			r := engine.Refresh(*c, s)
			next[s.ID] = &r
			if !s.SaysHealth() {
				quiet[s.ID] = true
			}
		} else {
			fresh = append(fresh, listed{s.ID, s.Name()})
		}
	}
	for i, r := range inspectAll(ctx, w.engine, fresh) {
		l := fresh[i]
		switch {
		case r.err != nil:
			failed[l.id] = inspectFailed(l.id, l.name, r.err)
		case r.c != nil:
			r.c.ID = l.id // one copy of the ID for the cache, its verdict and the table
			next[l.id] = r.c
		}
	}
	now := time.Now()
	ks, err := recentKills(ctx, w.engine, next, now)
	if err != nil {
		// Keep what the event stream said; the next sync tries again.
		w.log.Warn("could not read recent kills from docker's event log; stops under way are taken from the event stream only", "err", err)
		ks = nil
	}
	w.replace(next, failed, ks, quiet, now)
	return nil
}

// listRunning lists the running (and paused) containers in scope. Docker
// lists both by default; Podman lists paused ones only when asked (and
// refuses a "restarting" filter), and a paused container missing from a
// sync was taken for removed.
func listRunning(ctx context.Context, e engine.Engine, scope Scope, podman bool) ([]engine.Entry, error) {
	f := scope.args()
	if !podman {
		return engine.List(ctx, e, container.ListOptions{Filters: f})
	}
	f.Add("status", "running")
	f.Add("status", "paused")
	return engine.List(ctx, e, container.ListOptions{All: true, Filters: f})
}

// listed is a container a sync must inspect.
type listed struct{ id, name string }

// inspected is an inspect's result: the container (nil when it no longer
// exists) or what failed.
type inspected struct {
	c   *contract.Container
	err error
}

// inspectAll inspects the listed containers, a few at a time; results are
// in the order of list.
func inspectAll(ctx context.Context, e engine.Engine, list []listed) []inspected {
	out := make([]inspected, len(list))
	sem := make(chan struct{}, engine.InspectConcurrency)
	var wg sync.WaitGroup
	for i, l := range list {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, found, err := engine.Inspect(ctx, e, l.id)
			if found {
				out[i].c = &c
			}
			out[i].err = err
		})
	}
	wg.Wait()
	return out
}

// replace installs a complete new set of containers. ks, when not nil,
// replaces the kills known so far. The containers in quiet take their
// health from the cache as it is now: the list said nothing of it.
func (w *Watcher) replace(next map[string]*contract.Container, failed map[string]contract.Verdict, ks kills, quiet map[string]bool, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range quiet {
		if cur, ok := w.cache[id]; ok && cur.Health != next[id].Health {
			c := *next[id]
			c.Health = cur.Health
			next[id] = &c
		}
	}
	changed := false
	for id := range w.verdicts.byID {
		_, running := next[id]
		_, failing := failed[id]
		if !running && !failing {
			changed = w.setVerdictLocked(id, contract.Verdict{}, false) || changed
		}
	}
	if ks != nil {
		w.kills = ks
	}
	for id := range w.kills {
		if _, ok := next[id]; !ok {
			delete(w.kills, id)
		}
	}
	w.cache = next
	for id := range w.flights {
		w.inFlightLocked(id) // its answer may predate the list
	}
	for id, c := range next {
		changed = w.setVerdictLocked(id, w.decideLocked(*c, now), true) || changed
	}
	for id, v := range failed {
		changed = w.setVerdictLocked(id, v, true) || changed
	}
	w.scheduleRetryLocked(len(failed) > 0 || w.identFailed, now)
	changed = w.markSynced() || changed
	if changed {
		w.notify()
	}
}

// cached returns the known container of id.
func (w *Watcher) cached(id string) (contract.Container, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.cache[id]; ok {
		return *c, true
	}
	return contract.Container{}, false
}

// update installs what one inspect found, for events that arrived at
// received.
func (w *Watcher) update(id string, c contract.Container, found bool, now, received time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updateLocked(id, c, found, now, received)
}

func (w *Watcher) updateLocked(id string, c contract.Container, found bool, now, received time.Time) {
	if found && !w.opt.Scope.Matches(c) {
		found = false // out of scope is as good as gone
		w.noteOutOfScopeLocked(c)
	}
	var v contract.Verdict
	if found {
		w.cache[id] = &c
		v = w.decideLocked(c, now)
	} else {
		delete(w.cache, id)
		delete(w.kills, id)
	}
	if w.setVerdictLocked(id, v, found) {
		w.notifySince(received)
	}
}

// noteOutOfScopeLocked says once, at Info, why a container that asks to
// be routed is outside the scope: with --network auto, one started on
// another network was ignored without a word.
func (w *Watcher) noteOutOfScopeLocked(c contract.Container) {
	if _, optedIn, _ := contract.ParseRequest(c.Env, c.Labels, w.opt.Options); !optedIn || w.outOfScope[c.ID] {
		return
	}
	if len(w.outOfScope) > 10000 {
		clear(w.outOfScope) // bounded: a note may come again, never grow without end
	}
	w.outOfScope[c.ID] = true
	w.log.Info("not routed", "container", c.Name, "id", contract.Short(c.ID), "reason", "outside dockroute's scope: "+w.opt.Scope.Why(c))
}

// inspectFailed records that an inspect failed. A known container keeps
// its verdict until the retry (a full sync, which needs no inspect for
// it) — unless forget says its cached state may not be trusted (a stop
// window ran out and it must be confirmed running): then it leaves the
// cache and stays unrouted, with the reason, until the retry. An unknown
// one gets a verdict saying what failed.
func (w *Watcher) inspectFailed(id string, err error, now time.Time, forget bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	name := id
	c, known := w.cache[id]
	if known {
		name = c.Name
	}
	switch {
	case known && !forget:
		w.log.Warn("docker failed to inspect a container; keeping what is known of it until the retry", "container", name, "id", contract.Short(id), "err", err)
	default:
		delete(w.cache, id)
		if w.setVerdictLocked(id, inspectFailed(id, name, err), true) {
			w.notify()
		}
	}
	w.scheduleRetryLocked(true, now)
}

// inspectFailed is the verdict of a container Docker failed to inspect.
func inspectFailed(id, name string, err error) contract.Verdict {
	return contract.Verdict{ID: id, Name: name, Code: contract.CodeInspectFailed,
		Reason: fmt.Sprintf("docker failed to inspect the container (%v); dockroute tries again shortly", err)}
}

// scheduleRetryLocked arms (failing) or clears the retry of failed
// inspects. Retries back off from a second to the resync interval, so a
// container Docker cannot inspect costs little, while one that failed
// once is routed soon after.
func (w *Watcher) scheduleRetryLocked(failing bool, now time.Time) {
	if !failing {
		w.retryAt, w.retryWait = time.Time{}, 0
		return
	}
	if !w.retryAt.IsZero() && w.retryAt.After(now) {
		return // one is already due
	}
	w.retryWait = min(max(2*w.retryWait, time.Second), max(w.resync, time.Second))
	w.retryAt = now.Add(w.retryWait)
	w.rearm() // the event loop sets its wake anew (a retry scheduled beside it, by an inspect, included)
}

// decideLocked decides c, with its stop (if one is under way) as of now.
func (w *Watcher) decideLocked(c contract.Container, now time.Time) contract.Verdict {
	c.Stopping = now.Before(stoppingUntil(c, w.kills[c.ID]))
	return contract.Decide(c, w.decideOptionsLocked())
}

// redecideLocked decides every known container again, as of now.
func (w *Watcher) redecideLocked(now time.Time) {
	changed := false
	for id, c := range w.cache {
		changed = w.setVerdictLocked(id, w.decideLocked(*c, now), true) || changed
	}
	if changed {
		w.notify()
	}
}

// expireStops ends the stop windows that ran out. A container the cache
// still says is running is inspected before it is routed again: the cache
// can be behind the engine (its die and destroy queued behind a slow
// inspect, or lost with a broken stream), and the address of a container
// removed meanwhile may already be another container's. Only one Docker
// confirms running is routed again; one it no longer knows is gone, and one
// it fails to inspect stays unrouted until the retry's full sync.
func (w *Watcher) expireStops(ctx context.Context, now time.Time) error {
	for _, id := range w.endStops(now) {
		c, found, err := engine.Inspect(ctx, w.engine, id)
		if err != nil {
			if perr := engine.Ping(ctx, w.engine); perr != nil {
				return fmt.Errorf("docker stopped answering: %w", perr)
			}
			w.inspectFailed(id, err, time.Now(), true)
			continue
		}
		if found && c.State == "running" {
			w.log.Info("container survived its stop signal past its stop timeout, and docker says it runs; routing it again", "container", c.Name, "id", contract.Short(id))
		}
		w.update(id, c, found, time.Now(), now)
	}
	return nil
}

// endStops forgets the kills whose stop windows ran out by now and
// returns the containers among them still cached as running, which must
// be confirmed before they are routed again.
func (w *Watcher) endStops(now time.Time) (confirm []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	for id, ks := range w.kills {
		c, ok := w.cache[id]
		if ok && now.Before(stoppingUntil(*c, ks)) {
			continue
		}
		delete(w.kills, id)
		switch {
		case ok && c.State == "running":
			confirm = append(confirm, id) // its "stopping" verdict stands until then
		case ok:
			changed = w.setVerdictLocked(id, w.decideLocked(*c, now), true) || changed
		}
	}
	if changed {
		w.notify()
	}
	return confirm
}

// nextWake is the next moment the watcher must act without an event: a
// stop window running out, or failed inspects to retry. Zero means none.
func (w *Watcher) nextWake() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var next []time.Time
	for id, ks := range w.kills {
		if c, ok := w.cache[id]; ok {
			next = append(next, stoppingUntil(*c, ks))
		}
	}
	return earliest(append(next, w.retryAt)...)
}

// retryDue tells whether failed inspects are due to be tried again.
func (w *Watcher) retryDue(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.retryAt.IsZero() && !now.Before(w.retryAt)
}

// noteEvent records what an event says about stops.
func (w *Watcher) noteEvent(m events.Message, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kills.note(m, now)
}

// setVerdictLocked records a verdict (or its removal when !present), logs
// what changed for the user, and reports whether anything did.
func (w *Watcher) setVerdictLocked(id string, v contract.Verdict, present bool) bool {
	old, had := w.verdicts.get(id)
	if !present {
		if !w.verdicts.remove(id) {
			return false
		}
		if old.Routed() {
			w.log.Info("unrouted: container is gone", "container", old.Name, "id", contract.Short(id))
			w.notifyUrgent()
		}
		return true
	}
	if had && old.Equal(v) {
		return false
	}
	w.verdicts.put(id, v)
	if had && old.Routed() && !v.Routed() {
		w.notifyUrgent()
	}
	switch {
	case v.Routed():
		// "routed" is said by the fleet once claims are settled
		// (changes.go): another container may hold these hosts.
		w.log.Debug("routable", "container", v.Name, "id", contract.Short(id), "routes", logRoutes(v.Backends))
	case v.Code == contract.CodeInspectFailed:
		w.log.Warn("not synced", "container", v.Name, "id", contract.Short(id), "reason", cut(v.Reason, logValueMax))
	case v.OptedIn && v.Lifecycle:
		w.log.Info("not routed", "container", v.Name, "id", contract.Short(id), "reason", cut(v.Reason, logValueMax))
	case v.OptedIn:
		w.log.Warn("not routed", "container", v.Name, "id", contract.Short(id), "reason", cut(v.Reason, logValueMax))
	default:
		w.log.Debug("ignored", "container", v.Name, "id", contract.Short(id), "reason", cut(v.Reason, logValueMax))
	}
	if !had || !slices.Equal(old.Notes, v.Notes) { // once, not on every pause
		for _, n := range v.Notes {
			w.log.Warn("note", "container", v.Name, "id", contract.Short(id), "note", cut(n, logValueMax))
		}
	}
	return true
}

// Explain decides the named containers (names or IDs) of one engine, or
// every container including stopped ones when none is named; see
// Fleet.Explain, which this is for a fleet of one.
func Explain(ctx context.Context, e engine.Engine, opt Options, names []string) ([]contract.Verdict, error) {
	return explainAll(ctx, []engine.Engine{e}, []Options{opt}, names)
}

// evaluation is one engine's part of an explain.
type evaluation struct {
	decided []contract.Verdict // the named containers found here, and every running one
	wanted  map[string]bool    // IDs of the named ones
	unknown map[string]bool    // names not found here
	other   []contract.Verdict // named ones that could not be decided
}

// evaluate decides, exactly as a running watcher would, the named
// containers of one engine (every container when none is named) and every
// running one, whose claims on hosts may conflict with them.
func evaluate(ctx context.Context, e engine.Engine, opt Options, names []string) (evaluation, error) {
	ev := evaluation{wanted: map[string]bool{}, unknown: map[string]bool{}}
	var ident *engine.Identity
	if id, err := engine.Identify(ctx, e); err == nil {
		ident = &id
	}
	running, err := listRunning(ctx, e, opt.Scope, ident != nil && ident.Podman)
	if err != nil {
		return ev, err
	}
	if len(names) == 0 {
		all, err := engine.List(ctx, e, container.ListOptions{All: true, Filters: opt.Scope.args()})
		if err != nil {
			return ev, err
		}
		for _, s := range all {
			names = append(names, s.ID)
		}
	}
	cs := map[string]*contract.Container{}
	for _, n := range names {
		c, ok, err := engine.Inspect(ctx, e, n)
		switch {
		case err != nil:
			ev.other = append(ev.other, inspectFailed("", n, err))
		case !ok:
			ev.unknown[n] = true
		case !opt.Scope.Matches(c):
			ev.other = append(ev.other, contract.Verdict{ID: c.ID, Name: c.Name, Code: contract.CodeOutOfScope, Reason: "outside dockroute's scope, so not considered at all: " + opt.Scope.Why(c)})
		default:
			cs[c.ID], ev.wanted[c.ID] = &c, true
		}
	}
	for _, s := range running {
		if _, ok := cs[s.ID]; ok {
			continue
		}
		if c, ok, err := engine.Inspect(ctx, e, s.ID); err == nil && ok {
			cs[c.ID] = &c
		}
	}
	now := time.Now()
	ks, err := recentKills(ctx, e, cs, now)
	if err != nil {
		return ev, err
	}
	for _, cp := range cs {
		c := *cp
		c.Stopping = now.Before(stoppingUntil(c, ks[c.ID]))
		v := contract.Decide(c, decideOptions(ident, opt))
		v.Engine = opt.Engine
		if ident != nil && ident.Podman && v.Routed() {
			v.Info = append(v.Info, fmt.Sprintf(podmanStops, ident))
		}
		ev.decided = append(ev.decided, v)
	}
	return ev, nil
}

// explainAll evaluates the names on every engine and settles claims across
// all of them, as a running fleet does. A name no engine knows gets a
// verdict saying so rather than failing the others.
func explainAll(ctx context.Context, es []engine.Engine, opts []Options, names []string) ([]contract.Verdict, error) {
	var decided, out []contract.Verdict
	wanted := map[string]bool{}
	unknownEverywhere := map[string]int{}
	for i, e := range es {
		ev, err := evaluate(ctx, e, opts[i], names)
		if err != nil {
			if len(es) == 1 {
				return nil, err
			}
			out = append(out, contract.Verdict{Name: "engine " + opts[i].Engine, Engine: opts[i].Engine, Code: contract.CodeInspectFailed, Reason: "could not ask this engine: " + err.Error()})
			continue
		}
		if len(es) == 1 {
			for i := range ev.decided {
				ev.decided[i].Engine = "" // one engine: no need to name it
			}
		}
		decided = append(decided, ev.decided...)
		out = append(out, ev.other...)
		maps.Copy(wanted, ev.wanted)
		for n := range ev.unknown {
			unknownEverywhere[n]++
		}
	}
	for n, count := range unknownEverywhere {
		if count == len(es) {
			out = append(out, contract.Verdict{Name: n, Code: contract.CodeNoContainer, Reason: "no such container"})
		}
	}
	for _, v := range contract.ResolveClaims(dedupe(decided), nil, time.Now()) {
		if wanted[v.ID] {
			out = append(out, v)
		}
	}
	return sortVerdicts(out), nil
}

func sortVerdicts(vs []contract.Verdict) []contract.Verdict {
	slices.SortFunc(vs, func(a, b contract.Verdict) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return vs
}
