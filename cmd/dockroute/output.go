package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/traefik"
)

// output is where routes go: a Traefik file-provider directory or a Caddy
// admin API.
type output interface {
	// publish makes the proxy serve t; an error means "retry later".
	publish(ctx context.Context, t route.Table) error
	// watch repairs the output until ctx ends, when something other than
	// dockroute changed it.
	watch(ctx context.Context)
	// render is the config for t, for `dockroute render`.
	render(t route.Table) []byte
	String() string
}

func newOutput(cfg config, log *slog.Logger) (output, error) {
	switch cfg.Output {
	case "traefik":
		return traefikOutput{pub: traefik.FilePublisher{Dir: cfg.TraefikDir, Name: cfg.TraefikFile}, opt: cfg.traefikOptions(), log: log}, nil
	case "caddy":
		admin, err := caddy.NewAdmin(cfg.CaddyAdmin)
		if err != nil {
			return nil, err
		}
		opt := cfg.caddyOptions()
		return &caddyOutput{pub: caddy.NewPublisher(admin, opt, log), opt: opt, check: cfg.CaddyCheck, admin: cfg.CaddyAdmin, log: log}, nil
	}
	return nil, fmt.Errorf("unknown output %q", cfg.Output)
}

type traefikOutput struct {
	pub traefik.FilePublisher
	opt traefik.Options
	log *slog.Logger
}

func (o traefikOutput) String() string { return "traefik file " + o.pub.Path() }

func (o traefikOutput) render(t route.Table) []byte { return traefik.Render(t, o.opt) }

func (o traefikOutput) publish(_ context.Context, t route.Table) error {
	start := time.Now()
	wrote, err := o.pub.Publish(traefik.Render(t, o.opt))
	if err != nil {
		o.log.Error("publish failed; will retry", "path", o.pub.Path(), "err", err)
		return err
	}
	if wrote {
		o.log.Info("published", "path", o.pub.Path(), "routes", len(t.Routes), "took", time.Since(start))
	}
	return nil
}

func (o traefikOutput) watch(ctx context.Context) { <-ctx.Done() }

type caddyOutput struct {
	pub   *caddy.Publisher
	opt   caddy.Options
	check time.Duration
	admin string
	log   *slog.Logger
}

func (o *caddyOutput) String() string { return "caddy admin " + o.admin + " server " + o.opt.ID }

func (o *caddyOutput) render(t route.Table) []byte {
	b, _ := json.MarshalIndent(caddy.Render(t, o.opt), "", "  ")
	return append(b, '\n')
}

func (o *caddyOutput) publish(ctx context.Context, t route.Table) error {
	start, before := time.Now(), o.pub.Writes()
	if err := o.pub.Publish(ctx, t); err != nil {
		o.log.Error("caddy push failed; will retry", "admin", o.admin, "err", err)
		return err
	}
	if o.pub.Writes() != before {
		o.log.Info("published to caddy", "routes", len(t.Routes), "took", time.Since(start))
	}
	return nil
}

// watch asks Caddy every check interval whether dockroute's server is still
// there as pushed, and restores it if not.
func (o *caddyOutput) watch(ctx context.Context) {
	tick := time.NewTicker(o.check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := o.pub.Check(ctx); err != nil && ctx.Err() == nil {
				o.log.Warn("caddy check failed; will retry", "admin", o.admin, "err", err)
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
