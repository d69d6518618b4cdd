// Package docker is the Docker provider: it follows a Docker Engine's events
// and keeps a verdict (routed, or why not) for every running container. The
// route table is computed from those verdicts on demand, so it is always a
// function of the containers as last seen, never of the event history.
package docker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"

	"github.com/dockroute/dockroute/provider/route"
)

// eventSlack is how far back the event subscription starts. Docker registers
// a subscription only once the request reaches it, after Events returns; a
// "since" in the recent past makes the engine replay anything that happened
// in between, so no event can fall between subscribing and listing. Replays
// are harmless: an event only triggers a re-inspect.
const eventSlack = 5 * time.Second

// Watcher follows one Docker Engine. Create it with New and start it with Run.
type Watcher struct {
	cli    *client.Client
	opt    Options
	log    *slog.Logger
	resync time.Duration

	changed    chan struct{}
	resyncNow  chan struct{}
	reconnects atomic.Int64

	mu        sync.Mutex
	cache     map[string]Container // running or paused containers, by ID
	stopping  map[string]bool      // IDs whose stop began (see Container.Stopping)
	verdicts  map[string]Verdict
	synced    bool // a full sync has succeeded at least once
	connected bool
}

// New returns a watcher that resyncs in full every resync interval.
func New(cli *client.Client, opt Options, resync time.Duration, log *slog.Logger) *Watcher {
	return &Watcher{
		cli:       cli,
		opt:       opt,
		log:       log,
		resync:    resync,
		changed:   make(chan struct{}, 1),
		resyncNow: make(chan struct{}, 1),
		cache:     map[string]Container{},
		stopping:  map[string]bool{},
		verdicts:  map[string]Verdict{},
	}
}

// NewClient connects to the engine named by the DOCKER_* environment (the
// local socket by default), negotiating the API version so that engines back
// to API 1.41 work.
func NewClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}

// Changed receives a value whenever the verdicts changed since it was last
// read. It never blocks the watcher: changes in between collapse into one.
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

// Backends returns the backends of every routed container, and false until
// the first full sync succeeded: none before that means "unknown", not "no
// routes", and must never be published.
func (w *Watcher) Backends() ([]route.Backend, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	backends := make([]route.Backend, 0, len(w.verdicts))
	for _, v := range w.verdicts {
		backends = append(backends, v.Backends...)
	}
	return backends, w.synced
}

// SetOptions changes the operator's choices and re-decides every known
// container from the cache, without asking Docker.
func (w *Watcher) SetOptions(opt Options) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opt = opt
	changed := false
	for id, c := range w.cache {
		changed = w.setVerdictLocked(id, Decide(c, opt), true) || changed
	}
	if changed {
		w.notify()
	}
}

// ResyncNow asks for a full resync as soon as possible (SIGHUP).
func (w *Watcher) ResyncNow() {
	select {
	case w.resyncNow <- struct{}{}:
	default:
	}
}

// Reconnects counts how often the watcher connected to Docker again after
// losing it.
func (w *Watcher) Reconnects() int64 { return w.reconnects.Load() }

// Verdicts returns the current verdicts sorted by container name.
func (w *Watcher) Verdicts() []Verdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sortVerdicts(slices.Collect(maps.Values(w.verdicts)))
}

// Connected tells whether the watcher currently follows a live event stream.
func (w *Watcher) Connected() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.connected
}

