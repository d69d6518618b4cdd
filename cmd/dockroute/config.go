package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/coalesce"
	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/traefik"
)

// errUsage marks a command line the user must fix; flag has already said why.
var errUsage = errors.New("usage")

// envPrefix turns a flag name into its environment variable:
// --traefik-dir is DOCKROUTE_TRAEFIK_DIR.
const envPrefix = "DOCKROUTE_"

// config is everything a command can be told.
type config struct {
	Output              string
	CaddyAdmin          string
	CaddyServer         string
	CaddyListen         string
	CaddyTLS            bool
	CaddyNoRedirect     bool
	CaddyCheck          time.Duration
	TraefikEntryPoints  string
	TraefikTLS          bool
	TraefikCertResolver string
	TraefikRedirect     string
	Health              string
	TraefikDir          string
	TraefikFile         string
	Network             string
	Resync              time.Duration
	Coalesce            coalesce.Config
	LogLevel            slog.Level
	LogFormat           string
	Args                []string // explain's container names
}

func (c config) dockerOptions() docker.Options {
	return docker.Options{Network: c.Network, IgnoreHealth: c.Health == "ignore"}
}

func (c config) caddyOptions() caddy.Options {
	return caddy.Options{ID: c.CaddyServer, Listen: splitList(c.CaddyListen), AutoHTTPS: c.CaddyTLS, NoRedirect: c.CaddyNoRedirect}
}

func (c config) traefikOptions() traefik.Options {
	return traefik.Options{
		EntryPoints: splitList(c.TraefikEntryPoints), TLS: c.TraefikTLS || c.TraefikCertResolver != "",
		CertResolver: c.TraefikCertResolver, RedirectFrom: splitList(c.TraefikRedirect),
	}
}

// parseConfig reads flags, then fills every flag not given on the command
// line from its DOCKROUTE_* variable: flags > environment > defaults.
func parseConfig(cmd string, args []string, stderr io.Writer) (config, error) {
	c := config{
		Output:      "traefik",
		CaddyAdmin:  "http://127.0.0.1:2019",
		CaddyServer: "dockroute",
		CaddyListen: ":80",
		CaddyCheck:  5 * time.Second,
		Health:      "require",
		TraefikDir:  "dynamic",
		TraefikFile: "dockroute.yml",
		Resync:      30 * time.Second,
		Coalesce:    coalesce.Config{Quiet: 100 * time.Millisecond, MaxDelay: 500 * time.Millisecond, Retry: 500 * time.Millisecond, MaxRetry: 5 * time.Second},
		LogFormat:   "text",
	}
	fs := flag.NewFlagSet("dockroute "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Output, "output", c.Output, "where routes go: traefik (a file-provider directory) or caddy (the admin API)")
	fs.StringVar(&c.CaddyAdmin, "caddy-admin", c.CaddyAdmin, "Caddy admin API address: http://HOST:PORT or unix//PATH")
	fs.StringVar(&c.CaddyServer, "caddy-server", c.CaddyServer, "name and @id of the Caddy server dockroute owns")
	fs.StringVar(&c.CaddyListen, "caddy-listen", c.CaddyListen, "listen addresses of dockroute's Caddy server, comma-separated")
	fs.BoolVar(&c.CaddyTLS, "caddy-tls", c.CaddyTLS, "keep Caddy's automatic HTTPS on for routed hosts (use with --caddy-listen :443)")
	fs.BoolVar(&c.CaddyNoRedirect, "caddy-no-redirect", c.CaddyNoRedirect, "with --caddy-tls, do not redirect HTTP to HTTPS")
	fs.StringVar(&c.TraefikEntryPoints, "traefik-entrypoints", c.TraefikEntryPoints, "Traefik entrypoints of every router, comma-separated (default: all); label dockroute.entrypoints overrides")
	fs.BoolVar(&c.TraefikTLS, "traefik-tls", c.TraefikTLS, "serve every router over TLS; label dockroute.tls overrides")
	fs.StringVar(&c.TraefikCertResolver, "traefik-certresolver", c.TraefikCertResolver, "Traefik certificate resolver for TLS routers (implies --traefik-tls); label dockroute.certresolver overrides")
	fs.StringVar(&c.TraefikRedirect, "traefik-redirect", c.TraefikRedirect, "plain-HTTP entrypoints (e.g. web) on which TLS routes redirect to HTTPS")
	fs.StringVar(&c.Health, "health", c.Health, "require: route containers with a healthcheck only while healthy; ignore: route them whatever it says")
	fs.DurationVar(&c.CaddyCheck, "caddy-check", c.CaddyCheck, "how often to check that Caddy still has dockroute's server, restoring it if lost")
	fs.StringVar(&c.TraefikDir, "traefik-dir", c.TraefikDir, "directory Traefik's file provider watches (providers.file.directory)")
	fs.StringVar(&c.TraefikFile, "traefik-file", c.TraefikFile, "file name written in --traefik-dir (must end in .yml or .yaml)")
	fs.StringVar(&c.Network, "network", c.Network, "Docker network whose container addresses are routed; needed when containers are on several networks")
	fs.DurationVar(&c.Resync, "resync", c.Resync, "interval of the full resync that repairs anything a lost event missed")
	fs.DurationVar(&c.Coalesce.Quiet, "coalesce-quiet", c.Coalesce.Quiet, "publish once events have paused this long")
	fs.DurationVar(&c.Coalesce.MaxDelay, "coalesce-max", c.Coalesce.MaxDelay, "publish at most this long after the first event of a burst")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return c, errUsage
	}
	if err := applyEnv(fs, os.LookupEnv); err != nil {
		fmt.Fprintln(stderr, "dockroute:", err)
		return c, errUsage
	}
	c.Args = fs.Args()
	if err := c.validate(cmd); err != nil {
		fmt.Fprintln(stderr, "dockroute:", err)
		return c, errUsage
	}
	return c, nil
}

