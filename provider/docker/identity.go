package docker

import (
	"cmp"
	"context"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
)

// rootlessAdvertise is where the proxy reaches a rootless engine's
// published ports when the endpoint names no address: the proxy on the
// same host, as with a local socket.
const rootlessAdvertise = "127.0.0.1"

// identify asks the engine what it is, once per connection, and applies
// it: a new identity decides every container again. An engine that does
// not say is taken as a rootful Docker meanwhile, and asked again soon.
func (w *Watcher) identify(ctx context.Context) {
	w.mu.Lock()
	known := w.ident != nil
	w.mu.Unlock()
	if known {
		return
	}
	id, err := engine.Identify(ctx, w.engine)
	w.mu.Lock()
	defer w.mu.Unlock()
	// Asked again at the sync's retry (within seconds, not at the next
	// resync): a rootless Podman's first /info can time out, and until it
	// is known rootless its containers are refused "on no network".
	w.identFailed = err != nil
	if err != nil {
		w.log.Debug("the engine did not say what it is; following it as Docker until it does", "err", err)
		return
	}
	w.ident = &id
	args := []any{"engine", id.String()}
	if id.Rootless && w.opt.Address == "" {
		args = append(args, "routed_at", "published ports on "+cmp.Or(w.opt.Advertise, rootlessAdvertise),
			"why", "a rootless engine's container addresses are in a network namespace the host cannot reach; set ?addr=network on --docker-host to route them at their addresses anyway")
	}
	w.log.Info("connected", args...)
	w.redecideLocked(time.Now())
}

// decideOptionsLocked are the options containers are decided with.
func (w *Watcher) decideOptionsLocked() contract.Options { return decideOptions(w.ident, w.opt) }

// decideOptions are the operator's options as an engine of identity id
// (nil: unknown) is decided with: a rootless engine whose endpoint names
// no address mode is reached at its published ports on the host.
func decideOptions(id *engine.Identity, o Options) contract.Options {
	opt := o.Options
	if id != nil && id.Rootless && opt.Address == "" {
		opt.Address, opt.Advertise = contract.AddrPublished, cmp.Or(opt.Advertise, rootlessAdvertise)
	}
	return opt
}

// podmanStops is what explain says of a routed container on Podman, which
// announces no stop before the container exits (Docker sends its stop
// signal as an event, and dockroute drains on it).
const podmanStops = "engine: %s announces a stop only when the container has exited, so its route goes then: an app should keep serving for a moment after its stop signal (or run behind a proxy that retries, as Caddy does)"

// setConnected records the link's state (link.setConnected); an engine
// lost is asked again what it is at the next sync: the one that answers
// may be another (an upgrade, another engine on the same socket).
func (w *Watcher) setConnected(ok bool) {
	if !ok {
		w.mu.Lock()
		w.ident = nil
		w.mu.Unlock()
	}
	w.link.setConnected(ok)
}
