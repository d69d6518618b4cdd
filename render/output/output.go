// Package output is what the daemon publishes through: the interface every
// proxy's output implements (render/traefik's file, render/caddy's admin
// API), what one publish did, and the read-back of what the proxy runs.
// A third proxy is a third type behind Output; the daemon does not change.
package output

import (
	"context"

	"github.com/dockroute/dockroute/provider/route"
)

// Output is where routes go.
type Output interface {
	// Publish makes the proxy serve t and says how; an error means
	// "retry later". Only one goroutine (the coalescer's) calls it.
	Publish(ctx context.Context, t route.Table) (Outcome, error)
	// Watch repairs the output until ctx ends, when something other than
	// dockroute changed it: it calls poke to have the table published
	// again.
	Watch(ctx context.Context, poke func())
	// Rearm sets up again whatever Watch watches with (SIGHUP).
	Rearm()
	// Render is the proxy's config for t, for `dockroute render`.
	Render(t route.Table) []byte
	// Delivery is what the proxy confirmed it runs; nil when it cannot
	// be asked (Traefik without its API).
	Delivery() *Delivery
	String() string
}

// Outcome is what a publish did to the proxy.
type Outcome string

const (
	Unchanged Outcome = "unchanged" // it already ran the table
	Written   Outcome = "written"   // its config changed: a Traefik file, a Caddy load
	Answered  Outcome = "answered"  // only Caddy's upstream lookups answer differently: no load
)
