package caddy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/dockroute/dockroute/provider/route"
)

// maxConflicts bounds how often one push re-reads after a 412, so two
// writers fighting over the config cannot spin forever.
const maxConflicts = 5

// Publisher keeps dockroute's server in one Caddy equal to the last table it
// was given. It only ever writes at "/id/<ID>" or, when that server does not
// exist, creates the missing objects with PUT (which never replaces): the
// user's other servers, apps and admin block are never written.
type Publisher struct {
	admin *Admin
	opt   Options
	log   *slog.Logger

	mu     sync.Mutex
	pushed *Server // what Caddy last accepted; nil before the first push
	// inSync tells that Caddy ran pushed when it was last read (a push
	// or a Check): a publish of the same server then asks Caddy nothing.
	inSync bool
	writes int // config changes Caddy accepted (each one is a reload)
	// table is the table pushed was rendered from, under tableOpt (nil:
	// none, as after routes Caddy refused): a table that differs from it
	// only in looked-up upstreams is known to change nothing in Caddy
	// without rendering it whole.
	table    *route.Table
	tableOpt Options

	// HTTPS on demand (ondemand.go). tlsOK tells that Caddy's TLS app
	// had dockroute's part as opt wants it when last read or written;
	// refused, why on-demand TLS cannot be dockroute's in this Caddy
	// (the hosts are then all written); askOnly, that this Caddy knows
	// the endpoint only as "ask" (2.6).
	tlsOK   bool
	refused string
	askOnly bool
	names   *approver
	// local tells that the TLS app is to have dockroute's policy for
	// local names: the last table routed one (ondemand.go).
	local bool
}

// NewPublisher returns a publisher for the Caddy behind admin.
func NewPublisher(admin *Admin, opt Options, log *slog.Logger) *Publisher {
	p := &Publisher{admin: admin, opt: opt, log: log, names: &approver{admin: admin, id: opt.ID, log: log}}
	p.names.set(opt.OnDemand)
	return p
}

// Options returns the server options in use: those set, but for hosts
// written rather than looked up where on-demand TLS cannot be dockroute's.
func (p *Publisher) Options() Options {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.options()
}

func (p *Publisher) options() Options {
	opt := p.opt
	if opt.OnDemand != nil && p.refused != "" {
		l := *opt.Lookup
		l.Hosts = ""
		opt.Lookup, opt.OnDemand = &l, nil
	}
	return opt
}

// SetOptions changes the server options (a reloaded config); the next
// Publish applies them. The server's ID cannot change: it is how dockroute
// finds what it owns.
func (p *Publisher) SetOptions(opt Options) {
	p.mu.Lock()
	defer p.mu.Unlock()
	opt.ID = p.opt.ID
	if !opt.OnDemand.equal(p.opt.OnDemand) {
		p.tlsOK, p.table = false, nil // p.local is known for p.table under the old options
	}
	p.opt = opt
	p.names.set(opt.OnDemand)
}

// syncTLS makes dockroute's part of Caddy's TLS app what the options ask
// for, when it may have changed: before the first publish (also to remove
// what an earlier run with on-demand TLS left), after the options
// changed, and whenever Caddy was found not to run what dockroute pushed.
// The caller holds p.mu.
func (p *Publisher) syncTLS(ctx context.Context) error {
	if p.tlsOK && (p.inSync || p.opt.OnDemand == nil) {
		return nil
	}
	refused, err := p.ensureTLS(ctx, p.opt.OnDemand)
	if isRefusal(err) {
		// Caddy's reason is in its config, not in dockroute's routes:
		// they are published all the same, every host written.
		refused, err = "caddy refused dockroute's on-demand TLS settings, so dockroute writes every host into Caddy's config instead, where automatic HTTPS gets their certificates: "+err.Error(), nil
	}
	if err != nil {
		return err
	}
	if refused != "" && refused != p.refused {
		p.log.Warn(refused)
	}
	p.refused, p.tlsOK = refused, true
	return nil
}

// Writes is the number of config changes Caddy accepted from this publisher.
func (p *Publisher) Writes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes
}

