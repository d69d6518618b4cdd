package traefik

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/watchfile"
	"github.com/dockroute/dockroute/render/output"
)

// OutputConfig is what the Traefik output is set up with.
type OutputConfig struct {
	Dir, File string // the file provider's directory, and the file in it
	Options   Options
	// SecretMode is the file's mode while it holds basic-auth hashes.
	SecretMode fs.FileMode
	// API is Traefik's API entrypoint, to read back which routers it runs
	// ("": delivery is not known).
	API string
}

// Output publishes to a Traefik file-provider directory: it writes the
// file when the table changes it, and puts the file back when anyone else
// changes it. It is an output.Output.
type Output struct {
	pub FilePublisher
	// secretMode is the file's mode while it holds basic-auth hashes.
	secretMode fs.FileMode
	log        *slog.Logger
	dir        *watchfile.Watcher // the output directory
	deliv      *delivery          // nil without an API
	// renderer keeps each route's text between publishes, and so knows
	// whether a table changes the file; only Publish (one goroutine, the
	// coalescer's) uses it.
	renderer Renderer
	// leftOut are the routers the renderer left out, as last logged.
	leftOut map[string]bool

	mu  sync.Mutex
	opt Options
	// version is the file as dockroute last wrote it (or found it equal),
	// so that the directory watcher can tell dockroute's own writes from
	// anyone else's without reading the file; stale says the file must be
	// written again whatever the table: someone else changed it, or
	// writing it failed.
	version Version
	stale   bool
	poke    func() // the daemon's: publish again
	// outside are the recent times someone else changed the file, to
	// tell a fight (another dockroute writing here) from an edit.
	outside []time.Time
	fight   *time.Timer // a put-back delayed while fighting
}

// A fight: the file changed by someone else fightChanges times within
// fightWindow (a person editing it does not, and is put back at once).
// Two dockroutes with different settings on one file each rewrote it
// every 0.3 s, logged only at Info; now the put-back waits fightWindow,
// and an error says what is going on.
const (
	fightChanges = 6
	fightWindow  = 30 * time.Second
)

// NewOutput sets up the output; nothing is written before the first
// Publish.
func NewOutput(cfg OutputConfig, log *slog.Logger) (*Output, error) {
	o := &Output{pub: FilePublisher{Dir: cfg.Dir, Name: cfg.File}, opt: cfg.Options, log: log, secretMode: cfg.SecretMode}
	if cfg.API != "" {
		api, err := NewAPI(cfg.API)
		if err != nil {
			return nil, err
		}
		o.deliv = newDelivery(api, log)
	}
	o.dir = watchfile.New(o.pub.Path(), 50*time.Millisecond, nil, log)
	// Our own temporary files come and go with every write (and with
	// every failed one on a full disk); they are no outside change.
	o.dir.Ignore = o.pub.IsTemp
	return o, nil
}

// Path is the file written.
func (o *Output) Path() string { return o.pub.Path() }

func (o *Output) Delivery() *output.Delivery {
	if o.deliv == nil {
		return nil
	}
	return o.deliv.d
}

func (o *Output) String() string { return "traefik file " + o.pub.Path() }

func (o *Output) options() Options {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opt
}

// SetOptions applies a reloaded config's rendering settings; the next
// publish renders with them.
func (o *Output) SetOptions(opt Options) {
	o.mu.Lock()
	o.opt = opt
	o.mu.Unlock()
}

func (o *Output) Render(t route.Table) []byte { return Render(t, o.options()) }

func (o *Output) Publish(_ context.Context, t route.Table) (output.Outcome, error) {
	changed := o.renderer.Update(t, o.options())
	if changed {
		o.logLeftOut()
	}
	o.mu.Lock()
	stale, first := o.stale, o.version == Version{}
	o.mu.Unlock()
	if !changed && !stale {
		return output.Unchanged, nil
	}
	wrote, err := o.write(changed && !stale && !first, o.fileMode(t))
	if err != nil {
		o.setStale()
		return output.Unchanged, fmt.Errorf("write %s: %w", o.pub.Path(), err)
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
		return output.Unchanged, nil
	}
	return output.Written, nil
}

// logLeftOut logs each route the renderer newly left out of the file.
func (o *Output) logLeftOut() {
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

// fileMode is the file's mode for t: the secret mode when a route checks
// basic auth, as the file then holds the users' hashes, else 0644.
func (o *Output) fileMode(t route.Table) fs.FileMode {
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
func (o *Output) write(differs bool, mode fs.FileMode) (bool, error) {
	pub := o.pub
	pub.Mode = mode
	if differs {
		return true, pub.WriteFrom(&o.renderer)
	}
	return pub.Publish(o.renderer.Bytes())
}

func (o *Output) setStale() {
	o.mu.Lock()
	o.stale = true
	o.mu.Unlock()
}

// repair has the file written again when it is not as dockroute left it
// (someone deleted, replaced or edited it); dockroute's own writes are
// recognised by the file's identity, at the cost of a stat. A write still
// owed (the last one failed) is tried again at once: a change in the
// directory may be the space it lacked coming back.
func (o *Output) repair() {
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
func (o *Output) noteOutside(now time.Time) time.Duration {
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

// Watch follows the output directory, even when it is re-created: when
// someone deletes or edits the file, repair puts it back (dockroute's own
// writes find it equal). It first removes temporary files a crash of
// dockroute may have left.
func (o *Output) Watch(ctx context.Context, poke func()) {
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

func (o *Output) Rearm() { o.dir.Rearm() }
