package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/operator"
	"github.com/dockroute/dockroute/render/output"
)

// parts are what every command brings up from its config: the operator's
// files (the routes file among them), the output and the engines.
type parts struct {
	cfg      config // with the files' values and --network auto resolved
	operator operator.Sources
	out      output.Output // nil when not asked for
	fleet    *docker.Fleet
	own      string // the network --network auto named ("" without it)
}

// bringUp loads the files, sets up the output (when withOutput) and
// connects to every engine. The daemon (lenient) starts without a
// middlewares, auth or routes file it cannot read, logging why, as it
// watches and reloads them; the one-shot commands stop. A policy file
// that cannot be read stops both: the names it binds would be open to any
// container.
func bringUp(ctx context.Context, cfg config, log *slog.Logger, lenient, withOutput bool) (*parts, error) {
	p := &parts{operator: operator.NewSources(operator.Paths{
		Middlewares: cfg.MiddlewaresFile, Auth: cfg.AuthFile, Policy: cfg.PolicyFile, Routes: cfg.RoutesFile,
	}, log)}
	if err := p.operator.Load(); err != nil {
		if !lenient {
			return nil, err
		}
		// Containers choosing a set or group are refused until it loads.
		log.Error("starting without some of the operator's files", "err", err)
	}
	if err := p.operator.LoadPolicy(); err != nil {
		return nil, fmt.Errorf("--policy-file: %w (dockroute does not start without it: the names it binds would be open to any container)", err)
	}
	cfg.files = p.operator.Files()
	if withOutput {
		out, err := newOutput(cfg, log)
		if err != nil {
			return nil, err
		}
		p.out = out
	}
	fleet, cfg, own, err := connect(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	p.fleet, p.cfg, p.own = fleet, cfg, own
	return p, nil
}