// Publish makes Caddy serve t. If Caddy refuses the server, Publish finds
// the routes it refuses by bisection, logs Caddy's message for each and
// publishes all the others. It fails only when nothing could be published
// (Caddy unreachable, or refusing even a server without routes); Caddy then
// keeps its previous config and the caller retries.
//
// With lookups (Options.Lookup), a table that differs from the last one
// only in upstream addresses is not pushed at all: the lookup answers carry
// the change, and Caddy keeps the upstreams it was last given as its
// fallback for when dockroute does not answer. t must not be modified
// afterwards (route.Builder's tables never are): the next Publish
// compares with it.
func (p *Publisher) Publish(ctx context.Context, t route.Table) error {
	p.mu.Lock()
	var changed []int
	sameRoutes := false
	if p.table != nil {
		changed, sameRoutes = changedRoutes(*p.table, t)
	}
	// Whether a local name is routed changes only with the routes (a
	// pass over 10,000 routes costs as much as the rest of a replica
	// change).
	if local := p.opt.OnDemand != nil && (sameRoutes && p.local || !sameRoutes && anyLocal(t)); local != p.local {
		p.local, p.tlsOK = local, false
	}
	if err := p.syncTLS(ctx); err != nil {
		p.inSync = false
		p.mu.Unlock()
		return err
	}
	opt := p.options()
	quick := p.inSync && sameRoutes && p.tableOpt.Equal(opt) && onlyUpstreams(*p.table, t, changed, opt)
	if quick {
		p.table = &t
	}
	p.mu.Unlock()
	if quick {
		// Rendering and comparing the whole server to find this out
		// was 33-110 ms at 10,000 routes, for every replica started
		// or stopped.
		return nil
	}
	return p.publish(ctx, Render(t, opt), &t)
}

// publish makes Caddy serve want, rendered from the table from (nil: not
// from a table).
func (p *Publisher) publish(ctx context.Context, want Server, from *route.Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.table = nil // until Caddy runs want
	want, same := keepFallbacks(want, p.pushed)
	if same && p.inSync {
		// Only lookup answers changed. Reading dockroute's whole server
		// back to find nothing to write cost 0.75-0.9 s at 10,000
		// routes; Check verifies Caddy every --caddy-check instead, as
		// for an unchanged table.
		p.table, p.tableOpt = from, p.options()
		return nil
	}
	err := p.ensure(ctx, want)
	if err == nil {
		p.table, p.tableOpt = from, p.options()
	}
	if !isRefusal(err) {
		return err
	}
	if lerr := listenConflict(err, p.opt.ID); lerr != nil {
		return lerr // no route of dockroute's is to blame: looking for one would change nothing
	}
	p.log.Warn("caddy refused dockroute's routes; looking for the route it refuses", "caddy_error", err)
	return p.publishAccepted(ctx, want)
}

// listenerRepeated is Caddy's refusal of two servers on one address.
var listenerRepeated = regexp.MustCompile(`server (\S+): listener address repeated: (\S+) \(already claimed by server '([^']+)'\)`)

// listenConflict says, for a refusal of dockroute's server (id) because
// its listen address is taken, whose it is and what to do; nil for any
// other error. On Debian, `apt install caddy` starts a Caddy whose
// Caddyfile serves :80: started beside it (or pushed to it) with
// --caddy-listen :80, dockroute got 91 lines of Caddy's listen error in
// 10 s, none saying that.
func listenConflict(err error, id string) error {
	msg := err.Error()
	if m := listenerRepeated.FindStringSubmatch(msg); m != nil {
		other := m[1]
		if other == id {
			other = m[3]
		}
		return &ListenError{Addr: strings.TrimPrefix(m[2], "tcp/"), Server: other, cause: err}
	}
	if strings.Contains(msg, "address already in use") {
		return &ListenError{cause: err}
	}
	return nil
}

// ListenError is Caddy's refusal of dockroute's server because an address
// of --caddy-listen is taken: by another server of Caddy's config
// (Server), or by another program. Its text is the same whichever of the
// two servers Caddy names first, so that a retry is seen as the same
// failure.
type ListenError struct {
	Addr, Server string
	cause        error
}

func (e *ListenError) Error() string {
	if e.Server == "" {
		return fmt.Sprintf("another program listens on an address of --caddy-listen (a packaged Caddy, an nginx?): free it, or give dockroute's server another address with --caddy-listen (%v)", e.cause)
	}
	return fmt.Sprintf("%s is taken by Caddy's server %s, from the rest of Caddy's config (a packaged Caddy's Caddyfile serves :80): give dockroute's server another address with --caddy-listen, or remove that site from Caddy's config", e.Addr, e.Server)
}

