package main

import (
	"context"
	"log/slog"

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

// operatorSources keeps the operator's files loaded; a nil source is a
// file not given.
type operatorSources struct {
	mws  *watchfile.Source[*mw.Catalog]
	auth *watchfile.Source[*auth.Groups]
}

func newOperatorSources(cfg config, log *slog.Logger) operatorSources {
	var s operatorSources
	if cfg.MiddlewaresFile != "" {
		s.mws = newMiddlewaresSource(cfg.MiddlewaresFile, log)
	}
	if cfg.AuthFile != "" {
		s.auth = newAuthSource(cfg.AuthFile, log)
	}
	return s
}

// load reads both files; the first error is returned after both tried.
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

// files is what the files define now.
func (s operatorSources) files() operatorFiles {
	var f operatorFiles
	if s.mws != nil {
		f.catalog = s.mws.Value()
	}
	if s.auth != nil {
		f.groups = s.auth.Value()
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
}

// withOperatorFiles loads the operator's files once, for the one-shot
// commands.
func withOperatorFiles(cfg config, log *slog.Logger) (config, error) {
	s := newOperatorSources(cfg, log)
	err := s.load()
	cfg.files = s.files()
	return cfg, err
}
