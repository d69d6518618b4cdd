package caddy

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/lookup"
	"github.com/dockroute/dockroute/render/output"
)

// OutputConfig is what the Caddy output is set up with.
type OutputConfig struct {
	Admin   string // Caddy's admin API address
	Options Options
	// Check is how often Caddy is asked whether it still runs
	// dockroute's server as pushed.
	Check time.Duration
	// Lookups: answer Caddy's upstream lookups (--caddy-dns), so that a
	// change of servers alone needs no load.
	Lookups bool
}

// Output publishes to Caddy's admin API, leaving the rest of Caddy's
// config alone. It is an output.Output.
type Output struct {
	pub *Publisher
	// lookup answers Caddy's upstream lookups; nil without.
	lookup *lookup.Server
	check  time.Duration
	admin  string
	log    *slog.Logger
	deliv  *output.Delivery
	// OnError, when set, is told of every failed push or check (metrics).
	OnError func()
	// pushed tells Watch of a push, after which it checks at the
	// shortest interval again.
	pushed chan struct{}

	// outside are the recent checks that found dockroute's server changed
	// by someone else, to tell a fight (another dockroute on this Caddy)
	// from an edit; Watch alone uses them.
	outside []time.Time

	mu        sync.Mutex
	lastTable *route.Table // what Caddy last accepted; nil: publish regardless
	lastOpt   Options
	// answers are the lookup answers last set, for the table answered;
	// only Publish (one goroutine) uses them.
	answers     lookup.Answers
	answered    route.Table
	answeredOpt Options
}

// NewOutput sets up the output; Caddy is not asked anything before the
// first Publish.
func NewOutput(cfg OutputConfig, log *slog.Logger) (*Output, error) {
	admin, err := NewAdmin(cfg.Admin)
	if err != nil {
		return nil, err
	}
	admin.Slow = func(method, path string, took time.Duration, err error) {
		log.Warn("caddy's admin API answered slowly; every publish waits for it", "method", method, "path", path, "took", took.Round(time.Millisecond), "err", err)
	}
	o := &Output{pub: NewPublisher(admin, cfg.Options, log), check: cfg.Check, admin: cfg.Admin, log: log, deliv: &output.Delivery{}, pushed: make(chan struct{}, 1)}
	if cfg.Lookups {
		o.lookup = lookup.New(log)
	}
	return o, nil
}

// Responder answers what dockroute's loopback responder gets: Caddy's asks
// for on-demand certificates at the path of OnDemand.Ask (which holds a
// token: requests the host lookup route sends there come from anyone),
// and the requests for hosts nothing routes, with 404.
func (o *Output) Responder() http.Handler {
	notFound := Responder()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.pub.names.asks(r.URL.Path) {
			o.pub.names.ServeHTTP(w, r)
			return
		}
		notFound.ServeHTTP(w, r)
	})
}

// Asks counts Caddy's asks for on-demand certificates: approved and
// refused since the start.
func (o *Output) Asks() (approved, refused uint64) {
	return o.pub.names.approved.Load(), o.pub.names.refused.Load()
}

// Lookup is the server answering Caddy's upstream lookups, for the daemon
// to listen with; nil without lookups.
func (o *Output) Lookup() *lookup.Server { return o.lookup }

func (o *Output) Delivery() *output.Delivery { return o.deliv }

func (o *Output) failed() {
	if o.OnError != nil {
		o.OnError()
	}
}

func (o *Output) String() string { return "caddy admin " + o.admin }

func (o *Output) Render(t route.Table) []byte {
	b, _ := json.MarshalIndent(Render(t, o.pub.Options()), "", "  ")
	return append(b, '\n')
}

func (o *Output) Rearm() {}

// SetOptions applies a reloaded config's rendering settings; the next
// publish renders with them.
func (o *Output) SetOptions(opt Options) { o.pub.SetOptions(opt) }