func (e *ListenError) Unwrap() error { return e.cause }

// onlyUpstreams tells whether t renders under opt as last does but for
// the upstreams of routes that look them up, which Caddy keeps only as
// fallbacks (keepFallbacks then finds nothing to write). It renders only
// the routes that differ; a route added or removed is more than
// upstreams. (The default host's route, which Render also copies for any
// host, copies the same proxy: its copy differs in upstreams alone too.)
// changed are changedRoutes(last, t), which must hold the same routes.
func onlyUpstreams(last, t route.Table, changed []int, opt Options) bool {
	if opt.Lookup == nil {
		return false
	}
	for _, i := range changed {
		a, b := last.Routes[i], t.Routes[i]
		if a.TCP {
			return false
		}
		ra, rb := proxyRoute(a, opt), proxyRoute(b, opt)
		if !looksUp(ra) || !looksUp(rb) || !reflect.DeepEqual(withoutUpstreams(ra), withoutUpstreams(rb)) {
			return false
		}
	}
	return true
}

// Finding is what a Check found.
type Finding struct {
	InSync bool // Caddy runs dockroute's server as last pushed
	// Changed: the server is there, but not as pushed: someone else wrote
	// it (not gone, as after a restart).
	Changed bool
	// Missing describes what Caddy does not run as published, one line
	// per route where it can tell (for delivery).
	Missing []string
}

// Check tells whether Caddy still serves what was last published: not
// when it lost the server (restarted without --resume, a Caddyfile reload)
// or someone changed it. It costs one GET. It does not restore anything
// itself: the caller publishes its current table, which may have moved on
// since (and, with two dockroutes on one Caddy, restoring the last push
// could undo the other's newer one).
func (p *Publisher) Check(ctx context.Context) (Finding, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pushed == nil {
		return Finding{InSync: true}, nil
	}
	cur, _, err := p.admin.Get(ctx, "/id/"+p.opt.ID)
	p.inSync = false // until shown otherwise
	if isStatus(err, http.StatusNotFound) {
		p.log.Warn("dockroute's server is gone from caddy (restarted without --resume, or its config was reloaded); publishing it again", "id", p.opt.ID)
		return Finding{Missing: p.unrun(nil, "caddy lost dockroute's server")}, nil
	}
	if err != nil {
		return Finding{Missing: p.unrun(nil, "caddy's admin API did not answer: "+err.Error())}, err
	}
	if p.inSync = sameJSON(cur, p.pushed.JSON()); p.inSync {
		return p.checkTLS(ctx)
	}
	f := Finding{Changed: true}
	var s Server
	if json.Unmarshal(cur, &s) != nil {
		f.Missing = p.unrun(nil, "caddy's copy of dockroute's server is unreadable")
	} else if f.Missing = p.unrun(&s, "someone else changed dockroute's server"); len(f.Missing) == 0 {
		f.Missing = []string{"caddy runs dockroute's routes with other settings than published (someone else changed its server)"}
	}
	return f, nil
}

// checkTLS tells whether Caddy still has dockroute's on-demand TLS
// policy, when it should: a change of the TLS app alone (through the
// admin API) leaves dockroute's server as it was. The caller holds p.mu.
func (p *Publisher) checkTLS(ctx context.Context) (Finding, error) {
	if p.opt.OnDemand == nil || p.refused != "" {
		return Finding{InSync: true}, nil
	}
	_, _, err := p.admin.Get(ctx, "/id/"+policyID(p.opt.ID))
	if isStatus(err, http.StatusNotFound) {
		p.log.Warn("dockroute's on-demand TLS policy is gone from caddy's TLS app; putting it back", "id", policyID(p.opt.ID))
		p.inSync, p.tlsOK = false, false
		return Finding{Missing: []string{"caddy lost dockroute's on-demand TLS policy: the hosts it looks up get no certificates"}}, nil
	}
	if err != nil {
		p.inSync = false
		return Finding{Missing: []string{"caddy's admin API did not answer: " + err.Error()}}, err
	}
	return Finding{InSync: true}, nil
}

// unrun describes each route of the last table pushed that s does not
// serve (s nil: none is), the first with why; without a table to go by,
// the server as a whole.
func (p *Publisher) unrun(s *Server, why string) []string {
	if p.table == nil {
		return []string{why}
	}
	var out []string
	for _, r := range p.table.Routes {
		if s == nil || !s.Serves(r.Host, r.Path) {
			out = append(out, r.Host+r.Path+": not run")
		}
	}
	if len(out) > 0 {
		out[0] += " (" + why + ")"
	}
	return out
}

