package caddy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// HTTPS on demand. A plain host is not in Caddy's config (see hosts.go),
// so automatic HTTPS, which gets certificates for the names in host
// matchers when a config loads, never sees it. On-demand TLS gets a
// certificate during the first TLS handshake that names the host instead,
// once Caddy's "ask" endpoint approves the name: dockroute's, which
// approves exactly the hosts it routes now, the operator's --caddy-tls-allow
// and the names of Caddy's own config; every other name is refused, so a
// name pointed at the server by someone else gets no certificate (nor
// costs a request to the CA).
//
// On-demand TLS is set in Caddy's TLS app, not in dockroute's server: an
// automation policy with on_demand, and the app's on_demand block naming
// the endpoint. Caddy takes the first policy whose subjects match a name,
// or that has none; dockroute's names every name of 2 to 10 labels by
// wildcard subjects (Caddy refuses a second policy without subjects beside
// a user's own) and goes just before the user's catch-all, as a copy of
// it with on_demand added, so that certificates come from the issuers (CA,
// account email) the user chose; without one, from Caddy's defaults. A
// policy ahead of it keeps the public names of the user's own sites as the
// catch-all has them (at load, not on demand), and while a local name is
// routed another gives local names Caddy's local CA (ourPolicies). A
// Caddy whose config has on-demand TLS of its own (its own endpoint, or a
// policy of its own with on_demand) is left alone: dockroute then writes
// every host into its server, as without lookups, and automatic HTTPS
// gets their certificates when the config loads.

// OnDemand configures HTTPS on demand for the hosts dockroute looks up.
type OnDemand struct {
	// Ask is dockroute's endpoint as Caddy reaches it.
	Ask string
	// Issuer is "" for the issuers of the user's catch-all policy, else
	// Caddy's defaults (Let's Encrypt and ZeroSSL by ACME); "internal"
	// for Caddy's local CA (local names such as .localhost, and tests).
	Issuer string
	// Allow are names ("a.example.com") and wildcards ("*.example.com",
	// one label) approved whether or not a route has them.
	Allow []string
}

func (o *OnDemand) equal(p *OnDemand) bool {
	return o == nil && p == nil || o != nil && p != nil && o.Ask == p.Ask && o.Issuer == p.Issuer && slices.Equal(o.Allow, p.Allow)
}

// IssuerInternal is OnDemand.Issuer for Caddy's local CA.
const IssuerInternal = "internal"

// policyID and askID are the "@id"s of dockroute's automation policy and
// on_demand block in Caddy's TLS app, by which it finds its own.
func policyID(server string) string { return server + "-on-demand" }
func localID(server string) string  { return server + "-on-demand-local" }

// userNamesID is the "@id" of the policy for the public names of Caddy's
// own config (ourPolicies).
func userNamesID(server string) string { return server + "-caddy-names" }
func askID(server string) string       { return server + "-ask" }

// localSuffixes are those of the names no public CA issues certificates
// for (certmagic's SubjectIsInternal), besides "localhost" itself.
var localSuffixes = []string{".localhost", ".local", ".internal", ".home.arpa"}

// localSubjects match the local names of up to three labels below their
// suffix, for dockroute's policy for them: their certificates come from
// Caddy's local CA, as automatic HTTPS does for such names, and an ACME
// issuer would fail on them (retrying a minute later while the first
// request waits). The policy is written only while a local host is
// routed: a policy with Caddy's local CA provisions its PKI app at every
// load, which installs its root certificate in the system's trust store
// unless the user said otherwise, something a server with public names
// only must not get.
var localSubjects = func() []string {
	subjects := []string{"localhost"}
	for _, suffix := range localSuffixes {
		for _, stars := range []string{"*", "*.*", "*.*.*"} {
			subjects = append(subjects, stars+suffix)
		}
	}
	return subjects
}()

// isLocal tells whether a routed host is a local name.
func isLocal(host string) bool {
	return host == "localhost" || slices.ContainsFunc(localSuffixes, func(s string) bool { return strings.HasSuffix(host, s) })
}

// anyLocal tells whether t routes a local name.
func anyLocal(t route.Table) bool {
	return slices.ContainsFunc(t.Routes, func(r route.Route) bool { return !r.TCP && isLocal(r.Host) })
}

// anySubjects match every name of two to maxLabels labels: dockroute's
// policy cannot be a catch-all (no subjects), because Caddy refuses a
// second catch-all beside a user's own, and must come before it.
var anySubjects = func() []string {
	var subjects []string
	for n := 2; n <= maxLabels; n++ {
		subjects = append(subjects, strings.Repeat("*.", n-1)+"*")
	}
	return subjects
}()

