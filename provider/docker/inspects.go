package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/dockroute/dockroute/provider/docker/engine"
)

// eventInspects bounds the inspects events have in flight at once. They
// run beside the event loop, never in it: on a busy engine, inspects of
// containers outside --filter (whose events do not show it) hit their 10 s
// deadline one after another, and an in-scope unpause queued behind them
// was published 20 s late. The bound spares the engine a storm; it is
// wide, so a few hanging inspects never hold up the others.
const eventInspects = 64

// flight is an event's inspect under way for one container.
type flight struct {
	// again is set when something newer than the inspect's answer may be
	// known (another event, a full sync): the answer is dropped and the
	// container inspected again, at most maxAgain times in a row.
	again  bool
	agains int
}

const maxAgain = 3

// startInspect inspects id beside the event loop, one inspect per
// container at a time, and installs what it finds. received is when the
// events that asked for it arrived (for the change's latency).
func (w *Watcher) startInspect(ctx context.Context, id string, received time.Time) {
	w.mu.Lock()
	if f, ok := w.flights[id]; ok {
		f.again = true
		w.mu.Unlock()
		return
	}
	f := &flight{}
	w.flights[id] = f
	w.mu.Unlock()
	go w.runInspect(ctx, id, f, received)
}

func (w *Watcher) runInspect(ctx context.Context, id string, f *flight, received time.Time) {
	for {
		select {
		case w.inspectSlots <- struct{}{}:
		case <-ctx.Done():
			w.land(id)
			return
		}
		c, found, err := engine.Inspect(ctx, w.engine, id)
		<-w.inspectSlots
		w.mu.Lock()
		if f.again && f.agains < maxAgain && ctx.Err() == nil {
			f.again = false
			f.agains++
			w.mu.Unlock()
			continue
		}
		// The answer is installed before the flight ends, under the same
		// lock: an event applied in between would otherwise be overwritten
		// by this older answer (an unpause, seen undone 30 ms later).
		if err == nil && ctx.Err() == nil {
			w.updateLocked(id, c, found, time.Now(), received)
		}
		delete(w.flights, id)
		w.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			if perr := engine.Ping(ctx, w.engine); perr != nil {
				w.fail(fmt.Errorf("docker stopped answering: %w", perr))
			}
			w.inspectFailed(id, err, time.Now(), false)
		}
		return
	}
}

// land ends id's flight without an answer.
func (w *Watcher) land(id string) {
	w.mu.Lock()
	delete(w.flights, id)
	w.mu.Unlock()
}

// inFlightLocked tells whether an inspect of id is under way, marking it
// to be asked again: its answer may predate what the caller knows.
func (w *Watcher) inFlightLocked(id string) bool {
	f, ok := w.flights[id]
	if ok {
		f.again = true
	}
	return ok
}

// fail reports that the engine stopped answering: the event loop ends the
// stream, as when its own call fails.
func (w *Watcher) fail(err error) {
	select {
	case w.broken <- err:
	default:
	}
}

// rearm tells the event loop that its next wake may have moved.
func (w *Watcher) rearm() {
	select {
	case w.wakeMoved <- struct{}{}:
	default:
	}
}

// failed receives when an inspect beside the loop found the engine gone.
func (w *Watcher) failed() <-chan error { return w.broken }

// moved receives when the next wake may have moved.
func (w *Watcher) moved() <-chan struct{} { return w.wakeMoved }