// ensure makes Caddy's copy of the server equal to want. Every write carries
// the ETag of what it read; on 412 someone changed the config in between,
// so it reads again and decides again.
func (p *Publisher) ensure(ctx context.Context, want Server) error {
	body := want.JSON()
	for attempt := 1; ; attempt++ {
		wrote, err := p.sync(ctx, body)
		if isStatus(err, http.StatusPreconditionFailed) && attempt < maxConflicts {
			p.log.Info("caddy config changed concurrently; re-reading", "attempt", attempt)
			continue
		}
		if err != nil {
			p.inSync = false
			return err
		}
		p.pushed, p.inSync = &want, true
		if wrote {
			p.writes++
		}
		return nil
	}
}

// sync does one read and, if needed, one write. wrote tells whether Caddy
// accepted a change.
func (p *Publisher) sync(ctx context.Context, want []byte) (wrote bool, err error) {
	idPath := "/id/" + p.opt.ID
	cur, etag, err := p.admin.Get(ctx, idPath)
	if isStatus(err, http.StatusNotFound) {
		if p.pushed != nil {
			p.log.Warn("dockroute's server is gone from caddy (restarted without --resume, or its config was reloaded); restoring it", "id", p.opt.ID)
		}
		return true, p.create(ctx, want)
	}
	if err != nil {
		return false, err
	}
	if sameJSON(cur, want) {
		return false, nil
	}
	if p.pushed != nil && !sameJSON(cur, p.pushed.JSON()) {
		p.log.Warn("dockroute's server in caddy was changed by someone else; replacing it, as dockroute owns it", "id", p.opt.ID)
	}
	return true, p.admin.Send(ctx, http.MethodPatch, idPath, want, etag)
}

// create adds the server at apps.http.servers.<ID> with one PUT, under
// the ETag of the whole config it inspected. Caddy's PUT creates whichever
// of apps, apps.http and apps.http.servers is missing on the way, also in a
// Caddy with no config at all (a bare `caddy run`), and never replaces: an
// existing key answers 409. The user's admin block and everything else
// stay as they are.
func (p *Publisher) create(ctx context.Context, server []byte) error {
	raw, etag, err := p.admin.Get(ctx, "/config/")
	if err != nil {
		return err
	}
	var level any
	if err := json.Unmarshal(raw, &level); err != nil {
		return fmt.Errorf("caddy GET /config/: unreadable answer: %w", err)
	}
	path := "/config/"
	for _, k := range []string{"apps", "http", "servers"} {
		if level == nil {
			break
		}
		m, ok := level.(map[string]any)
		if !ok {
			return fmt.Errorf("caddy config at %s is not an object", path)
		}
		level, path = m[k], path+k+"/"
	}
	if servers, ok := level.(map[string]any); ok && servers[p.opt.ID] != nil {
		return fmt.Errorf("caddy already has a server named %q that dockroute did not create (it has no \"@id\": %q); choose another --caddy-server", p.opt.ID, p.opt.ID)
	} else if level != nil && !ok {
		return fmt.Errorf("caddy config at %s is not an object", path)
	}
	return p.admin.Send(ctx, http.MethodPut, "/config/apps/http/servers/"+p.opt.ID, server, etag)
}