// Run follows Docker until ctx ends. A lost connection is retried with
// backoff and followed by a full resync; meanwhile the verdicts (and so the
// published config) stay as they were.
func (w *Watcher) Run(ctx context.Context) error {
	b := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for first := true; ; first = false {
		if !first {
			w.reconnects.Add(1)
		}
		connected, err := w.follow(ctx)
		w.setConnected(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected {
			b.reset()
		}
		d := b.next()
		w.log.Warn("docker unreachable; keeping the last published routes", "err", err, "retry_in", d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// follow subscribes to events, resyncs, then applies events until the stream
// breaks. connected reports whether it got as far as a full sync.
func (w *Watcher) follow(ctx context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := w.cli.Events(ctx, events.ListOptions{
		Since:   strconv.FormatInt(time.Now().Add(-eventSlack).Unix(), 10),
		Filters: eventFilter(),
	})
	// Events may have been missed while disconnected, a container's start
	// among them: forget which stops had begun rather than keep a
	// restarted container out of routing.
	w.mu.Lock()
	clear(w.stopping)
	w.mu.Unlock()
	if err := w.Resync(ctx); err != nil {
		return false, err
	}
	w.setConnected(true)
	tick := time.NewTicker(w.resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errs:
			return true, fmt.Errorf("event stream ended: %w", err)
		case m := <-msgs:
			if err := w.applyEvents(ctx, m, msgs); err != nil {
				return true, err
			}
		case <-tick.C:
			if err := w.Resync(ctx); err != nil {
				return true, err
			}
		case <-w.resyncNow:
			w.log.Info("full resync requested")
			if err := w.Resync(ctx); err != nil {
				return true, err
			}
		}
	}
}

// eventFilter selects the events that can change a container's verdict.
// Docker matches "health_status" against "health_status: healthy" itself.
func eventFilter() filters.Args {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
	)
	for _, a := range []events.Action{
		events.ActionStart, events.ActionStop, events.ActionDie, events.ActionKill,
		events.ActionPause, events.ActionUnPause, events.ActionDestroy, events.ActionRename,
		events.ActionHealthStatus, events.ActionConnect, events.ActionDisconnect,
	} {
		f.Add("event", string(a))
	}
	return f
}

// applyEvents re-inspects the container of first and of every event already
// queued behind it, once per container: a burst of events for one container
// (kill, die, stop) costs one inspect.
func (w *Watcher) applyEvents(ctx context.Context, first events.Message, msgs <-chan events.Message) error {
	ids := map[string]bool{}
	for m, more := first, true; more; {
		if id := containerID(m); id != "" {
			ids[id] = true
			w.noteStop(id, m)
		}
		select {
		case m = <-msgs:
		default:
			more = false
		}
	}
	for id := range ids {
		c, found, err := inspect(ctx, w.cli, id)
		if err != nil {
			return err
		}
		w.update(id, c, found)
	}
	return nil
}

// noteStop records that a container's stop began or ended. Docker emits
// "kill" with the stop signal when `docker stop` starts, a grace period
// before "die"; a kill with another signal (a reload via SIGHUP, say) is not
// a stop.
func (w *Watcher) noteStop(id string, m events.Message) {
	if m.Type != events.ContainerEventType {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Action {
	case events.ActionKill:
		stopSignal := ""
		if c, ok := w.cache[id]; ok {
			stopSignal = c.StopSignal
		}
		if isStopSignal(m.Actor.Attributes["signal"], stopSignal) {
			w.stopping[id] = true
		}
	case events.ActionStart, events.ActionDie, events.ActionDestroy:
		delete(w.stopping, id)
	}
}

func containerID(m events.Message) string {
	if m.Type == events.NetworkEventType {
		return m.Actor.Attributes["container"]
	}
	return m.Actor.ID
}

// isStopSignal tells whether a kill event's signal ends the container: the
// usual terminating signals, or the container's own stop signal. Docker
// reports signals as numbers; stop signals may be names.
func isStopSignal(sig, stopSignal string) bool {
	n := signalNumber(sig)
	switch n {
	case 0:
		return false
	case int(unix.SIGINT), int(unix.SIGQUIT), int(unix.SIGKILL), int(unix.SIGTERM):
		return true
	}
	return n == signalNumber(stopSignal)
}

func signalNumber(s string) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	s = strings.ToUpper(s)
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	return int(unix.SignalNum(s))
}

// inspect fetches one container; found is false when it no longer exists.
func inspect(ctx context.Context, cli *client.Client, id string) (c Container, found bool, err error) {
	in, err := cli.ContainerInspect(ctx, id)
	if errdefs.IsNotFound(err) {
		return Container{}, false, nil
	}
	if err != nil {
		return Container{}, false, fmt.Errorf("inspect container %s: %w", short(id), err)
	}
	return fromInspect(in), true, nil
}

// Resync lists the running containers and rebuilds every verdict. Containers
// already known are refreshed from the list alone (their env and ports cannot
// change); only new ones are inspected, so a periodic resync of thousands of
// containers is one API call. On error nothing changes.
func (w *Watcher) Resync(ctx context.Context) error {
	list, err := w.cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	w.mu.Lock()
	known := maps.Clone(w.cache)
	w.mu.Unlock()

	next := make(map[string]Container, len(list))
	for _, s := range list {
		if c, ok := known[s.ID]; ok {
			next[s.ID] = c.refresh(s)
			continue
		}
		c, found, err := inspect(ctx, w.cli, s.ID)
		if err != nil {
			return err
		}
		if found {
			next[s.ID] = c
		}
	}
	w.replace(next)
	return nil
}

// replace installs a complete new set of containers.
func (w *Watcher) replace(next map[string]Container) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := !w.synced
	for id := range w.cache {
		if _, ok := next[id]; !ok {
			changed = w.setVerdictLocked(id, Verdict{}, false) || changed
		}
	}
	for id, c := range next {
		c.Stopping = w.stopping[id]
		next[id] = c
		changed = w.setVerdictLocked(id, Decide(c, w.opt), true) || changed
	}
	for id := range w.stopping {
		if _, ok := next[id]; !ok {
			delete(w.stopping, id)
		}
	}
	w.cache = next
	w.synced = true
	if changed {
		w.notify()
	}
}

// update installs what one inspect found.
func (w *Watcher) update(id string, c Container, found bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var v Verdict
	if found {
		c.Stopping = w.stopping[id]
		w.cache[id] = c
		v = Decide(c, w.opt)
	} else {
		delete(w.cache, id)
		delete(w.stopping, id)
	}
	if w.setVerdictLocked(id, v, found) {
		w.notify()
	}
}

// setVerdictLocked records a verdict (or its removal when !present), logs
// what changed for the user, and reports whether anything did.
func (w *Watcher) setVerdictLocked(id string, v Verdict, present bool) bool {
	old, had := w.verdicts[id]
	if !present {
		if !had {
			return false
		}
		delete(w.verdicts, id)
		if old.Routed() {
			w.log.Info("unrouted: container is gone", "container", old.Name, "id", short(id))
		}
		return true
	}
	if had && old.equal(v) {
		return false
	}
	w.verdicts[id] = v
	switch {
	case v.Routed():
		w.log.Info("routed", "container", v.Name, "id", short(id), "routes", describe(v.Backends))
	case v.OptedIn && v.Lifecycle:
		w.log.Info("not routed", "container", v.Name, "id", short(id), "reason", v.Reason)
	case v.OptedIn:
		w.log.Warn("not routed", "container", v.Name, "id", short(id), "reason", v.Reason)
	default:
		w.log.Debug("ignored", "container", v.Name, "id", short(id), "reason", v.Reason)
	}
	for _, n := range v.Notes {
		w.log.Warn("note", "container", v.Name, "id", short(id), "note", n)
	}
	return true
}

func (w *Watcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *Watcher) setConnected(ok bool) {
	w.mu.Lock()
	w.connected = ok
	w.mu.Unlock()
}

// Explain decides the named containers (names or IDs), or every container
// including stopped ones when none is named. An unknown name gets a verdict
// saying so rather than failing the others.
func Explain(ctx context.Context, cli *client.Client, opt Options, names []string) ([]Verdict, error) {
	if len(names) == 0 {
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		for _, s := range list {
			names = append(names, s.ID)
		}
	}
	var out []Verdict
	for _, n := range names {
		c, found, err := inspect(ctx, cli, n)
		if err != nil {
			return nil, err
		}
		if !found {
			out = append(out, Verdict{Name: n, Reason: "no such container"})
			continue
		}
		out = append(out, Decide(c, opt))
	}
	return sortVerdicts(out), nil
}

// describe lists backends as "host/path -> addr" for logs.
func describe(bs []route.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Host + b.Path + " -> " + b.Server
	}
	return out
}

func sortVerdicts(vs []Verdict) []Verdict {
	slices.SortFunc(vs, func(a, b Verdict) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return vs
}

// backoff doubles a delay from min to max.
type backoff struct{ min, max, cur time.Duration }

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	b.cur = min(max(b.cur*2, b.min), b.max)
	return b.cur
}
