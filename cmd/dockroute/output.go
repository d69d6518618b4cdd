package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/watchfile"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/caddy/lookup"
	"github.com/dockroute/dockroute/render/traefik"
)

// output is where routes go: a Traefik file-provider directory or a Caddy
// admin API.
type output interface {
	// publish makes the proxy serve t and says how; an error means
	// "retry later".
	publish(ctx context.Context, t route.Table) (outcome, error)
	// watch repairs the output until ctx ends, when something other than
	// dockroute changed it: it calls poke to have the table published again.
	watch(ctx context.Context, poke func())
	// rearm sets up again whatever watch watch uses (SIGHUP).
	rearm()
	// render is the config for t, for `dockroute render`.
	render(t route.Table) []byte
	// setOptions applies a reloaded config's rendering settings.
	setOptions(cfg config)
	// delivery is what the proxy confirmed it runs (see delivery.go).
	delivery() *delivery
	String() string
}

// outcome is what a publish did to the proxy.
type outcome string

const (
	unchanged outcome = "unchanged" // it already ran the table
	written   outcome = "written"   // its config changed: a Traefik file, a Caddy load
	answered  outcome = "answered"  // only Caddy's upstream lookups answer differently: no load
)

func newOutput(cfg config, log *slog.Logger) (output, error) {
	switch cfg.Output {
	case "traefik":
		return newTraefikOutput(cfg, log)
	case "caddy":
		admin, err := caddy.NewAdmin(cfg.CaddyAdmin)
		if err != nil {
			return nil, err
		}
		admin.Slow = func(method, path string, took time.Duration, err error) {
			log.Warn("caddy's admin API answered slowly; every publish waits for it", "method", method, "path", path, "took", took.Round(time.Millisecond), "err", err)
		}
		o := &caddyOutput{pub: caddy.NewPublisher(admin, cfg.caddyOptions(), log), check: cfg.CaddyCheck, admin: cfg.CaddyAdmin, log: log, deliv: &delivery{}}
		if cfg.CaddyDNS != "" {
			o.lookup = lookup.New(log)
		}
		return o, nil
	}
	return nil, fmt.Errorf("unknown output %q", cfg.Output)
}

type traefikOutput struct {
	pub traefik.FilePublisher
	// secretMode is the file's mode while it holds basic-auth hashes.
	secretMode fs.FileMode
	log        *slog.Logger
	dir        *watchfile.Watcher // the output directory
	deliv      *traefikDelivery   // nil without --traefik-api
	// renderer keeps each route's text between publishes, and so knows
	// whether a table changes the file; only publish (one goroutine, the
	// coalescer's) uses it.
	renderer traefik.Renderer
	// leftOut are the routers the renderer left out, as last logged.
	leftOut map[string]bool

	mu  sync.Mutex
	opt traefik.Options
	// version is the file as dockroute last wrote it (or found it equal),
	// so that the directory watcher can tell dockroute's own writes from
	// anyone else's without reading the file; stale says the file must be
	// written again whatever the table: someone else changed it, or
	// writing it failed.
	version traefik.Version
	stale   bool
	poke    func() // the daemon's: publish again
	// outside are the recent times someone else changed the file, to
	// tell a fight (another dockroute writing here) from an edit.
	outside []time.Time
	fight   *time.Timer // a put-back delayed while fighting
}

// A fight: the file changed by someone else fightChanges times within
// fightWindow (a person editing it does not, and is put back at once). Two dockroutes with different settings on one file each
// rewrote it every 0.3 s, logged only at Info; now the put-back waits
// fightWindow, and an error says what is going on.
const (
	fightChanges = 6
	fightWindow  = 30 * time.Second
)

func newTraefikOutput(cfg config, log *slog.Logger) (*traefikOutput, error) {
	o := &traefikOutput{pub: traefik.FilePublisher{Dir: cfg.TraefikDir, Name: cfg.TraefikFile}, opt: cfg.traefikOptions(), log: log, secretMode: cfg.secretMode()}
	if cfg.TraefikAPI != "" {
		api, err := traefik.NewAPI(cfg.TraefikAPI)
		if err != nil {
			return nil, err
		}
		o.deliv = newTraefikDelivery(api, log)
	}
	o.dir = watchfile.New(o.pub.Path(), 50*time.Millisecond, nil, log)
	// Our own temporary files come and go with every write (and with
	// every failed one on a full disk); they are no outside change.
	o.dir.Ignore = o.pub.IsTemp
	return o, nil
}

func (o *traefikOutput) delivery() *delivery {
	if o.deliv == nil {
		return nil
	}
	return o.deliv.d
}

func (o *traefikOutput) String() string { return "traefik file " + o.pub.Path() }

