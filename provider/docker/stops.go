package docker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"golang.org/x/sys/unix"
)

// A stop begins with a "kill" event carrying the stop signal, a grace
// period before the container exits: dockroute takes the container out of
// routing at once, so the proxy sends it no new requests while it finishes
// the ones it has. But a container may survive the signal (a JVM's SIGQUIT
// thread dump, an app that ignores SIGTERM, a stop signal used for a
// reload), and then nothing else will ever be said about it. So a stop is
// only believed for as long as Docker itself would wait: the container's
// stop timeout, plus stopSlack. A container still running after that is
// routed again.
//
// Stops are derived from Docker's own event log, never from a mark only a
// lucky event could clear: the watcher re-reads recent kills on every full
// sync, and explain reads the same log, so both always agree.

// DefaultStopTimeout is how long `docker stop` waits before SIGKILL when the
// container sets no timeout of its own (the engine's default).
const DefaultStopTimeout = 10 * time.Second

// stopSlack is how much longer than its stop timeout a stopping container
// is given to exit before it is believed to have survived the signal.
const stopSlack = 2 * time.Second

// maxKillsKept bounds the kills remembered per container.
const maxKillsKept = 8

// kill is one "kill" event: a signal sent to a container.
type kill struct {
	At     time.Time
	Signal string // as Docker reports it: a number
}

// kills maps a container ID to the kills it received since it last started.
type kills map[string][]kill

// note applies one container event: a kill is remembered; a start, die or
// destroy ends whatever stop was under way.
func (k kills) note(m events.Message, now time.Time) {
	if m.Type != events.ContainerEventType || m.Actor.ID == "" {
		return
	}
	switch m.Action {
	case events.ActionKill:
		at := eventTime(m, now)
		list := k[m.Actor.ID]
		list = append(list, kill{At: at, Signal: m.Actor.Attributes["signal"]})
		if len(list) > maxKillsKept {
			list = list[len(list)-maxKillsKept:]
		}
		k[m.Actor.ID] = list
	case events.ActionStart, events.ActionDie, actionDied, events.ActionDestroy, actionRemove:
		delete(k, m.Actor.ID)
	}
}

// eventTime is when the engine says the event happened, never later than
// now (the engine's clock may run ahead of ours).
func eventTime(m events.Message, now time.Time) time.Time {
	if m.TimeNano == 0 {
		return now
	}
	if at := time.Unix(0, m.TimeNano); at.Before(now) {
		return at
	}
	return now
}

// stopWindow is how long after its stop signal c is believed to be
// stopping.
func stopWindow(c contract.Container) time.Duration {
	d := c.StopTimeout
	if d <= 0 {
		d = DefaultStopTimeout
	}
	return d + stopSlack
}

// stoppingUntil tells until when c is stopping, given the kills it
// received: the zero time when it is not.
func stoppingUntil(c contract.Container, ks []kill) time.Time {
	var until time.Time
	for _, k := range ks {
		if isStopSignal(k.Signal, c.StopSignal) {
			until = k.At.Add(stopWindow(c))
		}
	}
	return until
}

// stopEvents selects the events that start and end stops.
func stopEvents() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionKill)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(actionDied)),
		filters.Arg("event", string(events.ActionDestroy)),
		filters.Arg("event", string(actionRemove)),
	)
}

// recentKills reads, from the engine's event log, the kills each of the
// given containers received since it last started, as far back as the
// longest stop window among them.
func recentKills(ctx context.Context, e engine.Engine, cs map[string]*contract.Container, now time.Time) (kills, error) {
	window := time.Duration(0)
	for _, c := range cs {
		window = max(window, stopWindow(*c))
	}
	k := kills{}
	if len(cs) == 0 {
		return k, nil
	}
	msgs, err := engine.PastEvents(ctx, e, now.Add(-window), now, stopEvents())
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if _, ok := cs[m.Actor.ID]; ok {
			k.note(m, now)
		}
	}
	return k, nil
}

// isStopSignal tells whether a kill event's signal ends the container: the
// usual terminating signals, or the container's own stop signal. Docker
// reports signals as numbers; stop signals may be names. Podman reports
// none: its kill is taken as a stop, which the stop window undoes if the
// container survives it.
func isStopSignal(sig, stopSignal string) bool {
	if sig == "" {
		return true
	}
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

// earliest returns the earliest non-zero time of ts, or the zero time.
func earliest(ts ...time.Time) time.Time {
	ts = slices.DeleteFunc(ts, time.Time.IsZero)
	if len(ts) == 0 {
		return time.Time{}
	}
	return slices.MinFunc(ts, time.Time.Compare)
}
