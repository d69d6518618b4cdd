package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dockroute/dockroute/provider/coalesce"
	"github.com/dockroute/dockroute/provider/docker"
)

// run is the daemon: Docker watcher → coalescer → renderer → publisher.
func run(ctx context.Context, cfg config) error {
	log := cfg.logger(os.Stderr)
	out, err := newOutput(cfg, log)
	if err != nil {
		return err
	}
	cli, err := docker.NewClient()
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	w := docker.New(cli, cfg.dockerOptions(), cfg.Resync, log)
	log.Info("dockroute starting", "version", version(), "output", out.String(), "docker", cli.DaemonHost())

	done := make(chan struct{}, 2)
	go func() { w.Run(ctx); done <- struct{}{} }()
	go func() { out.watch(ctx); done <- struct{}{} }()
	coalesce.Run(ctx, cfg.Coalesce, w.Changed(), func() error {
		t, ok := w.Table()
		if !ok {
			return nil // nothing known yet: never publish an unknown table as empty
		}
		return out.publish(ctx, t)
	})
	<-done
	<-done
	log.Info("dockroute stopped")
	return nil
}

// render prints the config for the running containers once.
func render(ctx context.Context, cfg config, stdout io.Writer) error {
	log := cfg.logger(os.Stderr)
	out, err := newOutput(cfg, log)
	if err != nil {
		return err
	}
	cli, err := docker.NewClient()
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	w := docker.New(cli, cfg.dockerOptions(), cfg.Resync, log)
	if err := w.Resync(ctx); err != nil {
		return err
	}
	t, _ := w.Table()
	_, err = stdout.Write(out.render(t))
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
		for _, be := range v.Backends {
			strip := ""
			if be.Strip && be.Path != "" {
				strip = " (prefix " + be.Path + " stripped)"
			}
			fmt.Fprintf(&b, "  %s%s -> http://%s%s\n", be.Host, be.Path, be.Server, strip)
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
