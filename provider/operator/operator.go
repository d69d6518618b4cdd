// Package operator keeps the operator's own files loaded and watched: the
// middleware sets and basic-auth groups containers may choose by label,
// and the policy of which names containers may claim. Files says what
// they define now, as the checks the Docker provider decides with.
package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/policy"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/static"
	"github.com/dockroute/dockroute/provider/watchfile"
	"github.com/dockroute/dockroute/render/auth"
	mw "github.com/dockroute/dockroute/render/middleware"
)

// Files is what the operator's files define: the sets and groups
// containers may choose by label, and the policy. Nil values mean no file
// (the built-in sets only; no groups; no policy).
type Files struct {
	Catalog *mw.Catalog
	Groups  *auth.Groups
	Policy  *policy.Policy
	// Routes are the routes file's backends: their hosts and paths are
	// the operator's, never a container's.
	Routes []route.Backend
}

// Admit tells why a container may not claim host+path: the operator's
// default host (it receives every unknown name's requests, so only the
// owners the policy file names may serve it), the routes file's routes
// and every path under them, and the policy file's word.
func (f Files) Admit(defaultHost string) func(host, path string, who policy.Who) (code contract.Code, reason string) {
	static := map[string][]string{} // host → the routes file's paths there
	for _, b := range f.Routes {
		if !b.TCP {
			static[b.Host] = append(static[b.Host], b.Path)
		}
	}
	pol := f.Policy
	return func(host, path string, who policy.Who) (contract.Code, string) {
		if host == defaultHost && host != "" && !pol.Binds(host) {
			return contract.CodeReservedHost, fmt.Sprintf("%s is the operator's --default-host, which answers every name no route has: only a container the policy file names as its owner may serve it (--policy-file with hosts: [{names: [%s], owners: [{label: KEY=VALUE}]}])", host, host)
		}
		for _, p := range static[host] {
			if route.Within(path, p) {
				return contract.CodeReservedHost, fmt.Sprintf("%s%s is routed by the operator's routes file (%s%s): no container may claim it or a path under it", host, path, host, p)
			}
		}
		code, reason := pol.Admit(host, who)
		return contract.Code(code), reason // one of policy's codes, which TestPolicyCodesAreKnown checks
	}
}

// MiddlewareCheck tells why a route for host may not use a set with
// output (traefik or caddy).
func (f Files) MiddlewareCheck(output string) func(name, host string) error {
	return func(name, host string) error { return f.Catalog.CheckRoute(name, output, host) }
}

// AuthCheck tells why a route may not use an auth group.
func (f Files) AuthCheck() func(group string) error {
	return func(group string) error { return f.Groups.Check(group) }
}

// newMiddlewaresSource keeps the middlewares file loaded, logging the
// entries it skips.
func newMiddlewaresSource(path string, log *slog.Logger) *watchfile.Source[*mw.Catalog] {
	return watchfile.NewSource(path, "middlewares file", func(data []byte) (*mw.Catalog, error) {
		c, problems, err := mw.Parse(data)
		if err != nil {
			return nil, err
		}
		for _, p := range problems {
			log.Warn("middlewares file entry skipped; containers choosing it are refused", "file", path, "line", p.Line, "set", p.Name, "reason", p.Reason)
		}
		log.Info("middlewares file loaded", "file", path, "sets", len(c.Names()), "skipped", len(problems))
		return c, nil
	}, log)
}

// newAuthSource keeps the auth file loaded. Its contents never reach a
// log line: only group names, line numbers and reasons.
func newAuthSource(path string, log *slog.Logger) *watchfile.Source[*auth.Groups] {
	return watchfile.NewSource(path, "auth file", func(data []byte) (*auth.Groups, error) {
		g, problems := auth.Parse(data)
		for _, p := range problems {
			log.Warn("auth file group refused; containers choosing it are refused", "file", path, "line", p.Line, "group", p.Group, "reason", p.Reason)
		}
		log.Info("auth file loaded", "file", path, "groups", len(g.Names()), "refused", len(problems))
		return g, nil
	}, log)
}

