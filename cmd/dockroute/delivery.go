package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/traefik"
)

// Delivery: writing a config is not serving it. Both outputs read back what
// the proxy runs and report, in the same words, whether it is "delivered":
// the proxy confirmed it runs every route dockroute published. Caddy's
// admin API answers with the config it runs, so the Caddy output knows at
// once (each push is followed by a read, and re-read every --caddy-check).
// Traefik's file provider answers nothing: with --traefik-api, dockroute
// asks Traefik's API which routers it runs after each publish, giving
// Traefik deliveryGrace to notice the file and load it, and again every
// deliveryRecheck.
const (
	deliveryGrace   = 10 * time.Second
	deliveryPoll    = 250 * time.Millisecond
	deliveryRecheck = 30 * time.Second
)

// delivery is the read-back state of one output.
type delivery struct {
	mu       sync.Mutex
	checked  bool      // a read-back has happened
	pending  time.Time // publish not confirmed yet, and since when (zero: none)
	problems []string  // what the proxy does not run, when not delivered
	total    int       // routes (Traefik: routers) published
}

// set records the result of a read-back of total routes (negative: as
// many as before).
func (d *delivery) set(total int, problems []string) {
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

// published notes a publish the proxy has yet to confirm.
func (d *delivery) published() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending.IsZero() {
		d.pending = time.Now()
	}
}

// state tells whether the proxy confirmed it runs every published route,
// how many it does not run, and, once a proxy has had its grace to load a
// publish and still does not run it all, why not ("" otherwise).
func (d *delivery) state() (confirmed bool, undelivered int, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	confirmed = d.checked && len(d.problems) == 0
	if confirmed || !d.checked || !d.pending.IsZero() && time.Since(d.pending) < deliveryGrace {
		return confirmed, len(d.problems), ""
	}
	shown := d.problems[:min(len(d.problems), 3)]
	why = fmt.Sprintf("not delivered: the proxy does not run %d of the %d routes dockroute published (%s", len(d.problems), d.total, strings.Join(shown, "; "))
	if len(d.problems) > len(shown) {
		why += "; ..."
	}
	return false, len(d.problems), why + ")"
}

// traefikDelivery reads back, through Traefik's API, the routers dockroute
// wrote.
type traefikDelivery struct {
	api  *traefik.API
	log  *slog.Logger
	d    *delivery
	want chan []string // the routers of each publish
}

func newTraefikDelivery(api *traefik.API, log *slog.Logger) *traefikDelivery {
	return &traefikDelivery{api: api, log: log, d: &delivery{}, want: make(chan []string, 1)}
}

// published hands over the routers of a publish (replacing one not yet
// picked up).
func (td *traefikDelivery) published(routers []string) {
	td.d.published()
	select {
	case <-td.want:
	default:
	}
	td.want <- routers
}

// run confirms each publish, polling until Traefik runs every router (or
// the grace passes, which it logs), then re-checks every deliveryRecheck.
func (td *traefikDelivery) run(ctx context.Context) {
	var want []string
	wait := deliveryRecheck
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case want = <-td.want:
			wait, warned = deliveryPoll, false
		case <-time.After(wait):
		}
		if want == nil {
			wait = deliveryRecheck
			continue
		}
		problems, err := td.check(ctx, want)
		if err != nil {
			problems = []string{err.Error()}
		}
		td.d.set(len(want), problems)
		_, _, why := td.d.state()
		switch {
		case len(problems) == 0:
			wait = deliveryRecheck
			if warned {
				td.log.Info("delivered: traefik runs every router dockroute wrote", "routers", len(want))
			}
			warned = false
		case why != "" && !warned:
			td.log.Warn(why)
			warned, wait = true, deliveryRecheck
		case why != "":
			wait = deliveryRecheck
		default:
			wait = deliveryPoll
		}
	}
}

func (td *traefikDelivery) check(ctx context.Context, want []string) ([]string, error) {
	running, err := td.api.Routers(ctx)
	if err != nil {
		return nil, err
	}
	return traefik.Undelivered(want, running), nil
}

// explainTraefik annotates a route for explain: whether Traefik runs its
// router, in delivery's words.
func explainTraefik(running map[string]traefik.RouterStatus, b route.Backend) string {
	name := traefik.Name(b.Host, b.Path)
	if problems := traefik.Undelivered([]string{name}, running); len(problems) > 0 {
		return " (NOT delivered: " + problems[0] + ")"
	}
	return " (delivered: Traefik runs " + name + "@file)"
}
