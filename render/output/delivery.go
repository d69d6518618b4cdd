package output

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// Delivery: writing a config is not serving it. Both outputs read back what
// the proxy runs and report, in the same words, whether it is "delivered":
// the proxy confirmed it runs every route dockroute published. Caddy's
// admin API answers with the config it runs, so the Caddy output knows at
// once (each push is followed by a read, and re-read every --caddy-check).
// Traefik's file provider answers nothing: with --traefik-api, dockroute
// asks Traefik's API which routers it runs after each publish, giving
// Traefik DeliveryGrace to notice the file and load it.
const DeliveryGrace = 10 * time.Second

// Delivery is the read-back state of one output. The zero value is ready.
type Delivery struct {
	mu       sync.Mutex
	checked  bool      // a read-back has happened
	pending  time.Time // publish not confirmed yet, and since when (zero: none)
	problems []string  // what the proxy does not run, when not delivered
	total    int       // routes (Traefik: routers) published
}

// Set records the result of a read-back of total routes (negative: as
// many as before).
func (d *Delivery) Set(total int, problems []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if total >= 0 {
		d.total = total
	}
	d.checked, d.problems = true, problems
	if len(problems) == 0 {
		d.pending = time.Time{}
	}
}

// Published notes a publish the proxy has yet to confirm.
func (d *Delivery) Published() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending.IsZero() {
		d.pending = time.Now()
	}
}

// Pending tells how long ago the publish the proxy has yet to confirm was
// made, and whether that is within DeliveryGrace (a route it does not run
// yet may be on its way: Traefik loads a file its throttle later).
func (d *Delivery) Pending() (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending.IsZero() {
		return 0, false
	}
	since := time.Since(d.pending)
	return since, since < DeliveryGrace
}

// notDelivered starts explain's note on a route the proxy does not run.
const notDelivered = " (NOT delivered: "

// NotDelivered is explain's note on a route the proxy does not run, and
// why (each output's DeliveryNotes), in the words Notes recognises.
func NotDelivered(why string) string { return notDelivered + why + ")" }

// Notes wraps a proxy's notes on routes for explain (render/traefik's and
// render/caddy's DeliveryNotes): a route the proxy does not run while a
// publish is on its way within the grace is "not delivered yet", not "NOT
// delivered", which explain said for a second after every start.
func (d *Delivery) Notes(notes func(route.Backend) string) func(route.Backend) string {
	return func(b route.Backend) string {
		s := notes(b)
		if rest, ok := strings.CutPrefix(s, notDelivered); ok {
			if since, within := d.Pending(); within {
				return fmt.Sprintf(" (not delivered yet: published %v ago, the proxy has yet to load it; %s", since.Round(10*time.Millisecond), rest)
			}
		}
		return s
	}
}

// State tells whether the proxy confirmed it runs every published route,
// how many it does not run, and, once a proxy has had its grace to load a
// publish and still does not run it all, why not ("" otherwise).
func (d *Delivery) State() (confirmed bool, undelivered int, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	confirmed = d.checked && len(d.problems) == 0
	if confirmed || !d.checked || !d.pending.IsZero() && time.Since(d.pending) < DeliveryGrace {
		return confirmed, len(d.problems), ""
	}
	shown := d.problems[:min(len(d.problems), 3)]
	why = fmt.Sprintf("not delivered: the proxy does not run %d of the %d routes dockroute published (%s", len(d.problems), d.total, strings.Join(shown, "; "))
	if len(d.problems) > len(shown) {
		why += "; ..."
	}
	return false, len(d.problems), why + ")"
}
