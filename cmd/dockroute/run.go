package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dockroute/dockroute/provider/coalesce"
	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/static"
	"github.com/dockroute/dockroute/provider/watchfile"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/traefik"
)

// daemon is `dockroute run`: providers (Docker, the routes file) → route
// table → coalescer → output, plus the config reload, metrics and signals
// around it.
type daemon struct {
	args  []string // the command line, re-read on every config reload
	log   *slog.Logger
	level *slog.LevelVar
	fleet *docker.Fleet // the engines followed
	// ownNetwork is what --network auto resolved to at start ("" if not
	// used); a reloaded config's "auto" means it too.
	ownNetwork string
	static     *static.Source // nil without --routes-file
	operator   operatorSources
	out        output
	metrics    *metrics
	// routes is the route table, kept from publish to publish: each
	// publish applies what changed (only publish, on the coalescer's
	// goroutine, uses it).
	routes *route.Builder
	// recent keeps routes that lost their last server as 503s for
	// --unavailable-grace; expiry pokes a publish when the next one ends.
	recent *route.Recent
	expiry *time.Timer
	// changedSince is when the oldest Docker change not yet published
	// happened (zero: none); only publish, on the coalescer's goroutine,
	// uses it.
	changedSince time.Time

	kick      chan struct{} // anything changed: publish again
	published atomic.Bool   // a complete publish has happened
	// publishingSince is when the publish under way began, in Unix
	// nanoseconds (0: none is): health reads it to tell a stuck one.
	publishingSince atomic.Int64
	publishTimeout  time.Duration // 0: publishDeadline
	// publishErr is the error of the last publish attempt, nil when it
	// succeeded: /healthz reports it while publishing keeps failing.
	publishErr atomic.Pointer[error]
	// configWatch follows the --config file (nil without one).
	configWatch *watchfile.Watcher
	// gc sizes the collector's headroom to the route state (gc.go).
	gc gcTuner

	mu  sync.Mutex
	cfg config
}

func run(ctx context.Context, cfg config, args []string) error {
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := cfg.logger(os.Stderr, level)
	operator := newOperatorSources(cfg, log)
	if err := operator.load(); err != nil {
		// Containers choosing a set or group are refused until it loads.
		log.Error("starting without the operator's middlewares or auth file", "err", err)
	}
	if err := operator.loadPolicy(); err != nil {
		return fmt.Errorf("--policy-file: %w (dockroute does not start without it: the names it binds would be open to any container)", err)
	}
	cfg.files = operator.files()
	var routesFile *static.Source
	if cfg.RoutesFile != "" {
		routesFile = static.NewSource(cfg.RoutesFile, log)
		if err := routesFile.Load(); err != nil {
			log.Error("starting without static routes", "err", err)
		}
		cfg.files.routes = routesFile.Value()
	}
	out, err := newOutput(cfg, log)
	if err != nil {
		return err
	}
	fleet, cfg, own, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer fleet.Close()
	if own != "" {
		log.Info("--network auto: routing the containers on dockroute's own network", "network", own)
	}
	d := &daemon{
		args: args, log: log, level: level, cfg: cfg, out: out, ownNetwork: own,
		fleet: fleet, operator: operator, static: routesFile,
		kick:   make(chan struct{}, 1),
		routes: route.NewBuilder(),
		recent: route.NewRecent(cfg.UnavailableGrace),
	}
	d.metrics = newMetrics(d.fleet, out.delivery())
	if co, ok := out.(*caddyOutput); ok {
		co.onError = d.metrics.caddyErrors.Inc
		if co.lookup != nil {
			d.metrics.countLookups(co.lookup)
		}
	}
	var engines []string
	for _, m := range fleet.Members() {
		engines = append(engines, m.Endpoint.String())
	}
	log.Info("dockroute starting", "version", version(), "output", out.String(), "docker", engines)
	return d.run(ctx)
}