// Publish pushes t; Caddy's answer to the read that follows every push is
// the config it runs, so a publish that succeeds is delivered. With
// lookups, the answers change first: they are right for t whatever Caddy
// runs, and a table that changes only upstreams is then not pushed.
func (o *Output) Publish(ctx context.Context, t route.Table) (output.Outcome, error) {
	opt := o.pub.Options()
	o.mu.Lock()
	same := o.lastTable != nil && o.lastTable.Equal(t) && o.lastOpt.Equal(opt)
	o.mu.Unlock()
	if same { // unchanged, and Caddy runs it (the check says otherwise)
		return output.Unchanged, nil
	}
	o.answer(t, opt)
	before := o.pub.Writes()
	o.deliv.Published()
	if err := o.pub.Publish(ctx, t); err != nil {
		o.failed()
		o.deliv.Set(len(t.Routes), []string{err.Error()})
		o.forget()
		return output.Unchanged, err
	}
	if now := o.pub.Options(); !now.Equal(opt) {
		// Caddy's config turned out to have on-demand TLS of its own:
		// every host was written after all.
		opt = now
		o.answer(t, opt)
	}
	// Certificates only once Caddy runs the table: a host written into
	// Caddy's config may get a policy of its own when it loads (a local
	// name, Caddy's local CA), which an earlier certificate would miss.
	o.pub.names.setTable(t)
	o.mu.Lock()
	o.lastTable, o.lastOpt = &t, opt
	o.mu.Unlock()
	o.deliv.Set(len(t.Routes), nil)
	switch {
	case o.pub.Writes() != before:
		select {
		case o.pushed <- struct{}{}:
		default:
		}
		return output.Written, nil
	case o.lookup != nil:
		return output.Answered, nil // the table changed, Caddy's config did not
	}
	return output.Unchanged, nil
}

// answer sets the lookup answers for t under opt. Only Publish (one
// goroutine) calls it.
func (o *Output) answer(t route.Table, opt Options) {
	if o.lookup == nil {
		return
	}
	if !o.answeredOpt.Equal(opt) {
		o.answers = nil // which routes are written may differ: all anew
	}
	o.answers, o.answered, o.answeredOpt = NextAnswers(o.answers, o.answered, t, opt), t, opt
	o.lookup.Set(o.answers)
	o.lookup.SetHosts(HostAnswers(t, opt))
}

// forget makes the next publish push whatever the table.
func (o *Output) forget() {
	o.mu.Lock()
	o.lastTable = nil
	o.mu.Unlock()
}

// A fight: dockroute's server found changed by someone else fightChanges
// times within fightWindow. Two dockroutes with other settings on one
// Caddy (same --caddy-server) replaced each other's server at every check,
// each a full Caddy reload, logged at Warn; now the first to count the
// fight says so as an error and puts its server back at most every
// fightWindow. A person's edit now and then is put back at the next check.
const (
	fightChanges = 3
	fightWindow  = 30 * time.Second
)

// quietChecks bounds how far the check interval grows while Caddy keeps
// running dockroute's server as pushed: up to quietChecks times
// --caddy-check (30 s by default). Caddy logs every admin request at Info
// (120 lines in 8 minutes at a steady 5 s, issue 27); a publish, a server
// found lost or changed, or a failed check starts over at --caddy-check.
const quietChecks = 6