func (o *traefikOutput) options() traefik.Options {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opt
}

func (o *traefikOutput) setOptions(cfg config) {
	o.mu.Lock()
	o.opt = cfg.traefikOptions()
	o.mu.Unlock()
}

func (o *traefikOutput) render(t route.Table) []byte { return traefik.Render(t, o.options()) }

func (o *traefikOutput) publish(_ context.Context, t route.Table) (outcome, error) {
	changed := o.renderer.Update(t, o.options())
	if changed {
		o.logLeftOut()
	}
	o.mu.Lock()
	stale, first := o.stale, o.version == traefik.Version{}
	o.mu.Unlock()
	if !changed && !stale {
		return unchanged, nil
	}
	wrote, err := o.write(changed && !stale && !first, o.fileMode(t))
	if err != nil {
		o.setStale()
		return unchanged, fmt.Errorf("write %s: %w", o.pub.Path(), err)
	}
	v, err := o.pub.Version()
	o.mu.Lock()
	o.version, o.stale = v, err != nil
	o.mu.Unlock()
	if stale && wrote && !changed {
		o.log.Info("the output was changed or removed by someone else; put it back", "file", o.pub.Path())
	}
	if o.deliv != nil {
		o.deliv.published(o.renderer.Routers())
	}
	if !wrote {
		return unchanged, nil
	}
	return written, nil
}

// logLeftOut logs each route the renderer newly left out of the file.
func (o *traefikOutput) logLeftOut() {
	refused := o.renderer.Refused()
	for name, err := range refused {
		if !o.leftOut[name] {
			o.log.Error("route left out of the Traefik file; every other route is written", "router", name, "err", err)
		}
	}
	o.leftOut = map[string]bool{}
	for name := range refused {
		o.leftOut[name] = true
	}
}

// fileMode is the file's mode for t: --secret-file-mode when a route
// checks basic auth, as the file then holds the users' hashes, else 0644.
func (o *traefikOutput) fileMode(t route.Table) fs.FileMode {
	for _, r := range t.Routes {
		if r.Auth != "" {
			return o.secretMode
		}
	}
	return 0o644
}

// write writes the renderer's file. Known to differ from what dockroute
// last wrote, it is streamed into place; otherwise (the first write of
// this run, a repair, a retry) it is compared with the file first, so
// that a restart of dockroute, or a write that failed after all, does not
// make Traefik reload an unchanged file.
// The file's mode goes to a copy of the publisher: the watch goroutine
// reads o.pub.
func (o *traefikOutput) write(differs bool, mode fs.FileMode) (bool, error) {
	pub := o.pub
	pub.Mode = mode
	if differs {
		return true, pub.WriteFrom(&o.renderer)
	}
	return pub.Publish(o.renderer.Bytes())
}

func (o *traefikOutput) setStale() {
	o.mu.Lock()
	o.stale = true
	o.mu.Unlock()
}

// repair has the file written again when it is not as dockroute left it
// (someone deleted, replaced or edited it); dockroute's own writes are
// recognised by the file's identity, at the cost of a stat. A write still
// owed (the last one failed) is tried again at once: a change in the
// directory may be the space it lacked coming back.
func (o *traefikOutput) repair() {
	v, err := o.pub.Version()
	o.mu.Lock()
	ours := err == nil && v == o.version && !o.stale
	o.mu.Unlock()
	if ours {
		return
	}
	o.setStale()
	if wait := o.noteOutside(time.Now()); wait > 0 {
		o.mu.Lock()
		if o.fight == nil {
			o.fight = time.AfterFunc(wait, func() {
				o.mu.Lock()
				o.fight = nil
				o.mu.Unlock()
				o.poke()
			})
		}
		o.mu.Unlock()
		return
	}
	o.poke()
}

// noteOutside records an outside change at now and says how long to wait
// before putting the file back: 0 for an edit now and then, fightWindow
// while changes keep coming (logged as an error once a fight).
func (o *traefikOutput) noteOutside(now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outside = slices.DeleteFunc(append(o.outside, now), func(t time.Time) bool { return now.Sub(t) > fightWindow })
	if len(o.outside) < fightChanges {
		return 0
	}
	if len(o.outside) == fightChanges {
		other := "someone else"
		if data, err := os.ReadFile(o.pub.Path()); err == nil && bytes.Contains(data, []byte("Written by dockroute")) {
			other = "another dockroute (its header is dockroute's), with other settings or containers"
		}
		o.log.Error("another writer keeps replacing the output; putting it back at most every 30 s. Give each dockroute its own --traefik-dir or --traefik-file, or stop one", "file", o.pub.Path(), "writer", other, "changes", len(o.outside), "within", fightWindow)
	}
	return fightWindow
}