func (d *daemon) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	goroutine := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if addr := d.config().MetricsAddr; addr != "" {
		srv, err := d.serveMetrics(addr)
		if err != nil {
			return err
		}
		goroutine(func() { <-ctx.Done(); srv.Close() })
	}
	if co, ok := d.out.(*caddyOutput); ok && co.lookup != nil {
		addr := d.config().dnsListen()
		serve, _, err := co.lookup.Listen(addr)
		if err != nil {
			return fmt.Errorf("--caddy-dns: %w", err)
		}
		d.log.Info("answering caddy's upstream lookups", "addr", addr, "caddy_asks", d.config().caddyLookup().Resolver)
		goroutine(func() { serve(ctx) })
	}
	goroutine(func() { d.fleet.Run(ctx) })
	goroutine(func() { d.out.watch(ctx, d.poke) })
	goroutine(func() { forward(ctx, d.fleet.Changed(), d.poke) })
	if d.static != nil {
		goroutine(func() {
			if err := d.static.Run(ctx); err != nil {
				d.log.Error("not watching the routes file", "err", err)
			}
		})
		goroutine(func() { forward(ctx, d.static.Changed(), d.routesFileChanged) })
	}
	d.operator.watch(ctx, d.log, goroutine, d.operatorFilesChanged)
	if path := d.config().ConfigFile; path != "" {
		d.configWatch = watchfile.New(path, 50*time.Millisecond, d.reload, d.log)
		d.configWatch.Ignore = watchfile.OnlyFile(path)
		goroutine(func() {
			if err := d.configWatch.Run(ctx); err != nil {
				d.log.Error("not watching the config file", "err", err)
			}
		})
	}
	goroutine(func() { d.onSIGHUP(ctx) })

	coalesce.Run(ctx, d.config().Coalesce, d.kick, func() error { return d.publish(ctx) })
	cancel()
	wg.Wait()
	d.log.Info("dockroute stopped")
	return nil
}

func (d *daemon) config() config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// poke asks for a publish; pokes in between collapse into one.
func (d *daemon) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func forward(ctx context.Context, from <-chan struct{}, poke func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-from:
			poke()
		}
	}
}

// table is the route table of the providers' backends now, the routes
// file's winning where both name a host and path (static.Merge); false
// until Docker has been synced once, as an unknown table must never be
// published as an empty one. Only what changed since the last call is
// worked on.
func (d *daemon) table() (route.Table, bool) {
	changes, ok := d.fleet.Changes()
	if !ok {
		return route.Table{}, false
	}
	for id, bs := range changes {
		d.routes.Set(id, bs)
	}
	if d.static != nil {
		d.routes.Override(d.static.Value())
	}
	return d.routes.Table(), true
}

func (d *daemon) publish(ctx context.Context) error {
	// Tuned before the work too, not only after: the first publish, with
	// the whole fleet to render and read back, is the peak of the heap.
	d.gc.tune()
	t, ok := d.table()
	if !ok {
		return nil
	}
	t = d.keepRecent(t)
	if since := d.fleet.ChangedSince(); !since.IsZero() && (d.changedSince.IsZero() || since.Before(d.changedSince)) {
		d.changedSince = since
	}
	start := time.Now()
	did, err := d.publishBounded(ctx, t, start)
	took := time.Since(start)
	d.metrics.observe(t, took, did, err)
	if err != nil {
		d.publishErr.Store(&err)
		d.log.Error("publish failed; will retry", "output", d.out.String(), "err", err)
		if n := d.recent.Forget(); n > 0 {
			// A reverted routes file of 3,000 routes, kept as 503s, kept
			// the file too big for the disk until the grace ended.
			d.log.Warn("dropping the routes kept as 503 (their containers stopped) from the next try, to make it smaller", "routes", n)
		}
		return err
	}
	d.publishErr.Store(nil)
	d.published.Store(true)
	d.gc.tune()
	// The Docker change this publish carries, from the event's arrival.
	var sinceChange time.Duration
	if !d.changedSince.IsZero() {
		sinceChange = time.Since(d.changedSince)
		d.changedSince = time.Time{}
		if did != unchanged {
			d.metrics.changeToPublish.Observe(sinceChange.Seconds())
		}
	}
	switch did {
	case written:
		d.log.Info("published", "output", d.out.String(), "routes", len(t.Routes), "took", took, "since_change", sinceChange)
	case answered:
		d.log.Info("published by lookup answers alone (caddy's config unchanged)", "routes", len(t.Routes), "took", took, "since_change", sinceChange)
	}
	return nil
}