// newPolicySource keeps the policy file loaded, logging the entries it
// could not read (each fails closed: see policy.Parse).
func newPolicySource(path string, log *slog.Logger) *watchfile.Source[*policy.Policy] {
	return watchfile.NewSource(path, "policy file", func(data []byte) (*policy.Policy, error) {
		p, problems, err := policy.Parse(data)
		if err != nil {
			return nil, err
		}
		for _, pr := range problems {
			log.Warn("policy file entry not applied as written", "file", path, "line", pr.Line, "reason", pr.Reason)
		}
		log.Info("policy file loaded", "file", path, "domains", len(p.Domains), "reserved", len(p.Reserved), "rules", len(p.Rules), "problems", len(problems))
		return p, nil
	}, log)
}

// Sources keeps the operator's files loaded; a nil source is a file not
// given.
type Sources struct {
	mws    *watchfile.Source[*mw.Catalog]
	auth   *watchfile.Source[*auth.Groups]
	policy *watchfile.Source[*policy.Policy]
	routes *static.Source
	all    []kept // the files given, to watch and rearm
	loose  []kept // those the daemon may start without (all but the policy)
}

// Paths are the operator's files; "" is a file not given.
type Paths struct{ Middlewares, Auth, Policy, Routes string }

// NewSources sets up the files' sources; nothing is read before Load.
func NewSources(p Paths, log *slog.Logger) Sources {
	var s Sources
	if p.Middlewares != "" {
		s.mws = newMiddlewaresSource(p.Middlewares, log)
		s.loose = append(s.loose, s.mws)
	}
	if p.Auth != "" {
		s.auth = newAuthSource(p.Auth, log)
		s.loose = append(s.loose, s.auth)
	}
	if p.Policy != "" {
		s.policy = newPolicySource(p.Policy, log)
		s.all = append(s.all, s.policy)
	}
	if p.Routes != "" {
		s.routes = static.NewSource(p.Routes, log)
		s.loose = append(s.loose, s.routes)
	}
	s.all = append(s.all, s.loose...)
	return s
}

// Load reads the middlewares, auth and routes files; every error is
// returned after all were tried. Containers choosing a set or group are
// refused until it loads, and a routes file's routes are simply absent,
// so the daemon may start without them.
func (s Sources) Load() error {
	var errs []error
	for _, src := range s.loose {
		errs = append(errs, src.Load())
	}
	return errors.Join(errs...)
}

// LoadPolicy reads the policy file. Unlike the others, the daemon does
// not start without it: the hosts it binds would be open to anyone.
func (s Sources) LoadPolicy() error {
	if s.policy == nil {
		return nil
	}
	return s.policy.Load()
}

// Files is what the files define now.
func (s Sources) Files() Files {
	var f Files
	if s.mws != nil {
		f.Catalog = s.mws.Value()
	}
	if s.auth != nil {
		f.Groups = s.auth.Value()
	}
	if s.policy != nil {
		f.Policy = s.policy.Value()
	}
	f.Routes, _ = s.Routes()
	return f
}

// Routes are the routes file's routes now; false without a routes file.
func (s Sources) Routes() ([]route.Backend, bool) {
	if s.routes == nil {
		return nil, false
	}
	return s.routes.Value(), true
}

// Watch reloads the files on change until ctx ends, calling changed after
// each new value; goroutine starts what the caller waits for.
func (s Sources) Watch(ctx context.Context, log *slog.Logger, goroutine func(func()), changed func()) {
	for _, src := range s.all {
		goroutine(func() {
			if err := src.Run(ctx); err != nil {
				log.Error("not watching a file", "file", src.Path(), "err", err)
			}
		})
		goroutine(func() { forward(ctx, src.Changed(), changed) })
	}
}

// kept is a watchfile.Source of any value.
type kept interface {
	Load() error
	Run(context.Context) error
	Changed() <-chan struct{}
	Path() string
	Rearm()
}

// Rearm sets the files' watches up again and reloads them (SIGHUP).
func (s Sources) Rearm() {
	for _, src := range s.all {
		src.Rearm()
	}
}

// forward calls changed on every value from from, until ctx ends.
func forward(ctx context.Context, from <-chan struct{}, changed func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-from:
			changed()
		}
	}
}
