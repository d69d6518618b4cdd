package traefik

import (
	"context"
	"log/slog"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/output"
)

// Traefik's file provider answers nothing, so delivery asks Traefik's API
// which routers it runs: every deliveryPoll after a publish until it runs
// them all (or output.DeliveryGrace passes), then every deliveryRecheck.
const (
	deliveryPoll    = 250 * time.Millisecond
	deliveryRecheck = 30 * time.Second
)

// delivery reads back, through Traefik's API, the routers dockroute wrote.
type delivery struct {
	api  *API
	log  *slog.Logger
	d    *output.Delivery
	want chan []string // the routers of each publish
}

func newDelivery(api *API, log *slog.Logger) *delivery {
	return &delivery{api: api, log: log, d: &output.Delivery{}, want: make(chan []string, 1)}
}

// published hands over the routers of a publish (replacing one not yet
// picked up).
func (td *delivery) published(routers []string) {
	td.d.Published()
	select {
	case <-td.want:
	default:
	}
	td.want <- routers
}

// run confirms each publish, polling until Traefik runs every router (or
// the grace passes, which it logs), then re-checks every deliveryRecheck.
func (td *delivery) run(ctx context.Context) {
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
		td.d.Set(len(want), problems)
		_, _, why := td.d.State()
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

func (td *delivery) check(ctx context.Context, want []string) ([]string, error) {
	running, err := td.api.Routers(ctx)
	if err != nil {
		return nil, err
	}
	return Undelivered(want, running), nil
}

// DeliveryNotes asks Traefik's API (at api) once which routers it runs, and
// returns what explain says of each route: delivered or not, in the words
// the Caddy output uses too.
func DeliveryNotes(ctx context.Context, api string) func(route.Backend) string {
	a, err := NewAPI(api)
	if err != nil {
		return func(route.Backend) string { return "" }
	}
	running, err := a.Routers(ctx)
	if err != nil {
		return func(route.Backend) string { return " (delivery unknown: " + err.Error() + ")" }
	}
	return func(b route.Backend) string {
		name := Name(b.Host, b.Path)
		if problems := Undelivered([]string{name}, running); len(problems) > 0 {
			return output.NotDelivered(problems[0])
		}
		return " (delivered: Traefik runs " + name + "@file)"
	}
}