// publishDeadline bounds one publish: a Caddy that stops answering its
// admin API, or a file system that hangs a write, must not hold every
// later change back without a word. Past it the publish's context ends,
// a warning is logged and /healthz turns 503 until the publish returns.
// A full load of 10,000 routes takes Caddy 3–4 s here.
const publishDeadline = 15 * time.Second

// publishBounded runs the output's publish under publishDeadline, and
// records while it runs so that health can tell a stuck one.
func (d *daemon) publishBounded(ctx context.Context, t route.Table, start time.Time) (outcome, error) {
	deadline := d.deadline()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	d.publishingSince.Store(start.UnixNano())
	defer d.publishingSince.Store(0)
	late := time.AfterFunc(deadline, func() {
		d.log.Warn("a publish is past its deadline; later changes wait for it", "output", d.out.String(), "deadline", deadline)
	})
	defer late.Stop()
	return d.out.publish(ctx, t)
}

// stuckPublish says how long the publish under way has run, when that is
// past its deadline ("" otherwise).
func (d *daemon) stuckPublish(now time.Time) string {
	since := d.publishingSince.Load()
	if since == 0 {
		return ""
	}
	if took := now.Sub(time.Unix(0, since)); took > d.deadline() {
		return fmt.Sprintf("unhealthy: a publish to %s has run for %s, past its %s deadline; later changes wait for it (the last published routes stay in place)", d.out.String(), took.Round(time.Millisecond), d.deadline())
	}
	return ""
}

// deadline is publishDeadline, or the tests' shorter one.
func (d *daemon) deadline() time.Duration {
	if d.publishTimeout > 0 {
		return d.publishTimeout
	}
	return publishDeadline
}

// keepRecent adds the routes that lost their servers within the grace, and
// arms a publish for when the next of them is due to go.
func (d *daemon) keepRecent(t route.Table) route.Table {
	now := time.Now()
	t, next := d.recent.Keep(t, now)
	if d.expiry != nil {
		d.expiry.Stop()
	}
	if !next.IsZero() {
		d.expiry = time.AfterFunc(next.Sub(now), d.poke)
	}
	return t
}

// reload re-reads the config file (with the same command line and
// environment, so their precedence holds), applies what can be applied
// live, and keeps the running config when the new one is invalid.
func (d *daemon) reload() {
	var msg strings.Builder
	next, err := parseConfig("run", d.args, &msg)
	if err != nil {
		d.log.Error("config file not reloaded; keeping the running config", "err", strings.TrimSpace(msg.String()))
		return
	}
	next = next.withOwnNetwork(d.ownNetwork)
	d.mu.Lock()
	changed := changedKeys(d.cfg, next)
	var live, restart []string
	for _, k := range changed {
		if liveKeys[k] {
			live = append(live, k)
		} else {
			restart = append(restart, k)
		}
	}
	// Only live settings take effect; the others keep their running value.
	// What would run is validated as a whole: a file valid on its own can
	// be invalid beside the settings it cannot change live.
	applied := withLive(d.cfg, next)
	if err := applied.where(applied.validate("run")); err != nil {
		d.mu.Unlock()
		d.log.Error("config file not reloaded; keeping the running config", "err", err.Error())
		return
	}
	d.cfg = applied
	d.mu.Unlock()
	if len(restart) > 0 {
		d.log.Warn("config changes that need a restart were not applied", "keys", restart)
	}
	if len(live) == 0 {
		return
	}
	d.level.Set(applied.LogLevel)
	d.fleet.SetOptions(applied.dockerOptions())
	d.out.setOptions(applied)
	d.poke()
	d.log.Info("config reloaded", "applied", live)
}

