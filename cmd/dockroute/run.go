package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dockroute/dockroute/cmd/dockroute/gctune"
	"github.com/dockroute/dockroute/cmd/dockroute/metrics"
	"github.com/dockroute/dockroute/provider/coalesce"
	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/operator"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/sleep"
	"github.com/dockroute/dockroute/provider/watchfile"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/hold"
	"github.com/dockroute/dockroute/render/output"
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
	operator   operator.Sources
	out        *output.Bounded // the output, each publish under a deadline
	metrics    *metrics.Metrics
	// routes is the route table, kept from publish to publish: each
	// publish applies what changed (only publish, on the coalescer's
	// goroutine, uses it).
	routes *route.Builder
	// recent keeps routes that lost their last server as 503s for
	// --unavailable-grace; expiry pokes a publish when the next one ends.
	recent *route.Recent
	expiry *time.Timer
	// lastErr is the publish error last logged at Error, and when.
	lastErr   string
	lastErrAt time.Time
	// changedSince is when the oldest Docker change not yet published
	// happened (zero: none); only publish, on the coalescer's goroutine,
	// uses it.
	changedSince time.Time

	// hold holds requests for hosts whose containers all stopped (nil
	// with --hold 0), listening on holdL.
	hold  *hold.Endpoint
	holdL net.Listener
	// respL is where the Responder listens for Caddy's host lookup route
	// (nil when hosts are not looked up).
	respL net.Listener
	// sleeper puts idle containers to sleep and wakes them (nil without
	// --sleep); the holding endpoint tells it of their requests.
	sleeper *sleep.Sleeper

	kick      chan struct{} // anything changed: publish again
	published atomic.Bool   // a complete publish has happened
	// publishErr is the error of the last publish attempt, nil when it
	// succeeded: /healthz reports it while publishing keeps failing.
	publishErr atomic.Pointer[error]
	// configWatch follows the --config file (nil without one).
	configWatch *watchfile.Watcher
	// gc sizes the collector's headroom to the route state (gctune).
	gc gctune.Tuner

	mu  sync.Mutex
	cfg config
}

func run(ctx context.Context, cfg config, args []string) error {
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := cfg.logger(os.Stderr, level)
	holder, holdL, err := listenHold(&cfg, log)
	if err != nil {
		return err
	}
	respL, err := listenResponder(&cfg)
	if err != nil {
		if holdL != nil {
			holdL.Close()
		}
		return err
	}
	p, err := bringUp(ctx, cfg, log, true, true)
	if err != nil {
		for _, l := range []net.Listener{holdL, respL} {
			if l != nil {
				l.Close()
			}
		}
		return err
	}
	defer p.fleet.Close()
	if p.own != "" {
		log.Info("--network auto: routing the containers on dockroute's own network", "network", p.own)
	}
	d := &daemon{
		args: args, log: log, level: level, cfg: p.cfg, out: &output.Bounded{Output: p.out, Log: log}, ownNetwork: p.own,
		fleet: p.fleet, operator: p.operator,
		kick:   make(chan struct{}, 1),
		routes: route.NewBuilder(),
		recent: route.NewRecent(p.cfg.UnavailableGrace),
		hold:   holder, holdL: holdL, respL: respL,
	}
	d.metrics = metrics.New(d.fleet, d.out.Delivery())
	if holder != nil {
		d.metrics.CountHolds(holder.Stats)
	}
	if p.cfg.Sleep {
		d.sleeper = sleep.New(d.fleet, p.cfg.Hold, d.poke, log)
		holder.Sleep = d.sleeper
		d.metrics.CountSleeps(d.sleeper.Stats)
	}
	if co, ok := p.out.(*caddy.Output); ok {
		co.OnError = d.metrics.CaddyError
		if co.Lookup() != nil {
			d.metrics.CountLookups(co.Lookup())
		}
		if p.cfg.CaddyTLS && p.cfg.looksUpHosts() {
			d.metrics.CountAsks(co.Asks)
		}
	}
	var engines []string
	for _, m := range d.fleet.Members() {
		engines = append(engines, m.Endpoint.String())
	}
	log.Info("dockroute starting", "version", version(), "output", d.out.String(), "docker", engines)
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
	if co, ok := d.out.Output.(*caddy.Output); ok && co.Lookup() != nil {
		serve, bound, err := co.Lookup().Listen(d.config().dnsListen())
		if err != nil {
			return fmt.Errorf("--caddy-dns: %w", err)
		}
		// Before the first publish: the port is in Caddy's config.
		d.mu.Lock()
		d.cfg.dnsAt = bound
		cfg := d.cfg
		d.mu.Unlock()
		setOutputOptions(d.out.Output, cfg)
		l := cfg.caddyLookup()
		d.log.Info("answering caddy's upstream lookups", "addr", bound, "caddy_asks", l.Resolver, "plain_hosts_looked_up", l.Hosts != "")
		goroutine(func() { serve(ctx) })
	}
	if co, ok := d.out.Output.(*caddy.Output); ok && d.respL != nil {
		goroutine(func() { <-ctx.Done(); d.respL.Close() })
		goroutine(func() { caddy.ServeResponder(d.respL, co.Responder()) })
	}
	if d.holdL != nil {
		d.log.Info("holding requests for hosts whose containers all stopped until one is ready", "limit", d.hold.Limit, "listen", d.holdL.Addr().String(), "proxy_dials", d.config().holdAt.addr)
		goroutine(func() {
			if err := d.hold.Serve(ctx, d.holdL); err != nil {
				d.log.Error("the holding endpoint stopped", "err", err)
			}
		})
	}
	goroutine(func() { d.fleet.Run(ctx) })
	if d.sleeper != nil {
		d.log.Info("putting containers labelled dockroute.idle to sleep when idle, and waking them on the next request")
		goroutine(func() { d.sleeper.Run(ctx) })
	}
	goroutine(func() { d.out.Watch(ctx, d.poke) })
	goroutine(func() { forward(ctx, d.fleet.Changed(), d.poke) })
	d.operator.Watch(ctx, d.log, goroutine, d.operatorFilesChanged)
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

	co := d.config().Coalesce
	co.Urgent = d.fleet.Urgent()
	coalesce.Run(ctx, co, d.kick, func() error { return d.publish(ctx) })
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
		if d.sleeper != nil {
			d.sleeper.Track(id, bs)
		}
	}
	if bs, ok := d.operator.Routes(); ok {
		d.routes.Override(bs)
	}
	return d.routes.Table(), true
}