// applyEnv sets each flag that was not on the command line from its
// environment variable, if present.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := lookup(name)
		if given[f.Name] || !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

func (c config) validate(cmd string) error {
	if cmd != "explain" && len(c.Args) > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args, " "))
	}
	if c.Output != "traefik" && c.Output != "caddy" {
		return fmt.Errorf("--output %q: want traefik or caddy", c.Output)
	}
	if c.Output == "caddy" && (c.CaddyServer == "" || strings.ContainsAny(c.CaddyServer, "/ ") || len(splitList(c.CaddyListen)) == 0 || c.CaddyCheck <= 0) {
		return fmt.Errorf("--output caddy needs a --caddy-server name without slashes or spaces, at least one --caddy-listen address and a positive --caddy-check")
	}
	if c.Health != "require" && c.Health != "ignore" {
		return fmt.Errorf("--health %q: want require or ignore", c.Health)
	}
	for _, list := range []string{c.TraefikEntryPoints, c.TraefikRedirect, c.TraefikCertResolver} {
		for _, n := range splitList(list) {
			if _, err := route.ParseName(n); err != nil {
				return fmt.Errorf("traefik entrypoint or resolver: %w", err)
			}
		}
	}
	if !strings.HasSuffix(c.TraefikFile, ".yml") && !strings.HasSuffix(c.TraefikFile, ".yaml") {
		return fmt.Errorf("--traefik-file %q must end in .yml or .yaml, or Traefik will not read it", c.TraefikFile)
	}
	if strings.ContainsRune(c.TraefikFile, os.PathSeparator) {
		return fmt.Errorf("--traefik-file %q must be a plain file name; set the directory with --traefik-dir", c.TraefikFile)
	}
	if c.Resync <= 0 || c.Coalesce.Quiet <= 0 || c.Coalesce.MaxDelay < c.Coalesce.Quiet {
		return fmt.Errorf("--resync and --coalesce-quiet must be positive, and --coalesce-max at least --coalesce-quiet")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	return nil
}

func (c config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// withConfig parses the command line and runs fn with the result.
func withConfig(cmd string, args []string, stderr io.Writer, fn func(config) error) error {
	c, err := parseConfig(cmd, args, stderr)
	if err != nil {
		return err
	}
	return fn(c)
}
