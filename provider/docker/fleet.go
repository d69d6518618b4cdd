package docker

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/route"
)

// Member is one engine of a Fleet.
type Member struct {
	Endpoint engine.Endpoint
	Engine   engine.Engine
	Watcher  *Watcher
	// Services follows the engine's swarm services, once the engine is
	// known to be a manager (nil until then, and otherwise).
	services *ServiceWatcher
}

// Fleet follows several engines as one provider: one route table from all
// of them, replicas of a host on different engines becoming one service
// with several servers. Each engine connects, backs off and resyncs on its
// own. An engine that goes away keeps its routes for the grace, then loses
// only those; the others are untouched. (With a single engine there is no
// other source of truth: its routes stay until it answers again, as the
// proxy's last config does.) Claims on shared hosts are settled across
// every engine, and the same engine reached twice is counted once:
// containers are keyed by their IDs, which no two engines share.
type Fleet struct {
	members []*Member
	grace   time.Duration
	log     *slog.Logger
	changed chan struct{}
	urgent  chan struct{}

	// vmu guards view, what Changes last handed out, and wake.
	vmu  sync.Mutex
	view *view
	// tenure is what each host was last settled to; wake settles again
	// when a vacant host stops being held.
	tenure *contract.Tenure
	wake   *time.Timer

	mu      sync.Mutex
	opt     Options
	twins   map[string]bool // engine pairs already reported as one
	dropped map[*Member]bool
}

// NewFleet connects to every endpoint (connecting does not wait for the
// engines) and watches each with opt, adjusted to the endpoint.
func NewFleet(eps []engine.Endpoint, opt Options, resync, grace time.Duration, log *slog.Logger) (*Fleet, error) {
	var members []*Member
	for _, ep := range eps {
		cli, err := ep.Engine()
		if err != nil {
			for _, m := range members {
				m.Engine.(interface{ Close() error }).Close()
			}
			return nil, err
		}
		members = append(members, &Member{Endpoint: ep, Engine: cli})
	}
	return NewFleetOf(members, opt, resync, grace, log), nil
}

// NewFleetOf watches engines already connected (tests give fake ones).
func NewFleetOf(members []*Member, opt Options, resync, grace time.Duration, log *slog.Logger) *Fleet {
	f := &Fleet{members: members, grace: grace, log: log, changed: make(chan struct{}, 1), urgent: make(chan struct{}, 1), opt: opt, dropped: map[*Member]bool{}, view: newView(), tenure: contract.NewTenure(opt.Hold)}
	for _, m := range members {
		l := log
		if len(members) > 1 {
			l = log.With("engine", m.Endpoint.Name)
		}
		m.Watcher = New(m.Engine, f.optionsFor(m, opt), resync, l)
	}
	return f
}

// optionsFor adapts the operator's options to one engine.
func (f *Fleet) optionsFor(m *Member, opt Options) Options {
	opt.Address, opt.Advertise, opt.Engine = m.Endpoint.Address, m.Endpoint.Advertise, m.Endpoint.Name
	opt.SkipTasks = f.servicesOf(m) != nil
	return opt
}

// Members are the engines followed.
func (f *Fleet) Members() []*Member { return f.members }

// Close closes the clients NewFleet opened.
func (f *Fleet) Close() {
	for _, m := range f.members {
		if c, ok := m.Engine.(interface{ Close() error }); ok {
			c.Close()
		}
	}
}

// Changed receives a value whenever the routes may have changed.
func (f *Fleet) Changed() <-chan struct{} { return f.changed }

// Urgent receives a value when a routed container left routing on any
// engine: the publish that takes it out should go at once.
func (f *Fleet) Urgent() <-chan struct{} { return f.urgent }

