package docker

import (
	"context"

	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/route"
)

// SwarmEngine is what following a swarm's services needs, beyond Engine:
// a manager's service and task lists. A *client.Client is one.
type SwarmEngine interface {
	engine.Engine
	Info(ctx context.Context) (system.Info, error)
	ServiceList(ctx context.Context, opts swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(ctx context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error)
}

// serviceLabel marks a container that is a swarm task, with its service.
const serviceLabel = "com.docker.swarm.service.id"

// converge is how long a service is polled after something happened to
// it: the engine says nothing when a task on another node starts, stops or
// is moved off a drained node, so the service's tasks are listed every
// convergePoll meanwhile (one list of that service's tasks, never a full
// relist).
const (
	converge     = 30 * time.Second
	convergePoll = 500 * time.Millisecond
)

// ServiceWatcher follows a swarm manager's services and their tasks, as
// Watcher follows containers, with the same failure policy (follower).
type ServiceWatcher struct {
	link
	engine SwarmEngine
	log    *slog.Logger
	resync time.Duration

	mu         sync.Mutex
	opt        Options
	services   map[string]contract.Service
	verdicts   verdictSet
	networks   map[string]string    // network ID → name
	converging map[string]time.Time // service ID → polled until
	nextPoll   time.Time
}

// NewServiceWatcher returns a watcher of engine's services.
func NewServiceWatcher(engine SwarmEngine, opt Options, resync time.Duration, log *slog.Logger) *ServiceWatcher {
	return &ServiceWatcher{engine: engine, opt: opt, log: log, resync: resync,
		link:     newLink(),
		services: map[string]contract.Service{}, verdicts: newVerdictSet(), networks: map[string]string{}, converging: map[string]time.Time{}}
}

// Run follows the services until ctx ends.
func (w *ServiceWatcher) Run(ctx context.Context) error {
	return follower{engine: w.engine, log: w.log, resync: w.resync, resyncNow: w.resyncNow, src: w}.run(ctx)
}

// SetOptions re-decides every known service.
func (w *ServiceWatcher) SetOptions(opt Options) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opt = opt
	changed := false
	for id, s := range w.services {
		changed = w.setLocked(id, contract.DecideService(s, opt.Options)) || changed
	}
	if changed {
		w.notify()
	}
}

func (w *ServiceWatcher) state() ([]contract.Verdict, bool, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	synced, lostAt := w.linkState()
	return w.verdicts.values(), synced, lostAt
}

// Backends returns the services' backends and whether they are current.
func (w *ServiceWatcher) Backends() ([]route.Backend, bool) {
	vs, synced, _ := w.state()
	var bs []route.Backend
	for _, v := range vs {
		bs = append(bs, v.Backends...)
	}
	return bs, synced
}

// filter: service changes, node changes (a drained node's tasks move) and
// this node's containers (a task's start or stop seen as it happens;
// containers that are no task are ignored).
func (w *ServiceWatcher) filter() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.NodeEventType)),
		filters.Arg("type", string(events.ContainerEventType)),
		// Not label=com.docker.swarm.service.id: the engine applies a
		// label filter to every type, and would drop service events.
	)
}

// Sync lists every service and running task.
func (w *ServiceWatcher) Sync(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, engine.ListTimeout)
	defer cancel()
	svcs, err := w.engine.ServiceList(lctx, swarm.ServiceListOptions{Filters: w.scopeArgs()})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	tasks, err := w.engine.TaskList(lctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	maps.Copy(w.networks, networkNames(tasks))
	byService := map[string][]swarm.Task{}
	for _, t := range tasks {
		byService[t.ServiceID] = append(byService[t.ServiceID], t)
	}
	changed := false
	next := map[string]contract.Service{}
	for _, s := range svcs {
		next[s.ID] = fromService(s, byService[s.ID], w.networks)
	}
	for id := range w.services {
		if _, ok := next[id]; !ok {
			w.verdicts.remove(id)
			changed = true
		}
	}
	w.services = next
	for id, s := range next {
		changed = w.setLocked(id, contract.DecideService(s, w.opt.Options)) || changed
	}
	changed = w.markSynced() || changed
	if changed {
		w.notify()
	}
	return nil
}

// scopeArgs applies --filter's labels to services (their own labels).
func (w *ServiceWatcher) scopeArgs() filters.Args {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := filters.NewArgs()
	for _, l := range w.opt.Scope.labels {
		a.Add("label", l)
	}
	return a
}