// publishAccepted publishes every route Caddy accepts, finding the ones it
// refuses by bisection over the routes that are new or changed since Caddy
// last accepted dockroute's server. While it searches, and after, every
// route in the form Caddy accepted before stays in place: no host that was
// served stops being served because another route was refused. A refused
// route keeps its previously accepted form if it had one, and is left out
// otherwise; routes no longer wanted are dropped at once. Each refused
// route costs about log2(changed routes) trial loads.
func (p *Publisher) publishAccepted(ctx context.Context, want Server) error {
	proxied, fallback := want.Routes[:len(want.Routes)-1], want.Routes[len(want.Routes)-1]
	before := map[string]Route{} // what Caddy accepted last, by what it matches
	for _, r := range p.accepted(ctx).Routes {
		if len(r.Match) > 0 { // not the fallback
			before[r.key()] = r
		}
	}
	var changed []Route
	for _, r := range proxied {
		if old, ok := before[r.key()]; !ok || !reflect.DeepEqual(old, r) {
			changed = append(changed, r)
		}
	}
	accepted := map[string]bool{} // changed routes Caddy accepts, by key
	// trial is want with every changed route not (yet) accepted in its
	// old form, or left out if it has none, plus the routes of extra.
	trial := func(extra []Route) Server {
		with := maps.Clone(accepted)
		for _, r := range extra {
			with[r.key()] = true
		}
		routes := make([]Route, 0, len(want.Routes))
		for _, r := range proxied {
			k := r.key()
			old, had := before[k]
			switch {
			case with[k] || had && reflect.DeepEqual(old, r):
				routes = append(routes, r)
			case had:
				routes = append(routes, old)
			}
		}
		s := want
		s.Routes = append(routes, fallback)
		return s
	}
	if err := p.ensure(ctx, trial(nil)); err != nil {
		p.log.Error("caddy refuses dockroute's server even without its new routes; nothing changed in caddy (its reason may name a listen address, --caddy-listen, or something in the rest of caddy's config)", "caddy_error", err)
		return err
	}
	var try func(chunk []Route) error
	try = func(chunk []Route) error {
		if len(chunk) == 0 {
			return nil
		}
		err := p.ensure(ctx, trial(chunk))
		switch {
		case err == nil:
			for _, r := range chunk {
				accepted[r.key()] = true
			}
			return nil
		case !isRefusal(err):
			return err
		case len(chunk) == 1:
			if _, had := before[chunk[0].key()]; had {
				p.log.Error("caddy refused the route's new form; it keeps serving the form it accepted before, and the other routes are published", "hosts", chunk[0].Hosts(), "caddy_error", err)
			} else {
				p.log.Error("caddy refused the route; publishing the others without it", "hosts", chunk[0].Hosts(), "caddy_error", err)
			}
			return nil
		}
		mid := len(chunk) / 2
		if err := try(chunk[:mid]); err != nil {
			return err
		}
		return try(chunk[mid:])
	}
	if err := try(changed); err != nil {
		return err
	}
	return p.ensure(ctx, trial(nil))
}

// accepted is the server Caddy last accepted from dockroute: the one pushed
// by this process, or, before its first push, whatever an earlier run left
// in Caddy (empty when there is none or it cannot be read).
func (p *Publisher) accepted(ctx context.Context) Server {
	if p.pushed != nil {
		return *p.pushed
	}
	var s Server
	if raw, _, err := p.admin.Get(ctx, "/id/"+p.opt.ID); err == nil {
		json.Unmarshal(raw, &s)
	}
	return s
}

// keepFallbacks returns want with the upstream lists Caddy already has,
// if that makes it what Caddy already runs (same is then true): a change
// of looked-up upstreams alone then writes nothing. Any other change is a
// config load anyway, which then also brings every fallback list up to
// date.
func keepFallbacks(want Server, pushed *Server) (_ Server, same bool) {
	if pushed == nil || len(pushed.Routes) != len(want.Routes) {
		return want, false
	}
	kept := want
	kept.Routes = slices.Clone(want.Routes)
	for i, r := range kept.Routes {
		old := pushed.Routes[i]
		if !looksUp(r) || !looksUp(old) || !reflect.DeepEqual(withoutUpstreams(r), withoutUpstreams(old)) {
			continue
		}
		kept.Routes[i] = old
	}
	if !reflect.DeepEqual(kept, *pushed) {
		return want, false
	}
	return kept, true
}

// looksUp tells whether r proxies to looked-up upstreams.
func looksUp(r Route) bool {
	return len(r.Handle) > 0 && r.Handle[len(r.Handle)-1].DynamicUpstreams != nil
}

// withoutUpstreams is r without its proxy's fallback upstreams.
func withoutUpstreams(r Route) Route {
	r.Handle = slices.Clone(r.Handle)
	r.Handle[len(r.Handle)-1].Upstreams = nil
	return r
}

// isRefusal tells whether Caddy rejected a config change as invalid (400 or
// 500 with its reason), as opposed to being unreachable or in conflict.
func isRefusal(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Method != http.MethodGet &&
		(e.Status == http.StatusBadRequest || e.Status == http.StatusInternalServerError)
}

func isStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// sameJSON compares two JSON documents by value: Caddy re-encodes what it
// stores, so bytes differ while meaning does not.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}
