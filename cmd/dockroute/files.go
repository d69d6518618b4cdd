package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/policy"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/static"
	"github.com/dockroute/dockroute/provider/watchfile"
	"github.com/dockroute/dockroute/render/auth"
	mw "github.com/dockroute/dockroute/render/middleware"
)

// operatorFiles is what the operator's middlewares and auth files define:
// the sets and groups containers may choose by label. Nil values mean no
// file (the built-in sets only; no groups).
type operatorFiles struct {
	catalog *mw.Catalog
	groups  *auth.Groups
	policy  *policy.Policy
	// routes are the routes file's backends: their hosts and paths are
	// the operator's, never a container's.
	routes []route.Backend
}

// admit tells why a container may not claim host+path: the operator's
// default host (it receives every unknown name's requests, so only the
// owners the policy file names may serve it), the routes file's routes
// and every path under them, and the policy file's word.
func (f operatorFiles) admit(defaultHost string) func(host, path string, who policy.Who) (code docker.Code, reason string) {
	static := map[string][]string{} // host → the routes file's paths there
	for _, b := range f.routes {
		if !b.TCP {
			static[b.Host] = append(static[b.Host], b.Path)
		}
	}
	pol := f.policy
	return func(host, path string, who policy.Who) (docker.Code, string) {
		if host == defaultHost && host != "" && !pol.Binds(host) {
			return docker.CodeReservedHost, fmt.Sprintf("%s is the operator's --default-host, which answers every name no route has: only a container the policy file names as its owner may serve it (--policy-file with hosts: [{names: [%s], owners: [{label: KEY=VALUE}]}])", host, host)
		}
		for _, p := range static[host] {
			if route.Within(path, p) {
				return docker.CodeReservedHost, fmt.Sprintf("%s%s is routed by the operator's routes file (%s%s): no container may claim it or a path under it", host, path, host, p)
			}
		}
		code, reason := pol.Admit(host, who)
		return docker.Code(code), reason // one of policy's codes, which TestPolicyCodesAreKnown checks
	}
}

// middlewareCheck tells why a route for host may not use a set with
// output.
func (f operatorFiles) middlewareCheck(output string) func(name, host string) error {
	return func(name, host string) error { return f.catalog.CheckRoute(name, output, host) }
}

func (f operatorFiles) authCheck() func(group string) error {
	return func(group string) error { return f.groups.Check(group) }
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

// operatorSources keeps the operator's files loaded; a nil source is a
// file not given.
type operatorSources struct {
	mws    *watchfile.Source[*mw.Catalog]
	auth   *watchfile.Source[*auth.Groups]
	policy *watchfile.Source[*policy.Policy]
}

func newOperatorSources(cfg config, log *slog.Logger) operatorSources {
	var s operatorSources
	if cfg.MiddlewaresFile != "" {
		s.mws = newMiddlewaresSource(cfg.MiddlewaresFile, log)
	}
	if cfg.AuthFile != "" {
		s.auth = newAuthSource(cfg.AuthFile, log)
	}
	if cfg.PolicyFile != "" {
		s.policy = newPolicySource(cfg.PolicyFile, log)
	}
	return s
}

// load reads the middlewares and auth files; the first error is returned
// after both tried. Containers choosing a set or group are refused until
// it loads, so the daemon may start without them.
func (s operatorSources) load() error {
	var first error
	if s.mws != nil {
		first = s.mws.Load()
	}
	if s.auth != nil {
		if err := s.auth.Load(); first == nil {
			first = err
		}
	}
	return first
}

// loadPolicy reads the policy file. Unlike the others, the daemon does
// not start without it: the hosts it binds would be open to anyone.
func (s operatorSources) loadPolicy() error {
	if s.policy == nil {
		return nil
	}
	return s.policy.Load()
}

// files is what the files define now.
func (s operatorSources) files() operatorFiles {
	var f operatorFiles
	if s.mws != nil {
		f.catalog = s.mws.Value()
	}
	if s.auth != nil {
		f.groups = s.auth.Value()
	}
	if s.policy != nil {
		f.policy = s.policy.Value()
	}
	return f
}

// watch reloads the files on change until ctx ends, calling changed after
// each new value; goroutine starts what the caller waits for.
func (s operatorSources) watch(ctx context.Context, log *slog.Logger, goroutine func(func()), changed func()) {
	if s.mws != nil {
		watchSource(ctx, log, goroutine, s.mws, changed)
	}
	if s.auth != nil {
		watchSource(ctx, log, goroutine, s.auth, changed)
	}
	if s.policy != nil {
		watchSource(ctx, log, goroutine, s.policy, changed)
	}
}

// kept is a watchfile.Source of any value.
type kept interface {
	Run(context.Context) error
	Changed() <-chan struct{}
	Path() string
}

func watchSource(ctx context.Context, log *slog.Logger, goroutine func(func()), src kept, changed func()) {
	goroutine(func() {
		if err := src.Run(ctx); err != nil {
			log.Error("not watching a file", "file", src.Path(), "err", err)
		}
	})
	goroutine(func() { forward(ctx, src.Changed(), changed) })
}

// rearm sets the files' watches up again and reloads them (SIGHUP).
func (s operatorSources) rearm() {
	if s.mws != nil {
		s.mws.Rearm()
	}
	if s.auth != nil {
		s.auth.Rearm()
	}
	if s.policy != nil {
		s.policy.Rearm()
	}
}

// withOperatorFiles loads the operator's files once, for the one-shot
// commands, the routes file with them (nil without one).
func withOperatorFiles(cfg config, log *slog.Logger) (config, *static.Source, error) {
	s := newOperatorSources(cfg, log)
	err := s.load()
	if perr := s.loadPolicy(); err == nil {
		err = perr
	}
	cfg.files = s.files()
	if err != nil || cfg.RoutesFile == "" {
		return cfg, nil, err
	}
	src := static.NewSource(cfg.RoutesFile, log)
	err = src.Load()
	cfg.files.routes = src.Value()
	return cfg, src, err
}