// maxLabels is the most labels a looked-up host may have and still get a
// certificate on demand (a.b.c.example.com has five).
const maxLabels = 10

// tlsPlan is what dockroute's part of Caddy's TLS app should be, given
// Caddy's whole config: the TLS app to write (nil: none at all), whether
// that differs from Caddy's, and why on-demand TLS cannot be dockroute's
// ("" when it is, or is not wanted).
type tlsPlan struct {
	app     map[string]any
	existed bool // Caddy has a TLS app (PATCH, not PUT)
	change  bool
	refused string
}

// planTLS works out dockroute's part of the TLS app in cfg (Caddy's whole
// config, decoded) for the server id: od's policy and on_demand block, or,
// with od nil, neither. askOnly writes the endpoint as Caddy 2.6 knows it
// ("ask"), not as a permission module (2.7 and later); local adds the
// policy for local names (localSubjects).
func planTLS(cfg any, id string, od *OnDemand, askOnly, local bool) tlsPlan {
	app, _ := dig(cfg, "apps", "tls").(map[string]any)
	var plan tlsPlan
	plan.existed = app != nil
	before, _ := json.Marshal(app)
	if app == nil {
		app = map[string]any{}
	}
	auto, _ := app["automation"].(map[string]any)
	if auto == nil {
		auto = map[string]any{}
	}
	policies, _ := auto["policies"].([]any)
	var user []any
	for _, p := range policies {
		if m, ok := p.(map[string]any); !ok || !slices.Contains([]any{policyID(id), localID(id), userNamesID(id)}, m["@id"]) {
			user = append(user, p)
		}
	}
	ownAsk := false
	if ask, ok := auto["on_demand"].(map[string]any); ok {
		ownAsk = ask["@id"] != askID(id)
	}
	if od != nil && (ownAsk || slices.ContainsFunc(user, func(p any) bool { m, _ := p.(map[string]any); return m["on_demand"] == true })) {
		plan.refused = "Caddy's config has on-demand TLS of its own (its TLS app's on_demand block, or an automation policy with on_demand): dockroute leaves it alone and writes every host into Caddy's config, where automatic HTTPS gets their certificates when the config loads"
		od = nil
	}
	if !ownAsk {
		delete(auto, "on_demand")
	}
	if od != nil {
		at := slices.IndexFunc(user, func(p any) bool {
			subjects, _ := dig(p, "subjects").([]any)
			_, isMap := p.(map[string]any)
			return isMap && len(subjects) == 0
		})
		catchAll := map[string]any{}
		if at < 0 {
			at = len(user)
		} else {
			catchAll = user[at].(map[string]any)
		}
		user = slices.Insert(user, at, ourPolicies(cfg, id, od, local, user, catchAll)...)
		if askOnly {
			auto["on_demand"] = map[string]any{"@id": askID(id), "ask": od.Ask}
		} else {
			auto["on_demand"] = map[string]any{"@id": askID(id), "permission": map[string]any{"module": "http", "endpoint": od.Ask}}
		}
	}
	setOrDelete(auto, "policies", user, len(user) > 0)
	setOrDelete(app, "automation", auto, len(auto) > 0)
	after, _ := json.Marshal(app)
	plan.change = !sameJSON(before, after) && !(!plan.existed && len(app) == 0)
	if len(app) > 0 {
		plan.app = app
	}
	return plan
}

