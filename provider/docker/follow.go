package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
)

// The failure policy. A broken event stream is retried with backoff, reset
// only once a stream stayed up for healthyAfter, so an engine that accepts
// the subscription and drops it at once (or a proxy refusing /events)
// cannot make the watcher spin. An engine that stops answering at all is
// probed cheaply every probeInterval and reconnected the moment it answers:
// backing off exists to spare a sick engine, never to delay recovery from
// an outage.
const (
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 30 * time.Second
	healthyAfter  = 30 * time.Second
	probeInterval = 500 * time.Millisecond
	// quietProbe is how long the event stream may be silent before the
	// engine is pinged: a frozen engine keeps the connection open and
	// simply says nothing.
	quietProbe = 5 * time.Second
)

// eventSlack is how far back the event subscription starts. Docker registers
// a subscription only once the request reaches it; a "since" in the recent
// past makes the engine replay anything that happened meanwhile, so no
// event can fall between subscribing and listing. Replays are harmless: an
// event only triggers a re-inspect.
const eventSlack = 5 * time.Second

// syncSource is what a followed engine keeps in sync: its containers
// (Watcher) or its swarm services (ServiceWatcher). The failure policy
// around it — subscribe, sync in full, apply events, probe a quiet engine,
// back off, reconnect — is the follower's, one for both.
type syncSource interface {
	// filter selects the events that can change what the source knows.
	filter() filters.Args
	// Sync lists and decides everything again.
	Sync(ctx context.Context) error
	// apply handles first and every event already queued behind it.
	apply(ctx context.Context, first events.Message, more <-chan events.Message) error
	// nextWake is the next moment the source must act without an event
	// (zero: none), and wake acts then.
	nextWake() time.Time
	wake(ctx context.Context, now time.Time) error
	// setConnected records that the stream is followed (after a sync) or
	// lost.
	setConnected(ok bool)
	// failed receives when work beside the event loop found the engine
	// gone, and moved when it moved the next wake (nil: the source does
	// no such work).
	failed() <-chan error
	moved() <-chan struct{}
}

// follower runs a source against an engine.
type follower struct {
	engine    engine.Engine
	log       *slog.Logger
	resync    time.Duration
	resyncNow <-chan struct{}
	src       syncSource
}

// Run follows Docker until ctx ends. While the engine is lost, the verdicts
// stay as they were but are reported stale (see Backends); once it answers
// again, a full sync comes before anything else.
func (w *Watcher) Run(ctx context.Context) error {
	return follower{engine: w.engine, log: w.log, resync: w.resync, resyncNow: w.resyncNow, src: w}.run(ctx)
}