func (d *daemon) publish(ctx context.Context) error {
	// Tuned before the work too, not only after: the first publish, with
	// the whole fleet to render and read back, is the peak of the heap.
	d.gc.Tune()
	t, ok := d.table()
	if !ok {
		return nil
	}
	t = d.keepRecent(t)
	if d.sleeper != nil {
		t = d.sleeper.Keep(t)
	}
	if since := d.fleet.ChangedSince(); !since.IsZero() && (d.changedSince.IsZero() || since.Before(d.changedSince)) {
		d.changedSince = since
	}
	if d.hold != nil {
		// Before the proxy: requests it holds go to a new container at
		// once, while the proxy loads its new config.
		d.hold.Update(t)
	}
	start := time.Now()
	did, err := d.out.Publish(ctx, t)
	took := time.Since(start)
	d.metrics.Observe(t, took, did, err)
	if err != nil {
		d.publishErr.Store(&err)
		d.logPublishError(err)
		if n := d.recent.Forget(); n > 0 {
			// A reverted routes file of 3,000 routes, kept as 503s, kept
			// the file too big for the disk until the grace ended.
			d.log.Warn("dropping the routes kept as 503 (their containers stopped) from the next try, to make it smaller", "routes", n)
		}
		return err
	}
	d.publishErr.Store(nil)
	d.lastErr = ""
	d.published.Store(true)
	d.gc.Tune()
	// The Docker change this publish carries, from the event's arrival.
	var sinceChange time.Duration
	if !d.changedSince.IsZero() {
		sinceChange = time.Since(d.changedSince)
		d.changedSince = time.Time{}
		if did != output.Unchanged {
			d.metrics.ObserveChange(sinceChange)
		}
	}
	switch did {
	case output.Written:
		d.log.Info("published", "output", d.out.String(), "routes", len(t.Routes), "took", took, "since_change", sinceChange)
	case output.Answered:
		d.log.Info("published by lookup answers alone (caddy's config unchanged)", "routes", len(t.Routes), "took", took, "since_change", sinceChange)
	}
	return nil
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
	next = next.withOwnNetwork(d.ownNetwork).withHold(d.cfg.holdAt).withResponder(d.cfg.responder, d.cfg.askToken).withDNS(d.cfg.dnsAt)
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
	setOutputOptions(d.out.Output, applied)
	d.poke()
	d.log.Info("config reloaded", "applied", live)
}