// refresh re-reads one service and its tasks.
func (w *ServiceWatcher) refresh(ctx context.Context, id string) error {
	lctx, cancel := context.WithTimeout(ctx, engine.ListTimeout)
	defer cancel()
	f := w.scopeArgs()
	f.Add("id", id)
	svcs, err := w.engine.ServiceList(lctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list service %s: %w", contract.Short(id), err)
	}
	i := slices.IndexFunc(svcs, func(s swarm.Service) bool { return s.ID == id })
	var tasks []swarm.Task
	if i >= 0 {
		tasks, err = w.engine.TaskList(lctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id), filters.Arg("desired-state", "running"))})
		if errdefs.IsNotFound(err) {
			i, err = -1, nil // removed in between
		}
		if err != nil {
			return fmt.Errorf("list tasks of service %s: %w", contract.Short(id), err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	maps.Copy(w.networks, networkNames(tasks))
	if i < 0 {
		delete(w.services, id)
		delete(w.converging, id)
		if w.verdicts.remove(id) {
			w.log.Info("service removed", "id", contract.Short(id))
			w.notify()
		}
		return nil
	}
	s := fromService(svcs[i], tasks, w.networks)
	w.services[id] = s
	if w.setLocked(id, contract.DecideService(s, w.opt.Options)) {
		w.notify()
	}
	return nil
}

// apply refreshes the services the events concern and polls them for a
// while, as their tasks change without events.
// failed and moved are nil: a service watcher does all its work in the
// event loop.
func (w *ServiceWatcher) failed() <-chan error   { return nil }
func (w *ServiceWatcher) moved() <-chan struct{} { return nil }

func (w *ServiceWatcher) apply(ctx context.Context, first events.Message, more <-chan events.Message) error {
	ids := map[string]bool{}
	all := false
	for m, ok := first, true; ok; {
		switch m.Type {
		case events.ServiceEventType:
			ids[m.Actor.ID] = true
		case events.NodeEventType:
			all = true
		case events.ContainerEventType:
			if id := m.Actor.Attributes[serviceLabel]; id != "" {
				ids[id] = true
			}
		}
		select {
		case m = <-more:
		default:
			ok = false
		}
	}
	if all {
		w.mu.Lock()
		for id := range w.services {
			ids[id] = true
		}
		w.mu.Unlock()
	}
	now := time.Now()
	w.mu.Lock()
	for id := range ids {
		w.converging[id] = now.Add(converge)
	}
	w.mu.Unlock()
	return w.refreshAll(ctx, ids)
}

// refreshAll refreshes the services; a failure affects only its service
// (the next poll or resync tries again) unless the engine stopped
// answering.
func (w *ServiceWatcher) refreshAll(ctx context.Context, ids map[string]bool) error {
	for id := range ids {
		if err := w.refresh(ctx, id); err != nil {
			if perr := engine.Ping(ctx, w.engine); perr != nil {
				return fmt.Errorf("docker stopped answering: %w", perr)
			}
			w.log.Warn("could not refresh a service; the next poll or resync tries again", "err", err)
		}
	}
	return nil
}

func (w *ServiceWatcher) nextWake() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.converging) == 0 {
		return time.Time{}
	}
	if w.nextPoll.IsZero() || w.nextPoll.Before(time.Now()) {
		w.nextPoll = time.Now().Add(convergePoll)
	}
	return w.nextPoll
}

// wake polls the services still converging.
func (w *ServiceWatcher) wake(ctx context.Context, now time.Time) error {
	w.mu.Lock()
	ids := map[string]bool{}
	for id, until := range w.converging {
		if now.After(until) {
			delete(w.converging, id)
			continue
		}
		ids[id] = true
	}
	w.nextPoll = time.Time{}
	w.mu.Unlock()
	return w.refreshAll(ctx, ids)
}

// setLocked records a service's verdict and logs a change.
func (w *ServiceWatcher) setLocked(id string, v contract.Verdict) bool {
	if old, had := w.verdicts.get(id); had && old.Equal(v) {
		return false
	}
	w.verdicts.put(id, v)
	switch {
	case v.Routed():
		// "routed" is said by the fleet once claims are settled.
		w.log.Debug("routable service", "service", v.Name, "id", contract.Short(id), "routes", logRoutes(v.Backends))
	case v.OptedIn:
		w.log.Info("service not routed", "service", v.Name, "id", contract.Short(id), "reason", cut(v.Reason, logValueMax))
	}
	return true
}