// operatorFilesChanged applies what the middlewares and auth files define
// now: every container is decided again (a set it chose may be gone) and
// the output renders the new definitions.
func (d *daemon) operatorFilesChanged() {
	d.mu.Lock()
	routes := d.cfg.files.routes
	d.cfg.files = d.operator.files()
	d.cfg.files.routes = routes
	cfg := d.cfg
	d.mu.Unlock()
	d.fleet.SetOptions(cfg.dockerOptions())
	d.out.setOptions(cfg)
	d.poke()
}

// routesFileChanged applies a new routes file: its hosts and paths are
// reserved from containers, so every container is decided again.
func (d *daemon) routesFileChanged() {
	d.mu.Lock()
	d.cfg.files.routes = d.static.Value()
	cfg := d.cfg
	d.mu.Unlock()
	d.fleet.SetOptions(cfg.dockerOptions())
	d.poke()
}

// onSIGHUP forces a full resync of Docker, sets every file watch up again
// and re-reads the files.
func (d *daemon) onSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			d.log.Info("SIGHUP: full resync, re-reading the files and watching them again")
			d.fleet.ResyncNow()
			if d.static != nil {
				d.static.Rearm()
			}
			d.operator.rearm()
			if d.configWatch != nil {
				d.configWatch.Rearm()
			}
			d.out.rearm()
			d.poke()
		}
	}
}

// health is what /healthz says: whether dockroute is healthy, and the
// text that says so or why not.
func (d *daemon) health() (ok bool, text string) {
	if why := d.stuckPublish(time.Now()); why != "" {
		return false, why
	}
	switch {
	case !d.published.Load():
		return false, "not ready: no complete publish yet"
	case !d.anyEngineConnected():
		return false, "unhealthy: docker is unreachable (the last published routes stay in place)"
	}
	if err := d.publishErr.Load(); err != nil {
		return false, fmt.Sprintf("unhealthy: publishing fails, retrying with backoff (the last published routes stay in place): %v", *err)
	}
	if dl := d.out.delivery(); dl != nil {
		if _, _, why := dl.state(); why != "" {
			return false, "unhealthy: " + why
		}
	}
	// Healthy while any engine is; name the others.
	var lost []string
	for _, e := range d.fleet.Engines() {
		if !e.Connected {
			lost = append(lost, e.Name)
		}
	}
	if len(lost) > 0 {
		return true, fmt.Sprintf("ok, but engines %s are unreachable (their routes stay for --engine-grace, then go)", strings.Join(lost, ", "))
	}
	return true, "ok"
}

func (d *daemon) serveMetrics(addr string) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: d.metrics.handler(d.health, d.serveExplain, d.config().Pprof), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server", "err", err)
		}
	}()
	d.log.Info("serving /metrics and /healthz", "addr", l.Addr().String())
	return srv, nil
}

// connect opens a client for every engine and resolves --network auto
// with the first (the one dockroute runs on); own is the network that
// named ("" without auto).
func connect(ctx context.Context, cfg config, log *slog.Logger) (fleet *docker.Fleet, _ config, own string, err error) {
	fleet, err = docker.NewFleet(cfg.endpoints(), cfg.dockerOptions(), cfg.Resync, cfg.EngineGrace, log)
	if err != nil {
		return nil, cfg, "", fmt.Errorf("docker client: %w", err)
	}
	if cfg, own, err = resolveNetwork(ctx, cfg, fleet.Members()[0].Engine); err != nil {
		fleet.Close()
		return nil, cfg, "", err
	}
	fleet.SetOptions(cfg.dockerOptions())
	return fleet, cfg, own, nil
}

// anyEngineConnected tells whether some engine's events are followed.
func (d *daemon) anyEngineConnected() bool {
	for _, e := range d.fleet.Engines() {
		if e.Connected {
			return true
		}
	}
	return false
}

