package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/output"
	"github.com/dockroute/dockroute/render/traefik"
)

// newOutput is the output cfg names (render/output has the interface and
// each renderer's package its type).
func newOutput(cfg config, log *slog.Logger) (output.Output, error) {
	switch cfg.Output {
	case "traefik":
		return traefik.NewOutput(traefik.OutputConfig{
			Dir: cfg.TraefikDir, File: cfg.TraefikFile, Options: cfg.traefikOptions(),
			SecretMode: cfg.secretMode(), API: cfg.TraefikAPI,
		}, log)
	case "caddy":
		return caddy.NewOutput(caddy.OutputConfig{
			Admin: cfg.CaddyAdmin, Options: cfg.caddyOptions(), Check: cfg.CaddyCheck, Lookups: cfg.dnsOn(),
		}, log)
	}
	return nil, fmt.Errorf("unknown output %q", cfg.Output)
}

// setOutputOptions applies a reloaded config's rendering settings.
func setOutputOptions(o output.Output, cfg config) {
	switch o := o.(type) {
	case *traefik.Output:
		o.SetOptions(cfg.traefikOptions())
	case *caddy.Output:
		o.SetOptions(cfg.caddyOptions())
	}
}

// deliveryNotes returns, for explain, what the proxy says of each route:
// delivered or not. Without a way to ask (Traefik without --traefik-api)
// it says nothing.
func deliveryNotes(ctx context.Context, cfg config) func(route.Backend) string {
	switch {
	case cfg.Output == "traefik" && cfg.TraefikAPI != "":
		return traefik.DeliveryNotes(ctx, cfg.TraefikAPI)
	case cfg.Output == "caddy":
		return caddy.DeliveryNotes(ctx, cfg.CaddyAdmin, cfg.CaddyServer)
	}
	return func(route.Backend) string { return "" }
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