// ourPolicies are dockroute's automation policies, in order, to go just
// before the user's catch-all (catchAll, empty without one), beside the
// user's own policies (user):
//   - the public names of Caddy's own config, as the user's catch-all
//     has them (at startup, renewed in the background), so that the
//     user's sites do not depend on dockroute's answers: without this
//     policy they would fall under dockroute's on-demand one;
//   - local names, from Caddy's local CA, while one is routed (local);
//   - every other name, on demand, as the user's catch-all has them
//     otherwise (their CA and account), or from the local CA.
func ourPolicies(cfg any, id string, od *OnDemand, local bool, user []any, catchAll map[string]any) []any {
	like := func(extra map[string]any) map[string]any {
		p := map[string]any{}
		for k, v := range catchAll {
			if k != "@id" && k != "on_demand" {
				p[k] = v
			}
		}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	internal := []any{map[string]any{"module": "internal"}}
	var ours []any
	var public []string
	for n := range caddyNames(cfg, id) {
		if !isLocal(n) && !isIP(n) {
			public = append(public, n)
		}
	}
	slices.Sort(public)
	if names := untaken(public, user); len(names) > 0 {
		ours = append(ours, like(map[string]any{"@id": userNamesID(id), "subjects": names}))
	}
	if names := untaken(localSubjects, user); local && od.Issuer != IssuerInternal && len(names) > 0 {
		ours = append(ours, map[string]any{"@id": localID(id), "subjects": names, "on_demand": true, "issuers": internal})
	}
	rest := like(map[string]any{"@id": policyID(id), "on_demand": true, "subjects": untaken(anySubjects, user)})
	if od.Issuer == IssuerInternal {
		rest["issuers"] = internal
	}
	return append(ours, rest)
}

// isIP tells whether a name is an IP address (automatic HTTPS gives those
// the local CA).
func isIP(name string) bool {
	_, err := netip.ParseAddr(strings.Trim(name, "[]"))
	return err == nil
}

// untaken are the subjects no policy of the user's names already (Caddy
// refuses a name in two policies).
func untaken(subjects []string, user []any) []any {
	if len(subjects) == 0 {
		return nil
	}
	taken := map[string]bool{}
	for _, p := range user {
		names, _ := dig(p, "subjects").([]any)
		for _, n := range names {
			if n, ok := n.(string); ok {
				taken[n] = true
			}
		}
	}
	var left []any
	for _, s := range subjects {
		if !taken[s] {
			left = append(left, s)
		}
	}
	return left
}

func setOrDelete(m map[string]any, k string, v any, set bool) {
	if set {
		m[k] = v
	} else {
		delete(m, k)
	}
}

// dig returns the value at keys in nested JSON objects; nil where any is
// missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// caddyNames are the names the rest of Caddy's config gets certificates
// for: the host matchers of the other servers' routes (where automatic
// HTTPS looks) and the TLS app's "automate" list. With dockroute's policy
// in front of the user's, they are on demand too, and approved.
func caddyNames(cfg any, id string) map[string]bool {
	names := map[string]bool{}
	add := func(v any) {
		if s, ok := v.(string); ok && !strings.Contains(s, "{") { // a placeholder names nothing yet
			names[strings.ToLower(s)] = true
		}
	}
	servers, _ := dig(cfg, "apps", "http", "servers").(map[string]any)
	for _, srv := range servers {
		if m, _ := srv.(map[string]any); m == nil || m["@id"] == id {
			continue
		}
		routes, _ := dig(srv, "routes").([]any)
		for _, r := range routes {
			sets, _ := dig(r, "match").([]any)
			for _, set := range sets {
				hosts, _ := dig(set, "host").([]any)
				for _, h := range hosts {
					add(h)
				}
			}
		}
	}
	automate, _ := dig(cfg, "apps", "tls", "certificates", "automate").([]any)
	for _, n := range automate {
		add(n)
	}
	return names
}

// ensureTLS makes dockroute's part of Caddy's TLS app what opt asks for,
// and returns why on-demand TLS cannot be dockroute's ("" when it is, or
// is not wanted). Like a server write, each write carries the ETag of the
// config it read. The caller holds p.mu.
func (p *Publisher) ensureTLS(ctx context.Context, od *OnDemand) (refused string, err error) {
	for attempt := 1; ; attempt++ {
		raw, etag, err := p.admin.Get(ctx, "/config/")
		if err != nil {
			return "", err
		}
		var cfg any
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return "", fmt.Errorf("caddy GET /config/: unreadable answer: %w", err)
		}
		p.names.setCaddy(caddyNames(cfg, p.opt.ID))
		plan := planTLS(cfg, p.opt.ID, od, p.askOnly, p.local)
		if !plan.change {
			return plan.refused, nil
		}
		body, _ := json.Marshal(plan.app)
		switch {
		case plan.app == nil:
			err = p.admin.Send(ctx, http.MethodDelete, "/config/apps/tls", nil, etag)
		case plan.existed:
			err = p.admin.Send(ctx, http.MethodPatch, "/config/apps/tls", body, etag)
		default:
			err = p.admin.Send(ctx, http.MethodPut, "/config/apps/tls", body, etag)
		}
		switch {
		case err == nil:
			p.writes++
			if od != nil && plan.refused == "" {
				p.log.Info("caddy gets certificates on demand for the hosts dockroute routes, asking dockroute first", "policy", policyID(p.opt.ID), "ask", od.Ask)
			}
			return plan.refused, nil
		case isRefusal(err) && !p.askOnly && strings.Contains(err.Error(), "unknown field") && strings.Contains(err.Error(), "permission"):
			p.askOnly = true // Caddy 2.6: the endpoint is "ask"
		case isStatus(err, http.StatusPreconditionFailed) && attempt < maxConflicts:
			p.log.Info("caddy config changed concurrently; re-reading", "attempt", attempt)
		default:
			return "", fmt.Errorf("caddy's TLS app: %w", err)
		}
	}
}

