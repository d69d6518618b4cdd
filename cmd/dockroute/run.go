package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/coalesce"
	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/render/traefik"
)

// run is the daemon: Docker watcher → coalescer → renderer → publisher.
func run(ctx context.Context, cfg config) error {
	log := cfg.logger(os.Stderr)
	cli, err := docker.NewClient()
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	w := docker.New(cli, cfg.dockerOptions(), cfg.Resync, log)
	pub := traefik.FilePublisher{Dir: cfg.TraefikDir, Name: cfg.TraefikFile}
	log.Info("dockroute starting", "version", version(), "output", pub.Path(), "docker", cli.DaemonHost())

	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	coalesce.Run(ctx, cfg.Coalesce, w.Changed(), func() error { return publish(w, pub, log) })
	<-done
	log.Info("dockroute stopped")
	return nil
}

// publish renders the current table and writes it if it changed.
func publish(w *docker.Watcher, pub traefik.FilePublisher, log *slog.Logger) error {
	t, ok := w.Table()
	if !ok {
		return nil // nothing known yet: never publish an unknown table as empty
	}
	start := time.Now()
	wrote, err := pub.Publish(traefik.Render(t))
	if err != nil {
		log.Error("publish failed; will retry", "path", pub.Path(), "err", err)
		return err
	}
	if wrote {
		log.Info("published", "path", pub.Path(), "routes", len(t.Routes), "took", time.Since(start))
	}
	return nil
}

// render prints the config for the running containers once.
func render(ctx context.Context, cfg config, stdout io.Writer) error {
	cli, err := docker.NewClient()
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	w := docker.New(cli, cfg.dockerOptions(), cfg.Resync, cfg.logger(os.Stderr))
	if err := w.Resync(ctx); err != nil {
		return err
	}
	t, _ := w.Table()
	_, err = stdout.Write(traefik.Render(t))
	return err
}

// explain prints, for each container, whether it is routed and if not why.
func explain(ctx context.Context, cfg config, stdout io.Writer) error {
	cli, err := docker.NewClient()
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	verdicts, err := docker.Explain(ctx, cli, cfg.dockerOptions(), cfg.Args)
	if err != nil {
		return err
	}
	for _, v := range verdicts {
		fmt.Fprint(stdout, formatVerdict(v))
	}
	return nil
}

func formatVerdict(v docker.Verdict) string {
	var b strings.Builder
	name := v.Name
	if v.ID != "" {
		name += " (" + v.ID[:min(12, len(v.ID))] + ")"
	}
	switch {
	case v.Routed():
		fmt.Fprintf(&b, "%s: routed\n", name)
		for _, h := range v.Backend.Hosts {
			fmt.Fprintf(&b, "  %s -> http://%s\n", h, v.Backend.Addr)
		}
	case v.OptedIn:
		fmt.Fprintf(&b, "%s: NOT routed: %s\n", name, v.Reason)
	default:
		fmt.Fprintf(&b, "%s: ignored: %s\n", name, v.Reason)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}