// watch follows the output directory, even when it is re-created: when
// someone deletes or edits the file, repair puts it back (dockroute's own
// writes find it equal). It first removes temporary files a crash of
// dockroute may have left.
func (o *traefikOutput) watch(ctx context.Context, poke func()) {
	if err := os.MkdirAll(o.pub.Dir, 0o755); err != nil {
		o.log.Error("cannot create the output directory", "dir", o.pub.Dir, "err", err)
	}
	removed, err := o.pub.RemoveTemps()
	if len(removed) > 0 {
		o.log.Info("removed temporary files an earlier run left", "files", removed)
	}
	if err != nil {
		o.log.Warn("could not remove every temporary file an earlier run left", "err", err)
	}
	o.poke = poke
	o.dir.OnChange = o.repair
	if o.deliv != nil {
		go o.deliv.run(ctx)
	}
	if err := o.dir.Run(ctx); err != nil {
		o.log.Error("not watching the output for outside changes", "err", err)
	}
	<-ctx.Done()
}

func (o *traefikOutput) rearm() { o.dir.Rearm() }

type caddyOutput struct {
	pub *caddy.Publisher
	// lookup answers Caddy's upstream lookups (--caddy-dns); nil without.
	lookup *lookup.Server
	check  time.Duration
	admin  string
	log    *slog.Logger
	// onError is told of every failed push or check, for metrics.
	onError func()
	deliv   *delivery

	mu        sync.Mutex
	lastTable *route.Table // what Caddy last accepted; nil: publish regardless
	lastOpt   caddy.Options
	// answers are the lookup answers last set, for the table answered.
	answers  lookup.Answers
	answered route.Table
}

func (o *caddyOutput) delivery() *delivery { return o.deliv }

func (o *caddyOutput) failed() {
	if o.onError != nil {
		o.onError()
	}
}

func (o *caddyOutput) String() string { return "caddy admin " + o.admin }

func (o *caddyOutput) render(t route.Table) []byte {
	b, _ := json.MarshalIndent(caddy.Render(t, o.pub.Options()), "", "  ")
	return append(b, '\n')
}

func (o *caddyOutput) rearm() {}

func (o *caddyOutput) setOptions(cfg config) { o.pub.SetOptions(cfg.caddyOptions()) }

// publish pushes t; Caddy's answer to the read that follows every push is
// the config it runs, so a publish that succeeds is delivered. With
// lookups, the answers change first: they are right for t whatever Caddy
// runs, and a table that changes only upstreams is then not pushed.
func (o *caddyOutput) publish(ctx context.Context, t route.Table) (outcome, error) {
	opt := o.pub.Options()
	o.mu.Lock()
	same := o.lastTable != nil && o.lastTable.Equal(t) && o.lastOpt.Equal(opt)
	o.mu.Unlock()
	if same { // unchanged, and Caddy runs it (the check says otherwise)
		return unchanged, nil
	}
	if o.lookup != nil {
		o.answers, o.answered = caddy.NextAnswers(o.answers, o.answered, t), t
		o.lookup.Set(o.answers)
	}
	before := o.pub.Writes()
	o.deliv.published()
	if err := o.pub.Publish(ctx, t); err != nil {
		o.failed()
		o.deliv.set(len(t.Routes), []string{err.Error()})
		o.forget()
		return unchanged, err
	}
	o.mu.Lock()
	o.lastTable, o.lastOpt = &t, opt
	o.mu.Unlock()
	o.deliv.set(len(t.Routes), nil)
	switch {
	case o.pub.Writes() != before:
		return written, nil
	case o.lookup != nil:
		return answered, nil // the table changed, Caddy's config did not
	}
	return unchanged, nil
}

// forget makes the next publish push whatever the table.
func (o *caddyOutput) forget() {
	o.mu.Lock()
	o.lastTable = nil
	o.mu.Unlock()
}

// watch asks Caddy every check interval whether dockroute's server is still
// there as pushed; if not, it has the daemon publish its current table
// (after the coalescer's quiet window, by which time a second dockroute on
// the same Caddy has seen the same events, so the two agree).
func (o *caddyOutput) watch(ctx context.Context, poke func()) {
	tick := time.NewTicker(o.check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			ok, err := o.pub.Check(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				o.log.Warn("caddy check failed; will retry", "admin", o.admin, "err", err)
				o.failed()
				o.deliv.published()
				o.deliv.set(-1, []string{err.Error()})
			case !ok:
				o.deliv.published()
				o.deliv.set(-1, []string{"caddy does not run dockroute's server as published"})
				o.forget()
				poke()
			default:
				o.deliv.set(-1, nil)
			}
		}
	}
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