// Watch asks Caddy whether dockroute's server is still there as pushed,
// every check interval, less often while nothing happens (a local Caddy
// is probed at its listen address meanwhile); if not, it has
// the daemon publish its current table (after the coalescer's quiet
// window, by which time a second dockroute on the same Caddy has seen the
// same events, so the two agree), unless another writer keeps changing
// it (a fight): then at most every fightWindow.
func (o *Output) Watch(ctx context.Context, poke func()) {
	// interval is how long since the last admin check the next one waits;
	// the timer ticks every --caddy-check, probing between checks.
	interval, last := o.check, time.Now()
	timer := time.NewTimer(o.check)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.pushed:
			interval, last = o.check, time.Now()
			timer.Reset(o.check)
			continue
		case <-timer.C:
		}
		probe := o.probeAddr()
		if probe != "" && time.Since(last) < interval && o.listening(ctx, probe) {
			// Caddy still listens where dockroute's server does: a
			// lost server (a restart, a Caddyfile reload) would not.
			timer.Reset(o.check)
			continue
		}
		last = time.Now()
		f, err := o.pub.Check(ctx)
		grown := min(2*interval, quietChecks*o.check)
		interval = o.check
		switch {
		case ctx.Err() != nil:
			return
		case f.InSync:
			o.deliv.Set(-1, nil)
			interval = grown
		case err != nil:
			o.log.Warn("caddy check failed; will retry", "admin", o.admin, "err", err)
			o.failed()
			o.deliv.Published()
			o.deliv.Set(-1, f.Missing)
		case f.Changed && o.noteOutside(time.Now()):
			o.deliv.Published()
			o.deliv.Set(-1, f.Missing)
			interval = fightWindow
		default:
			o.deliv.Published()
			o.deliv.Set(-1, f.Missing)
			o.forget()
			poke()
		}
		if probe == "" {
			timer.Reset(interval) // nothing to probe meanwhile
		} else {
			timer.Reset(o.check)
		}
	}
}

// probeAddr is where to find, without asking the admin API, whether Caddy
// still serves dockroute's server: its first listen address, when Caddy
// runs on this host (its admin API on loopback); "" otherwise (a Caddy in
// another container, its admin on a unix socket: then only the checks
// tell, up to 6 × --caddy-check apart).
func (o *Output) probeAddr() string {
	if !loopbackAdmin(o.admin) {
		return ""
	}
	listen := o.pub.Options().Listen
	if len(listen) == 0 {
		return ""
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(listen[0], "tcp/"))
	if err != nil || strings.Contains(port, "-") {
		return ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// listening tells whether something accepts a connection at addr: a bare
// connect, which Caddy does not log, unlike an admin request.
func (o *Output) listening(ctx context.Context, addr string) bool {
	conn, err := (&net.Dialer{Timeout: 300 * time.Millisecond}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// loopbackAdmin tells whether admin (--caddy-admin) is an http address on
// loopback: Caddy then runs on this host.
func loopbackAdmin(admin string) bool {
	u, err := url.Parse(admin)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	h := u.Hostname()
	ip, err := netip.ParseAddr(h)
	return h == "localhost" || err == nil && ip.IsLoopback()
}

// noteOutside records a check that found the server changed by someone
// else, and tells whether that makes a fight (logged once, as an error).
func (o *Output) noteOutside(now time.Time) bool {
	o.outside = slices.DeleteFunc(append(o.outside, now), func(t time.Time) bool { return now.Sub(t) > fightWindow })
	if len(o.outside) < fightChanges {
		return false
	}
	if len(o.outside) == fightChanges {
		o.log.Error("another writer keeps replacing dockroute's server in Caddy, and each replacement reloads Caddy; putting it back at most every 30 s. Most likely another dockroute with the same --caddy-server and other settings or containers: give each its own --caddy-server (and --caddy-listen), or stop one",
			"admin", o.admin, "server", o.pub.Options().ID, "changes", len(o.outside), "within", fightWindow)
	}
	return true
}

// DeliveryNotes asks Caddy's admin API (at admin) once for the server id
// runs, and returns what explain says of each route: delivered or not, in
// the words the Traefik output uses too.
func DeliveryNotes(ctx context.Context, adminAddr, id string) func(route.Backend) string {
	admin, err := NewAdmin(adminAddr)
	if err != nil {
		return func(route.Backend) string { return "" }
	}
	raw, _, err := admin.Get(ctx, "/id/"+id)
	var s Server
	if err == nil {
		err = json.Unmarshal(raw, &s)
	}
	if err != nil {
		return func(route.Backend) string { return output.NotDelivered(err.Error()) }
	}
	return func(b route.Backend) string {
		if s.Serves(b.Host, b.Path) {
			return " (delivered: Caddy's server " + id + " runs this route)"
		}
		return output.NotDelivered("Caddy's server " + id + " does not run this route")
	}
}