// approver answers Caddy's asks: may it get a certificate for a name?
type approver struct {
	admin *Admin
	id    string // dockroute's server, whose hosts are not Caddy's own
	log   *slog.Logger

	mu    sync.Mutex
	table route.Table     // the last table published
	allow map[string]bool // --caddy-tls-allow
	path  string          // where Caddy asks; "" without on-demand TLS
	// caddy are the names of Caddy's own config, read at caddyAt; an
	// ask for a name nothing else approves reads them again, at most
	// every caddyEvery (a flood of asks for random names must not
	// become a flood of config reads).
	caddy   map[string]bool
	caddyAt time.Time

	approved, refused atomic.Uint64 // asks answered, for /metrics
}

// caddyEvery is how often an ask may read Caddy's config again.
const caddyEvery = 10 * time.Second

func (a *approver) setTable(t route.Table) {
	a.mu.Lock()
	a.table = t
	a.mu.Unlock()
}

// set takes od's settings (nil: on-demand TLS off): the names it allows,
// and the path Caddy asks at.
func (a *approver) set(od *OnDemand) {
	allow, path := map[string]bool{}, ""
	if od != nil {
		for _, n := range od.Allow {
			allow[strings.ToLower(n)] = true
		}
		path = askPath(od.Ask)
	}
	a.mu.Lock()
	a.allow, a.path = allow, path
	a.mu.Unlock()
}

// asks tells whether a request for path is Caddy's ask. The responder
// asks it of every request it gets, so it must not wait for a publish
// (the publisher's lock is held while Caddy loads a config).
func (a *approver) asks(path string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.path != "" && path == a.path
}

// askPath is the path of an ask URL, "" without one.
func askPath(ask string) string {
	u, err := url.Parse(ask)
	if err != nil {
		return ""
	}
	return u.Path
}

func (a *approver) setCaddy(names map[string]bool) {
	a.mu.Lock()
	a.caddy, a.caddyAt = names, time.Now()
	a.mu.Unlock()
}

// why tells why name is approved ("" when it is not).
func (a *approver) why(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	wild := ""
	if _, rest, ok := strings.Cut(name, "."); ok {
		wild = "*." + rest
	}
	switch {
	case name == "":
		return ""
	case a.table.HasHost(name) || wild != "" && a.table.HasHost(wild):
		return "dockroute routes it"
	case a.allow[name] || a.allow[wild]:
		return "--caddy-tls-allow names it"
	case a.caddy[name] || a.caddy[wild]:
		return "Caddy's own config serves it"
	}
	return ""
}

// ServeHTTP answers Caddy's ask: 200 for an approved ?domain=, 403
// otherwise.
func (a *approver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.ToLower(r.URL.Query().Get("domain")), ".")
	why := a.why(name)
	if why == "" && a.claimRead() {
		a.readCaddy(r.Context())
		why = a.why(name)
	}
	if why == "" {
		a.refused.Add(1)
		a.log.Debug("refused caddy a certificate: nothing routes the host", "host", name)
		http.Error(w, "dockroute does not route "+name, http.StatusForbidden)
		return
	}
	a.approved.Add(1)
	a.log.Info("approved caddy's certificate for a host", "host", name, "why", why)
	fmt.Fprintln(w, why)
}

// claimRead tells whether this ask may read Caddy's config again, and if
// so makes the others wait caddyEvery.
func (a *approver) claimRead() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.caddyAt) < caddyEvery {
		return false
	}
	a.caddyAt = time.Now()
	return true
}

// readCaddy reads the names of Caddy's own config again: the user may
// have added a site through the admin API since.
func (a *approver) readCaddy(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	raw, _, err := a.admin.Get(ctx, "/config/")
	var cfg any
	if err == nil {
		err = json.Unmarshal(raw, &cfg)
	}
	if err != nil {
		a.log.Warn("could not read caddy's config for the names of its own sites", "err", err)
		return
	}
	a.setCaddy(caddyNames(cfg, a.id))
}