func (f follower) run(ctx context.Context) error {
	b := backoff{min: minBackoff, max: maxBackoff}
	for {
		up, err := f.follow(ctx)
		f.src.setConnected(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if up >= healthyAfter {
			b.reset()
		}
		d := b.next()
		f.log.Warn("docker event stream lost; keeping the last published routes until a full resync", "err", err, "retry_in", d)
		if err := awaitEngine(ctx, f.engine, f.log, d); err != nil {
			return err
		}
	}
}

// permissionProbe is how often a socket dockroute may not open is tried
// again (probeInterval would be a probe every 500 ms for nothing).
const permissionProbe = 5 * time.Second

// awaitEngine waits d before the next attempt, probing the engine every
// probeInterval meanwhile. If the engine stops answering, it waits for
// however long that takes and returns the moment the engine answers again.
func awaitEngine(ctx context.Context, e engine.Engine, log *slog.Logger, d time.Duration) error {
	deadline := time.Now().Add(d)
	down := false
	for {
		err := engine.Ping(ctx, e)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !down:
			down = true
			log.Warn("docker unreachable; keeping the last published routes, probing it until it answers", "err", err, "every", probeInterval)
		case err == nil && down:
			log.Info("docker answers again; resyncing")
			return nil
		case err == nil && !time.Now().Before(deadline):
			return nil
		}
		wait := probeInterval
		if !down {
			wait = min(wait, time.Until(deadline))
		} else if errors.Is(err, fs.ErrPermission) {
			// Not a Docker that is down: a socket this user may not open,
			// which changes when the operator changes it (said in the log).
			wait = permissionProbe
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// follow subscribes to events, syncs in full, then applies events until
// the stream breaks or the engine stops answering. up is how long the
// stream was followed after the sync.
func (f follower) follow(ctx context.Context) (up time.Duration, err error) {
	msgs, errs, stop, err := engine.Subscribe(ctx, f.engine, events.ListOptions{
		Since:   engine.UnixTime(time.Now().Add(-eventSlack)),
		Filters: f.src.filter(),
	})
	if err != nil {
		return 0, fmt.Errorf("subscribe to events: %w", err)
	}
	defer stop()
	if err := f.src.Sync(ctx); err != nil {
		return 0, err
	}
	f.src.setConnected(true)

	start := time.Now()
	resync := time.NewTicker(f.resync)
	defer resync.Stop()
	quiet := time.NewTimer(quietProbe) // reset by every event
	defer quiet.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		wake.Reset(untilOrHour(f.src.nextWake()))
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case err := <-errs:
			return time.Since(start), fmt.Errorf("event stream ended: %w", err)
		case err := <-f.src.failed():
			return time.Since(start), err
		case <-f.src.moved(): // the wake is set again above
		case m := <-msgs:
			quiet.Reset(quietProbe)
			if err := f.src.apply(ctx, m, msgs); err != nil {
				return time.Since(start), err
			}
		case <-quiet.C:
			if err := engine.Ping(ctx, f.engine); err != nil {
				return time.Since(start), fmt.Errorf("docker stopped answering: %w", err)
			}
			quiet.Reset(quietProbe)
		case now := <-wake.C:
			err = f.src.wake(ctx, now)
		case <-resync.C:
			err = f.src.Sync(ctx)
		case <-f.resyncNow:
			f.log.Info("full resync requested")
			err = f.src.Sync(ctx)
		}
		if err != nil {
			return time.Since(start), err
		}
	}
}

func untilOrHour(t time.Time) time.Duration {
	if t.IsZero() {
		return time.Hour
	}
	return max(time.Until(t), 0)
}

// wake retries failed inspects when due, else ends stop windows.
func (w *Watcher) wake(ctx context.Context, now time.Time) error {
	if w.retryDue(now) {
		return w.Sync(ctx)
	}
	return w.expireStops(ctx, now)
}

// Podman's names for two of Docker's events, as its filters match them:
// before 4.4 a "die" filter never matched its "died" (a crashed container
// stayed routed until the next resync), and it removes with "remove",
// never "destroy". Docker takes the extra names in a filter and sends
// nothing for them.
const (
	actionDied   events.Action = "died"
	actionRemove events.Action = "remove"
)

// filter selects the events that can change a container's verdict.
// Docker matches "health_status" against "health_status: healthy" itself.
func (w *Watcher) filter() filters.Args {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
	)
	for _, a := range []events.Action{
		events.ActionStart, events.ActionStop, events.ActionDie, events.ActionKill,
		events.ActionPause, events.ActionUnPause, events.ActionDestroy, events.ActionRename,
		events.ActionHealthStatus, events.ActionConnect, events.ActionDisconnect,
		actionDied, actionRemove,
	} {
		f.Add("event", string(a))
	}
	return f
}