func (f *Fleet) notify() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// ChangedSince returns when the oldest change not yet taken happened on
// any engine (an event's arrival, or a sync finding a change), zero if
// none, and starts over: the start of the latency from Docker to the
// proxy.
func (f *Fleet) ChangedSince() time.Time {
	var oldest time.Time
	take := func(t time.Time) {
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	for _, m := range f.members {
		take(m.Watcher.ChangedSince())
		if sw := f.servicesOf(m); sw != nil {
			take(sw.ChangedSince())
		}
	}
	return oldest
}

// Run follows every engine until ctx ends.
func (f *Fleet) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range f.members {
		wg.Go(func() { m.Watcher.Run(ctx) })
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-m.Watcher.Changed():
					f.notify()
				case <-m.Watcher.Urgent():
					select {
					case f.urgent <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	if len(f.members) > 1 {
		wg.Go(func() { f.expireLost(ctx) })
	}
	for _, m := range f.members {
		if se, ok := m.Engine.(SwarmEngine); ok && f.options().Swarm != "off" {
			wg.Go(func() { f.followSwarm(ctx, m, se) })
		}
	}
	wg.Wait()
}

func (f *Fleet) options() Options {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opt
}

func (f *Fleet) servicesOf(m *Member) *ServiceWatcher {
	f.mu.Lock()
	defer f.mu.Unlock()
	return m.services
}

// followSwarm follows the engine's services once it is known to be a
// swarm manager (asked with GET /info, retried while the engine does not
// answer); task containers are then routed through their services only.
func (f *Fleet) followSwarm(ctx context.Context, m *Member, se SwarmEngine) {
	// Only once the container watcher has synced: the Docker client
	// negotiates its API version on its first request, unsynchronized with
	// the event stream's reader, so nothing else may ask before that.
	for {
		if _, synced, _ := m.Watcher.state(); synced {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	b := backoff{min: time.Second, max: 30 * time.Second}
	var info system.Info
	for {
		ictx, cancel := context.WithTimeout(ctx, engine.PingTimeout)
		var err error
		info, err = se.Info(ictx)
		cancel()
		if err == nil {
			break
		}
		if errdefs.IsPermissionDenied(err) {
			f.log.Info("not following swarm services: the engine refuses GET /info (a socket proxy?)", "engine", m.Endpoint.Name, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.next()):
		}
	}
	manager := info.Swarm.LocalNodeState == swarm.LocalNodeStateActive && info.Swarm.ControlAvailable
	switch {
	case !manager && f.options().Swarm == "on":
		f.log.Error("--swarm on, but the engine is not a swarm manager: its services cannot be read", "engine", m.Endpoint.Name)
		return
	case !manager:
		return
	}
	f.log.Info("the engine is a swarm manager: following its services", "engine", m.Endpoint.Name)
	sw := NewServiceWatcher(se, Options{}, m.Watcher.resync, m.Watcher.log)
	f.mu.Lock()
	m.services = sw
	opt := f.opt
	f.mu.Unlock()
	sw.SetOptions(f.optionsFor(m, opt))
	m.Watcher.SetOptions(f.optionsFor(m, opt))
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sw.Changed():
				f.notify()
			}
		}
	}()
	sw.Run(ctx)
}

// expireLost republishes when a lost engine's grace runs out, so that its
// routes go, and when it comes back.
func (f *Fleet) expireLost(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, m := range f.members {
				_, _, lostAt := m.Watcher.state()
				expired := !lostAt.IsZero() && now.Sub(lostAt) >= f.grace
				f.mu.Lock()
				was := f.dropped[m]
				f.dropped[m] = expired
				f.mu.Unlock()
				if expired && !was {
					f.log.Warn("engine lost for longer than the grace; dropping its routes", "engine", m.Endpoint.Name, "grace", f.grace)
					f.notify()
				}
			}
		}
	}
}

// Backends returns the backends of every routed container of every engine
// that counts, and whether they may be published: true once some engine
// describes Docker as it is now. An engine counts while synced, or, when
// there are several, while lost for less than the grace.
func (f *Fleet) Backends() ([]route.Backend, bool) {
	vs, ok := f.current(false)
	n := 0
	for _, v := range vs {
		n += len(v.Backends)
	}
	bs := make([]route.Backend, 0, n)
	for _, v := range vs {
		bs = append(bs, v.Backends...)
	}
	return bs, ok
}

// Verdicts returns every engine's verdicts, claims settled, sorted.
func (f *Fleet) Verdicts() []contract.Verdict {
	vs, _ := f.current(true)
	return sortVerdicts(vs)
}

// current gathers the verdicts that count (all of them with all) and
// settles claims across engines, from scratch: for explain and metrics,
// and as what Changes must add up to. (Changes logs refused claims.)
func (f *Fleet) current(all bool) ([]contract.Verdict, bool) {
	now := time.Now()
	var vs []contract.Verdict
	fresh := false
	for _, m := range f.members {
		mv, synced, lostAt := m.Watcher.state()
		if sw := f.servicesOf(m); sw != nil {
			sv, ssynced, _ := sw.state()
			// Services count once listed; until then, their tasks are
			// only known not to be routed as containers.
			if ssynced || all {
				mv = append(mv, sv...)
			}
		}
		fresh = fresh || synced
		if !f.counts(synced, lostAt, now) && !all {
			continue
		}
		if len(f.members) > 1 {
			for i := range mv {
				mv[i].Engine = m.Endpoint.Name
			}
		}
		if vs == nil {
			vs = mv // the one engine's, or the first: no copy
		} else {
			vs = append(vs, mv...)
		}
	}
	return contract.ResolveClaims(f.dedupe(vs), f.tenure, now), fresh
}

// counts tells whether an engine's verdicts count: while it is synced, or,
// when there are several engines, while lost for less than the grace.
func (f *Fleet) counts(synced bool, lostAt, now time.Time) bool {
	return synced || len(f.members) > 1 && !lostAt.IsZero() && now.Sub(lostAt) < f.grace
}

// warnTwins reports, once per pair, two engines that hold the same
// containers: one engine reached twice, counted once.
func (f *Fleet) warnTwins(first, second string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.twins == nil {
		f.twins = map[string]bool{}
	}
	if pair := first + " " + second; !f.twins[pair] {
		f.twins[pair] = true
		f.log.Warn("two engines report the same containers: one engine reached twice; counting it once", "engines", []string{first, second})
	}
}