// operatorFilesChanged applies what the operator's files define now:
// every container is decided again (a set it chose may be gone, a name the
// routes file or the policy takes may be reserved now) and the output
// renders the new definitions.
func (d *daemon) operatorFilesChanged() {
	d.mu.Lock()
	d.cfg.files = d.operator.Files()
	cfg := d.cfg
	d.mu.Unlock()
	d.fleet.SetOptions(cfg.dockerOptions())
	setOutputOptions(d.out.Output, cfg)
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
			d.operator.Rearm()
			if d.configWatch != nil {
				d.configWatch.Rearm()
			}
			d.out.Rearm()
			d.poke()
		}
	}
}

// health is what /healthz says: whether dockroute is healthy, and the
// text that says so or why not.
func (d *daemon) health() (ok bool, text string) {
	if why := d.out.Stuck(time.Now()); why != "" {
		return false, "unhealthy: " + why
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
	if dl := d.out.Delivery(); dl != nil {
		if _, _, why := dl.State(); why != "" {
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
	srv := &http.Server{Handler: d.metrics.Handler(d.health, d.serveExplain, d.config().Pprof), ReadHeaderTimeout: 5 * time.Second}
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
	p, err := bringUp(ctx, cfg, log, false, true)
	if err != nil {
		return err
	}
	defer p.fleet.Close()
	d := &daemon{log: log, cfg: p.cfg, out: &output.Bounded{Output: p.out, Log: log}, fleet: p.fleet, routes: route.NewBuilder(), operator: p.operator}
	if err := d.fleet.Sync(ctx); err != nil {
		return err
	}
	t, _ := d.table()
	_, err = stdout.Write(d.out.Render(t))
	return err
}

// samePublishError is how long a publish error already logged is logged
// again only at Debug: a publish is retried every second at most, and a
// cause that does not go away (a taken listen address, a full disk) gave
// an ERROR line a second. /healthz and the metrics say it all along.
const samePublishError = 30 * time.Second

// logPublishError logs a failed publish: at Error when its error is new
// or was last logged samePublishError ago, else at Debug. Only publish,
// on the coalescer's goroutine, calls it.
func (d *daemon) logPublishError(err error) {
	now := time.Now()
	if text := err.Error(); text != d.lastErr || now.Sub(d.lastErrAt) >= samePublishError {
		d.lastErr, d.lastErrAt = text, now
		d.log.Error("publish failed; will retry", "output", d.out.String(), "err", err)
		return
	}
	d.log.Debug("publish failed again; will retry", "output", d.out.String(), "err", err)
}

// listenResponder opens the Responder's listener, on the loopback
// address Caddy asks dockroute's DNS at, when Caddy may look hosts up.
func listenResponder(cfg *config) (net.Listener, error) {
	if !cfg.looksUpHosts() {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(cfg.dnsListen())
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("--caddy-dns: the answer for unknown hosts: %w", err)
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	cfg.responder, cfg.askToken = l.Addr().String(), hex.EncodeToString(tok)
	return l, nil
}

// listenHold opens the holding endpoint's listener when cfg holds
// requests, and records in cfg where the proxy reaches it.
//
// A restarted dockroute takes up the token and port its Traefik file
// already names, when it can: the file then stays as it is, and Traefik
// does not reload 10,000 routes for a restart. (Any port is taken
// otherwise, and a new token; the first publish writes them.)
func listenHold(cfg *config, log *slog.Logger) (*hold.Endpoint, net.Listener, error) {
	if !cfg.holds() {
		return nil, nil, nil
	}
	token, addr := "", cfg.HoldListen
	if cfg.Output == "traefik" {
		if data, err := os.ReadFile(filepath.Join(cfg.TraefikDir, cfg.TraefikFile)); err == nil {
			if lastAddr, lastToken, ok := hold.Named(data); ok {
				token = lastToken
				if host, port, _ := net.SplitHostPort(addr); port == "0" && cfg.HoldAdvertise == "" {
					if lh, lp, _ := net.SplitHostPort(lastAddr); lh == host {
						addr = net.JoinHostPort(host, lp)
					}
				}
			}
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil && addr != cfg.HoldListen {
		l, err = net.Listen("tcp", cfg.HoldListen) // the last port is taken
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--hold-listen: %w", err)
	}
	if token == "" {
		tok := make([]byte, 16)
		rand.Read(tok)
		token = hex.EncodeToString(tok)
	}
	cfg.holdAt = &holdTarget{addr: cmp.Or(cfg.HoldAdvertise, l.Addr().String()), token: token}
	return &hold.Endpoint{Limit: cfg.Hold, Token: token, InsecureUpstream: cfg.UpstreamInsecure, Log: log}, l, nil
}