// apply brings the containers the events name up to date, in order,
// once per container per burst. An event that says all there is to know
// (die, pause, unpause, destroy, a health status, a kill) updates the
// cached container without asking Docker; one that brings new data
// (start, rename, a network change), or names a container not known yet,
// costs one inspect. So a container's whole life (start, kill, die,
// destroy) costs one inspect, not one per event. Inspects run beside
// the loop (inspects.go), so a slow one holds up no other container. An
// inspect that fails affects only its container; it ends the stream only
// when the engine itself stopped answering.
func (w *Watcher) apply(ctx context.Context, first events.Message, msgs <-chan events.Message) error {
	changes := map[string]*eventChange{}
	var order []string
	now := time.Now()
	w.mu.Lock()
	scope := w.opt.Scope
	w.mu.Unlock()
	for m, more := first, true; more; {
		// An event that shows its container out of scope costs nothing: on
		// a busy engine, inspecting every foreign container delayed the
		// containers in scope behind them.
		if id := containerID(m); id != "" && !scope.OutOfScope(m) {
			w.noteEvent(m, now)
			ch, ok := changes[id]
			if !ok {
				ch = &eventChange{}
				changes[id] = ch
				order = append(order, id)
			}
			ch.add(m)
		}
		select {
		case m = <-msgs:
		default:
			more = false
		}
	}
	for _, id := range order {
		ch := changes[id]
		if ch.lateHealth {
			time.AfterFunc(healthSettle, func() {
				if ctx.Err() == nil {
					w.startInspect(ctx, id, now)
				}
			})
			if !ch.inspect && !ch.gone && ch.state == "" && ch.health == "" {
				continue
			}
		}
		// An inspect under way may answer from before these events: it
		// is asked again, and they apply now.
		w.mu.Lock()
		w.inFlightLocked(id)
		w.mu.Unlock()
		if c, ok := w.cached(id); ok && !ch.inspect {
			if ch.gone {
				w.update(id, contract.Container{}, false, time.Now(), now)
			} else {
				w.update(id, ch.applyTo(c), true, time.Now(), now)
			}
			continue
		}
		if ch.gone && !ch.inspect {
			w.update(id, contract.Container{}, false, time.Now(), now)
			continue
		}
		w.startInspect(ctx, id, now)
	}
	return nil
}

// healthSettle is how long after a health_status event without a status
// (Podman's) the container is inspected for the check's result.
const healthSettle = 300 * time.Millisecond

// eventChange is what a burst of events says about one container.
type eventChange struct {
	inspect bool // new data only an inspect gives
	// lateHealth: a health check ran whose result only an inspect a
	// moment later tells (Podman).
	lateHealth bool
	gone       bool   // destroyed
	state      string // the state the events leave it in ("": unchanged)
	health     string // the health status they report ("": unchanged)
}

func (ch *eventChange) add(m events.Message) {
	if m.Type == events.NetworkEventType {
		ch.inspect = true // addresses changed
		return
	}
	switch a := m.Action; {
	case a == events.ActionDestroy || a == actionRemove:
		ch.gone = true
	case a == events.ActionDie || a == actionDied || a == events.ActionStop:
		ch.state = "exited"
	case a == events.ActionPause:
		ch.state = "paused"
	case a == events.ActionUnPause:
		ch.state = "running"
	case strings.HasPrefix(string(a), string(events.ActionHealthStatus)+": "):
		ch.health = strings.TrimPrefix(string(a), string(events.ActionHealthStatus)+": ")
	case a == events.ActionKill:
		// A stop noted by noteEvent; the container's data is unchanged.
	case a == events.ActionHealthStatus:
		// Podman's: no status in the action, and it sends the event before
		// it records the check's result (4.3 even puts the status from
		// before the check in the event), so an inspect at once still
		// reads the old one. The container is inspected a moment later.
		ch.lateHealth, ch.gone = true, false
	default: // start, rename, anything new
		ch.inspect, ch.gone = true, false
	}
}

// applyTo returns c as the events leave it.
func (ch *eventChange) applyTo(c contract.Container) contract.Container {
	if ch.state != "" {
		c.State = ch.state
	}
	if ch.health != "" {
		c.Health = ch.health
	}
	return c
}

// containerID is the container an event is about. Docker names a network
// event's container in an attribute (the actor is the network); Podman
// makes the container the actor.
func containerID(m events.Message) string {
	if m.Type == events.NetworkEventType {
		if id := m.Actor.Attributes["container"]; id != "" {
			return id
		}
	}
	return m.Actor.ID
}

// backoff doubles a delay from min to max.
type backoff struct{ min, max, cur time.Duration }

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	b.cur = min(max(b.cur*2, b.min), b.max)
	return b.cur
}