// dedupe keeps one verdict per container ID, reporting engines that
// share containers: the same engine reached twice.
func (f *Fleet) dedupe(vs []contract.Verdict) []contract.Verdict {
	if len(f.members) < 2 {
		return vs // one engine reports each container once
	}
	seen := map[string]string{}
	out := vs[:0:0]
	for _, v := range vs {
		if first, dup := seen[v.ID]; dup && v.ID != "" {
			f.warnTwins(first, v.Engine)
			continue
		}
		seen[v.ID] = v.Engine
		out = append(out, v)
	}
	return out
}

// dedupe for one-shot use (explain): one verdict per container ID.
func dedupe(vs []contract.Verdict) []contract.Verdict {
	seen := map[string]bool{}
	return slices.DeleteFunc(slices.Clone(vs), func(v contract.Verdict) bool {
		if v.ID == "" {
			return false
		}
		dup := seen[v.ID]
		seen[v.ID] = true
		return dup
	})
}

// EngineState is one engine's health, for metrics and /healthz.
type EngineState struct {
	Name       string
	Connected  bool
	Reconnects int64
}

// Engines reports every engine's state.
func (f *Fleet) Engines() []EngineState {
	out := make([]EngineState, len(f.members))
	for i, m := range f.members {
		out[i] = EngineState{Name: m.Endpoint.Name, Connected: m.Watcher.Connected(), Reconnects: m.Watcher.Reconnects()}
	}
	return out
}

// SetOptions changes the operator's choices on every engine.
func (f *Fleet) SetOptions(opt Options) {
	f.mu.Lock()
	f.opt = opt
	f.mu.Unlock()
	f.tenure.SetHold(opt.Hold)
	for _, m := range f.members {
		m.Watcher.SetOptions(f.optionsFor(m, opt))
		if sw := f.servicesOf(m); sw != nil {
			sw.SetOptions(f.optionsFor(m, opt))
		}
	}
}

// ResyncNow asks every engine for a full resync.
func (f *Fleet) ResyncNow() {
	for _, m := range f.members {
		m.Watcher.ResyncNow()
		if sw := f.servicesOf(m); sw != nil {
			sw.ResyncNow()
		}
	}
}

// Sync syncs every engine once (render); it fails when none answers.
func (f *Fleet) Sync(ctx context.Context) error {
	var firstErr error
	ok := false
	for _, m := range f.members {
		if err := m.Watcher.Sync(ctx); err != nil {
			f.log.Warn("engine not synced", "engine", m.Endpoint.Name, "err", err)
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		ok = true
	}
	if !ok {
		return firstErr
	}
	return nil
}

// Explain decides the named containers on every engine, as the running
// fleet would (see explainAll).
func (f *Fleet) Explain(ctx context.Context, names []string) ([]contract.Verdict, error) {
	f.mu.Lock()
	opt := f.opt
	f.mu.Unlock()
	es := make([]engine.Engine, len(f.members))
	opts := make([]Options, len(f.members))
	for i, m := range f.members {
		es[i], opts[i] = m.Engine, f.optionsFor(m, opt)
	}
	vs, err := explainAll(ctx, es, opts, names)
	if err != nil {
		return nil, err
	}
	services := f.serviceVerdicts(ctx, opt)
	if len(names) == 0 {
		return sortVerdicts(append(vs, services...)), nil
	}
	// A name may be a service's rather than a container's.
	for _, sv := range services {
		for _, n := range names {
			if sv.Name != n && (len(n) < 4 || !strings.HasPrefix(sv.ID, n)) {
				continue
			}
			vs = slices.DeleteFunc(vs, func(v contract.Verdict) bool { return v.Code == contract.CodeNoContainer && v.Name == n })
			vs = append(vs, sv)
		}
	}
	return sortVerdicts(vs), nil
}

// serviceVerdicts are the swarm services' verdicts: those the running
// fleet follows, or, for a one-shot explain, read once from every engine
// that is a manager.
func (f *Fleet) serviceVerdicts(ctx context.Context, opt Options) []contract.Verdict {
	var out []contract.Verdict
	for _, m := range f.members {
		sw := f.servicesOf(m)
		if sw == nil {
			se, ok := m.Engine.(SwarmEngine)
			if !ok || opt.Swarm == "off" {
				continue
			}
			ictx, cancel := context.WithTimeout(ctx, engine.PingTimeout)
			info, err := se.Info(ictx)
			cancel()
			if err != nil || !info.Swarm.ControlAvailable {
				continue
			}
			sw = NewServiceWatcher(se, f.optionsFor(m, opt), time.Hour, f.log)
			if err := sw.Sync(ctx); err != nil {
				continue
			}
		}
		vs, _, _ := sw.state()
		out = append(out, vs...)
	}
	return out
}