// render prints the config for the running containers (and the routes
// file) once.
func render(ctx context.Context, cfg config, stdout io.Writer) error {
	log := cfg.logger(os.Stderr, max(cfg.LogLevel, slog.LevelError)) // the output is the answer
	cfg, src, err := withOperatorFiles(cfg, log)
	if err != nil {
		return err
	}
	out, err := newOutput(cfg, log)
	if err != nil {
		return err
	}
	fleet, cfg, _, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer fleet.Close()
	d := &daemon{log: log, cfg: cfg, out: out, fleet: fleet, routes: route.NewBuilder(), static: src}
	if err := d.fleet.Sync(ctx); err != nil {
		return err
	}
	t, _ := d.table()
	_, err = stdout.Write(out.render(t))
	return err
}

// deliveryNotes returns, for explain, what the proxy says of each route:
// delivered or not, in the same words for both outputs. Without a way to
// ask (Traefik without --traefik-api) it says nothing.
func deliveryNotes(ctx context.Context, cfg config) func(route.Backend) string {
	none := func(route.Backend) string { return "" }
	switch {
	case cfg.Output == "traefik" && cfg.TraefikAPI != "":
		api, err := traefik.NewAPI(cfg.TraefikAPI)
		if err != nil {
			return none
		}
		running, err := api.Routers(ctx)
		if err != nil {
			return func(route.Backend) string { return " (delivery unknown: " + err.Error() + ")" }
		}
		return func(b route.Backend) string { return explainTraefik(running, b) }
	case cfg.Output == "caddy":
		admin, err := caddy.NewAdmin(cfg.CaddyAdmin)
		if err != nil {
			return none
		}
		raw, _, err := admin.Get(ctx, "/id/"+cfg.CaddyServer)
		var s caddy.Server
		if err == nil {
			err = json.Unmarshal(raw, &s)
		}
		if err != nil {
			return func(route.Backend) string { return " (NOT delivered: " + err.Error() + ")" }
		}
		return func(b route.Backend) string {
			if s.Serves(b.Host, b.Path) {
				return " (delivered: Caddy's server " + cfg.CaddyServer + " runs this route)"
			}
			return " (NOT delivered: Caddy's server " + cfg.CaddyServer + " does not run this route)"
		}
	}
	return none
}

func formatVerdict(v docker.Verdict, overridden []route.Backend, annotate func(route.Backend) string) string {
	var b strings.Builder
	name := v.Name
	if v.ID != "" {
		name += " (" + v.ID[:min(12, len(v.ID))] + ")"
	}
	if v.Service {
		name = "service " + name
	}
	if v.Engine != "" {
		name += " on " + v.Engine
	}
	switch {
	case v.Routed():
		fmt.Fprintf(&b, "%s: routed\n", name)
		for _, be := range v.Backends {
			note := ""
			if be.Strip && be.Path != "" {
				note = " (prefix " + be.Path + " stripped)"
			}
			for _, o := range overridden {
				if o.Host == be.Host && o.Path == be.Path && o.Server == be.Server {
					note += " (NOT used: the routes file has a static route for " + be.Host + be.Path + ", and static routes win)"
				}
			}
			target := map[string]string{"": "http://", "https": "https://", "h2c": "h2c://"}[be.Proto] + be.Server
			if be.TCP {
				target = be.Server + " (TLS passthrough, by SNI)"
			}
			fmt.Fprintf(&b, "  %s%s -> %s%s%s\n", be.Host, be.Path, target, note, annotate(be))
		}
	case v.Code == docker.CodeInspectFailed:
		fmt.Fprintf(&b, "%s: UNKNOWN: %s\n", name, v.Reason)
	case v.Code == docker.CodeClaimConflict:
		fmt.Fprintf(&b, "%s: NOT routed: every route it asks for is held by another container, with other settings\n", name)
	case v.OptedIn:
		fmt.Fprintf(&b, "%s: NOT routed: %s\n", name, v.Reason)
	default:
		fmt.Fprintf(&b, "%s: ignored: %s\n", name, v.Reason)
	}
	for _, c := range v.Conflicts {
		fmt.Fprintf(&b, "  NOT routed: %s%s: %s\n", c.Backend.Host, c.Backend.Path, c.Reason)
	}
	for _, n := range v.Info {
		fmt.Fprintf(&b, "  chosen: %s\n", n)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}
