package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	neturl "net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockroute/dockroute/cmd/dockroute/settings"
	"github.com/dockroute/dockroute/provider/coalesce"
	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/operator"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/traefik"
)

// errUsage marks a command line the user must fix; it has already been said.
var errUsage = errors.New("usage")

// errHelp marks a request for help, which has been printed.
var errHelp = errors.New("help")

// envPrefix turns a flag name into its environment variable:
// --traefik-dir is DOCKROUTE_TRAEFIK_DIR.
const envPrefix = "DOCKROUTE_"

// config is everything a command can be told.
type config struct {
	ConfigFile          string
	RoutesFile          string
	MetricsAddr         string
	Pprof               bool
	MaxRoutes           int
	SecretFileMode      string
	Output              string
	CaddyAdmin          string
	CaddyServer         string
	CaddyListen         string
	CaddyTLS            bool
	CaddyNoRedirect     bool
	CaddyTLSIssuer      string
	CaddyTLSAllow       string
	CaddyCheck          time.Duration
	CaddyDNS            string
	CaddyDNSHosts       bool
	CaddyDNSAdvertise   string
	CaddyDNSRefresh     time.Duration
	TraefikEntryPoints  string
	TraefikTLS          bool
	TraefikCertResolver string
	TraefikRedirect     string
	TraefikAPI          string
	UpstreamInsecure    bool
	DefaultHost         string
	TraefikLabels       bool
	IPFamily            string
	UnavailableGrace    time.Duration
	Hold                time.Duration
	HoldListen          string
	HoldAdvertise       string
	Sleep               bool
	Health              string
	TraefikDir          string
	TraefikFile         string
	Network             string
	Filter              string
	DockerHost          string
	EngineGrace         time.Duration
	Swarm               string
	Resync              time.Duration
	Coalesce            coalesce.Config
	LogLevel            slog.Level
	LogFormat           string
	Args                []string // explain's container names
	MiddlewaresFile     string
	AuthFile            string
	PolicyFile          string
	// autoNetwork is the network --network auto resolved to: dockroute
	// considers only containers on it.
	autoNetwork string
	// holdAt is where the running holding endpoint listens for the proxy
	// and its token (nil when requests are not held): set by run once it
	// listens, and carried over config reloads.
	holdAt *holdTarget
	// responder is where the running Responder listens (Caddy's host
	// lookup route sends it the hosts nothing routes); "" when hosts are
	// not looked up. Set by run, carried over config reloads.
	responder string
	// askToken is in the path of the responder's answer to Caddy's asks
	// for on-demand certificates, which the host lookup route's
	// requests cannot guess. Set with responder.
	askToken string
	// dnsAt is the address the lookup server bound (--caddy-dns auto takes
	// any free port). Set by run, carried over config reloads.
	dnsAt string
	// files holds what the operator's middlewares and auth files define
	// now (not settings: the daemon keeps them current).
	files operator.Files
	// values holds every setting's final text by flag name, to tell what a
	// reload changed.
	values map[string]string
	// fileLines holds the line of each setting the config file sets, so an
	// invalid value can be shown where it was written.
	fileLines map[string]int
}

// liveKeys are the settings a config-file reload applies without a restart:
// what decides and renders routes. The rest (where dockroute listens, talks
// and writes) needs a restart, and a reload that changes it says so.
var liveKeys = map[string]bool{
	"log-level": true, "network": true, "health": true,
	"traefik-entrypoints": true, "traefik-tls": true, "traefik-certresolver": true, "traefik-redirect": true,
	"caddy-listen": true, "caddy-tls": true, "caddy-no-redirect": true, "caddy-tls-issuer": true, "caddy-tls-allow": true, "upstream-insecure": true,
	"default-host": true, "traefik-labels": true, "ip-family": true, "caddy-dns-refresh": true,
	"max-routes-per-container": true,
}

func (c config) dockerOptions() docker.Options {
	scope, _ := docker.ParseScope(splitList(c.Filter)) // validated
	if c.autoNetwork != "" && !strings.Contains(c.Filter, "network=") {
		scope = scope.Own(c.autoNetwork)
	}
	return docker.Options{Scope: scope, Swarm: c.Swarm, Options: contract.Options{
		Network: c.Network, IgnoreHealth: c.Health == "ignore",
		Middleware: c.files.MiddlewareCheck(c.Output), Auth: c.files.AuthCheck(),
		TraefikLabels: c.TraefikLabels, IPFamily: c.IPFamily, NoTCP: c.Output == "caddy",
		MaxRoutes: c.MaxRoutes, Hold: c.UnavailableGrace, Admit: c.files.Admit(c.defaultHost()),
		Sleep: c.Sleep,
	}}
}

func (c config) caddyOptions() caddy.Options {
	o := caddy.Options{
		ID: c.CaddyServer, Listen: splitList(c.CaddyListen), AutoHTTPS: c.CaddyTLS, NoRedirect: c.CaddyNoRedirect,
		InsecureUpstream: c.UpstreamInsecure, Middlewares: c.files.Catalog, Auth: c.files.Groups,
		DefaultHost: c.defaultHost(), Lookup: c.caddyLookup(),
	}
	if c.holdAt != nil {
		o.Hold = &caddy.Hold{Dial: c.holdAt.addr, Token: c.holdAt.token, Limit: c.Hold}
	}
	if c.CaddyTLS && o.Lookup != nil && o.Lookup.Hosts != "" {
		// Looked-up hosts are not in Caddy's config: their
		// certificates come on demand.
		o.OnDemand = &caddy.OnDemand{Ask: "http://" + c.responder + "/tls-ask/" + c.askToken, Allow: c.tlsAllow()}
		if c.CaddyTLSIssuer == caddy.IssuerInternal {
			o.OnDemand.Issuer = caddy.IssuerInternal
		}
	}
	return o
}

// tlsAllow is --caddy-tls-allow in canonical form (validated).
func (c config) tlsAllow() []string {
	var names []string
	for _, n := range splitList(c.CaddyTLSAllow) {
		h, _ := route.ParseHost(n)
		names = append(names, h)
	}
	return names
}

// holdTarget is the holding endpoint as the proxy reaches it.
type holdTarget struct{ addr, token string }

// holds tells whether requests for a host without containers are held:
// only a host kept as down (--unavailable-grace) has requests to hold.
func (c config) holds() bool { return c.Hold > 0 && c.UnavailableGrace > 0 }

// dnsListen is where --caddy-dns listens: a port alone (1053 or :1053)
// is on loopback, so the lookups are never offered to a network of
// tenants unless the operator names an address.
func (c config) dnsListen() string {
	if c.CaddyDNS == dnsAuto {
		return "127.0.0.1:0" // any free port, written into Caddy's config
	}
	if _, err := strconv.ParseUint(c.CaddyDNS, 10, 16); err == nil {
		return "127.0.0.1:" + c.CaddyDNS
	}
	if port, ok := strings.CutPrefix(c.CaddyDNS, ":"); ok {
		return "127.0.0.1:" + port
	}
	return c.CaddyDNS
}

// The --caddy-dns words: auto (the default) answers Caddy's lookups when
// Caddy runs on this host; off never does.
const (
	dnsAuto = "auto"
	dnsOff  = "off"
)

// dnsOn tells whether dockroute answers Caddy's lookups: --caddy-dns names
// an address, or is auto and Caddy's admin API is on loopback (Caddy runs
// on this host, and reaches dockroute's loopback listener).
func (c config) dnsOn() bool {
	switch c.CaddyDNS {
	case "", dnsOff:
		return false
	case dnsAuto:
		return c.Output == "caddy" && onLoopback(c.CaddyAdmin)
	}
	return true
}

// onLoopback tells whether an http:// admin address is a loopback one.
func onLoopback(admin string) bool {
	u, err := neturl.Parse(admin)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// caddyLookup is where Caddy asks for upstreams; nil without lookups, and
// for auto before run has bound its port (render, explain).
func (c config) caddyLookup() *caddy.Lookup {
	addr := cmp.Or(c.CaddyDNSAdvertise, c.dnsAt, c.dnsListen())
	if !c.dnsOn() || strings.HasSuffix(addr, ":0") {
		return nil
	}
	l := &caddy.Lookup{Resolver: "udp/" + addr, Refresh: c.CaddyDNSRefresh}
	// Plain hosts are looked up too where nothing needs them written: no
	// --default-host (its routes answer every other host, so nothing
	// would reach the lookup route). With --caddy-tls their certificates
	// come on demand (caddyOptions).
	if c.responder != "" && c.defaultHost() == "" {
		l.Hosts = c.responder
	}
	return l
}

// looksUpHosts tells whether Caddy may look plain hosts up, as far as
// where things listen goes: its lookups reach dockroute on loopback (the
// host lookup route's addresses are dockroute's and the containers', as
// this host reaches them).
func (c config) looksUpHosts() bool {
	if !c.dnsOn() || c.CaddyDNSAdvertise != "" || !c.CaddyDNSHosts {
		return false
	}
	host, _, err := net.SplitHostPort(c.dnsListen())
	ip, perr := netip.ParseAddr(host)
	return err == nil && perr == nil && ip.IsLoopback()
}

// secretMode is --secret-file-mode (validated).
func (c config) secretMode() fs.FileMode {
	m, _ := strconv.ParseUint(c.SecretFileMode, 8, 32)
	return fs.FileMode(m)
}

// defaultHost is --default-host in canonical form ("" if unset).
func (c config) defaultHost() string {
	h, _ := route.ParseHost(c.DefaultHost) // validated
	return h
}

func (c config) traefikOptions() traefik.Options {
	o := traefik.Options{
		EntryPoints: splitList(c.TraefikEntryPoints), TLS: c.TraefikTLS || c.TraefikCertResolver != "",
		CertResolver: c.TraefikCertResolver, RedirectFrom: splitList(c.TraefikRedirect),
		InsecureUpstream: c.UpstreamInsecure, Middlewares: c.files.Catalog, Auth: c.files.Groups,
		DefaultHost: c.defaultHost(),
	}
	if c.holdAt != nil {
		o.Hold = &traefik.Hold{URL: "http://" + c.holdAt.addr, Token: c.holdAt.token}
	}
	return o
}

// flags declares every setting on fs, bound to c.
func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file with any of these settings (keys are the flag names); reloaded when it changes")
	fs.StringVar(&c.RoutesFile, "routes-file", "", "YAML file of static routes to non-Docker backends; reloaded when it changes")
	fs.StringVar(&c.MiddlewaresFile, "middlewares-file", "", "YAML file of named middleware sets containers choose with the label dockroute.middlewares; reloaded when it changes")
	fs.StringVar(&c.PolicyFile, "policy-file", "", "YAML file of the domains containers may claim, names reserved for no container, and names bound to owners (see Sharing a host); reloaded when it changes")
	fs.StringVar(&c.AuthFile, "auth-file", "", "basic-auth groups ([group] headers over htpasswd -nB lines) containers choose with the label dockroute.auth; reloaded when it changes")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics (Prometheus) and /healthz on this address, e.g. 127.0.0.1:9273")
	fs.BoolVar(&c.Pprof, "pprof", false, "also serve Go's profiler (/debug/pprof/) on --metrics-addr, for the operator's eyes only")
	fs.StringVar(&c.Output, "output", "traefik", "where routes go: traefik (a file-provider directory) or caddy (the admin API)")
	fs.StringVar(&c.TraefikDir, "traefik-dir", "dynamic", "directory Traefik's file provider watches (providers.file.directory)")
	fs.StringVar(&c.TraefikFile, "traefik-file", "dockroute.yml", "file name written in --traefik-dir (must end in .yml or .yaml)")
	fs.StringVar(&c.TraefikEntryPoints, "traefik-entrypoints", "", "Traefik entrypoints of every router, comma-separated (default: all); label dockroute.entrypoints overrides")
	fs.BoolVar(&c.TraefikTLS, "traefik-tls", false, "serve every router over TLS; label dockroute.tls overrides")
	fs.StringVar(&c.TraefikCertResolver, "traefik-certresolver", "", "Traefik certificate resolver for TLS routers (implies --traefik-tls); label dockroute.certresolver overrides")
	fs.StringVar(&c.TraefikRedirect, "traefik-redirect", "", "plain-HTTP entrypoints (e.g. web) on which TLS routes redirect to HTTPS")
	fs.BoolVar(&c.UpstreamInsecure, "upstream-insecure", false, "do not verify the certificates of backends routed over https (dockroute.proto=https); off by default")
	fs.BoolVar(&c.TraefikLabels, "traefik-labels", false, "also route containers by the common subset of Traefik's Docker labels (traefik.enable, routers' Host/PathPrefix rules, entrypoints, tls, middlewares, services' port); for moving the Docker socket out of Traefik")
	fs.StringVar(&c.SecretFileMode, "secret-file-mode", "0600", "permissions of the Traefik file while it holds basic-auth hashes (dockroute.auth): 0600, or 0640 for a Traefik in the file's group")
	fs.IntVar(&c.MaxRoutes, "max-routes-per-container", 100, "the most routes (host and path pairs) one container may ask for; a container asking for more is refused with the reason (0: no limit)")
	fs.StringVar(&c.IPFamily, "ip-family", "auto", "backend address on a container's network: auto (IPv4, else IPv6 on an IPv6-only network), 4 (IPv4 only) or 6 (IPv6 where the container has it, else IPv4)")
	fs.StringVar(&c.DefaultHost, "default-host", "", "requests for hosts no container routes go to this host's routes (as nginx-proxy's DEFAULT_HOST); default: 404")
	settings.Duration(fs, &c.UnavailableGrace, "unavailable-grace", 5*time.Minute, "a host whose containers all stopped answers 503 (not 404) for this long, and keeps its settings (TLS, auth, middlewares) against other containers' claims; 0: at once 404")
	settings.Duration(fs, &c.Hold, "hold", 30*time.Second, "a request for a host whose containers all stopped (a deploy, a restart, a crash) waits in dockroute for a ready container up to this long, then answers 503; 0: 503 at once")
	fs.StringVar(&c.HoldListen, "hold-listen", "127.0.0.1:0", "where dockroute's holding endpoint listens for the proxy (HOST:PORT; port 0: any free one)")
	fs.BoolVar(&c.Sleep, "sleep", false, "stop containers labelled dockroute.idle=DURATION after that long without requests, and start them on the next one (needs write access to the Docker API: POST /containers/{id}/start and /stop)")
	fs.StringVar(&c.HoldAdvertise, "hold-advertise", "", "the address the proxy dials for the holding endpoint, when not --hold-listen's (a proxy in another container: dockroute:9494)")
	fs.StringVar(&c.TraefikAPI, "traefik-api", "", "Traefik's API entrypoint (e.g. http://127.0.0.1:8080, with api: {} in Traefik's static config): read back which routers Traefik runs after each publish, and report delivery in /metrics, /healthz and explain")
	fs.StringVar(&c.CaddyAdmin, "caddy-admin", "http://127.0.0.1:2019", "Caddy admin API address: http://HOST:PORT or unix//PATH")
	fs.StringVar(&c.CaddyServer, "caddy-server", "dockroute", "name and @id of the Caddy server dockroute owns")
	fs.StringVar(&c.CaddyListen, "caddy-listen", ":80", "listen addresses of dockroute's Caddy server, comma-separated")
	fs.BoolVar(&c.CaddyTLS, "caddy-tls", false, "keep Caddy's automatic HTTPS on for routed hosts (use with --caddy-listen :443)")
	fs.BoolVar(&c.CaddyNoRedirect, "caddy-no-redirect", false, "with --caddy-tls, do not redirect HTTP to HTTPS")
	fs.StringVar(&c.CaddyTLSIssuer, "caddy-tls-issuer", "acme", "with --caddy-tls, who issues the certificates Caddy gets on demand for looked-up hosts: acme (the issuers of Caddy's own catch-all automation policy, else Caddy's defaults, Let's Encrypt and ZeroSSL) or internal (Caddy's local CA: for .localhost names and tests)")
	fs.StringVar(&c.CaddyTLSAllow, "caddy-tls-allow", "", "with --caddy-tls, names (a.example.com) and wildcards (*.example.com) Caddy may get certificates for on demand although no container routes them, comma-separated; routed hosts and the names of Caddy's own config need not be listed")
	settings.Duration(fs, &c.CaddyCheck, "caddy-check", 5*time.Second, "how often to check that Caddy still has dockroute's server, restoring it if lost (up to 6 times less often while nothing changes)")
	fs.StringVar(&c.CaddyDNS, "caddy-dns", dnsAuto, "answer Caddy's upstream lookups on this address (PORT on loopback, or HOST:PORT; UDP and TCP), so hosts and replicas coming and going change no Caddy config. auto: on a free loopback port when --caddy-admin is on loopback (Caddy runs on this host); off: never")
	fs.BoolVar(&c.CaddyDNSHosts, "caddy-dns-hosts", true, "with --caddy-dns on loopback: serve plain hosts (a host and a port, no other settings) through one route that looks the request's host up, so that such hosts coming and going change no Caddy config; false: write every host into it")
	fs.StringVar(&c.CaddyDNSAdvertise, "caddy-dns-advertise", "", "the address Caddy reaches --caddy-dns at, when not the same (e.g. dockroute:1053 beside Caddy in Compose)")
	settings.Duration(fs, &c.CaddyDNSRefresh, "caddy-dns-refresh", 250*time.Millisecond, "with --caddy-dns, how long Caddy uses an answer before asking again: the longest a stopping replica may still get new requests")
	fs.StringVar(&c.DockerHost, "docker-host", "", "Docker engines to follow, comma-separated URLs (unix:///PATH, tcp://HOST:PORT) with optional ?tls=DIR&addr=network|published&advertise=ADDR&name=NAME; default: DOCKER_HOST or the local socket")
	fs.StringVar(&c.Swarm, "swarm", "auto", "follow swarm services: auto (on an engine that is a swarm manager), on (require it), off")
	settings.Duration(fs, &c.EngineGrace, "engine-grace", time.Minute, "with several engines, how long an engine that went away keeps its routes before they are dropped")
	fs.StringVar(&c.Filter, "filter", "", "consider only containers matching these Docker filters, comma-separated: label=KEY, label=KEY=VALUE, network=NAME (as docker ps --filter)")
	fs.StringVar(&c.Network, "network", "", "Docker network whose container addresses are routed; needed when containers are on several networks. auto: the network of dockroute's own container (which must be on one), considering only containers on it")
	fs.StringVar(&c.Health, "health", "require", "require: route containers with a healthcheck only while healthy; ignore: route them whatever it says")
	settings.Duration(fs, &c.Resync, "resync", 30*time.Second, "interval of the full resync that repairs anything a lost event missed")
	settings.Duration(fs, &c.Coalesce.Quiet, "coalesce-quiet", 100*time.Millisecond, "publish once events have paused this long (0: at once; changes during a publish go in the next)")
	settings.Duration(fs, &c.Coalesce.MaxDelay, "coalesce-max", 500*time.Millisecond, "publish at most this long after the first event of a burst")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	// A failed publish (a full disk, Caddy restarting) is retried with backoff,
	// but never more than a second apart, so recovery is quick.
	c.Coalesce.Retry, c.Coalesce.MaxRetry = 250*time.Millisecond, time.Second
}

// parseConfig reads the command line, then fills every setting not given
// there from its DOCKROUTE_* variable, then from the --config file:
// flags > environment > file > defaults.
func parseConfig(cmd string, args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("dockroute "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are said in one line below, help on -h
	c.flags(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printUsage(stderr, cmd, fs)
		return c, errHelp
	} else if err != nil {
		fmt.Fprintln(stderr, settings.FlagError("dockroute "+cmd, fs, err))
		return c, errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	err := settings.ApplyEnv(fs, envPrefix, os.LookupEnv, given)
	for _, w := range settings.MisspeltEnv(fs, envPrefix, os.Environ()) {
		fmt.Fprintln(stderr, "dockroute: warning:", w)
	}
	c.fileLines = map[string]int{}
	if err == nil && c.ConfigFile != "" {
		err = settings.ApplyFile(fs, c.ConfigFile, given, c.fileLines)
	}
	c.Args = fs.Args()
	c.values = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { c.values[f.Name] = f.Value.String() })
	if err == nil {
		err = c.where(c.validate(cmd))
	}
	if err != nil {
		fmt.Fprintln(stderr, "dockroute:", err)
		return c, errUsage
	}
	return c, nil
}

// where places an invalid setting at the config file line that set it,
// if the file set it.
func (c config) where(err error) error { return settings.Where(err, c.ConfigFile, c.fileLines) }

// validateDNS checks --caddy-dns and the settings beside it.
func (c config) validateDNS() error {
	if !c.dnsOn() {
		return nil
	}
	if c.Output != "caddy" {
		return settings.Invalid("caddy-dns", "--caddy-dns %q: only --output caddy looks upstreams up", c.CaddyDNS)
	}
	host, port, err := net.SplitHostPort(c.dnsListen())
	if err != nil || port == "" || port == "0" && c.CaddyDNS != dnsAuto {
		return settings.Invalid("caddy-dns", "--caddy-dns %q: want PORT (on loopback) or HOST:PORT, e.g. 1053 or 10.0.0.2:1053", c.CaddyDNS)
	}
	if ip, err := netip.ParseAddr(host); c.CaddyDNSAdvertise == "" && err == nil && ip.IsUnspecified() {
		return settings.Invalid("caddy-dns", "--caddy-dns %q listens on every address: say which one Caddy reaches with --caddy-dns-advertise", c.CaddyDNS)
	}
	if c.CaddyDNSAdvertise != "" {
		if _, port, err := net.SplitHostPort(c.CaddyDNSAdvertise); err != nil || port == "" {
			return settings.Invalid("caddy-dns-advertise", "--caddy-dns-advertise %q: want HOST:PORT", c.CaddyDNSAdvertise)
		}
	}
	if c.CaddyDNSRefresh <= 0 {
		return settings.Invalid("caddy-dns-refresh", "--caddy-dns-refresh %v: must be positive", c.CaddyDNSRefresh)
	}
	return nil
}

// validate checks the settings as a whole, as they will run. A reload
// validates the merged result (what the file changes live on top of what
// keeps running), not only the new file.
func (c config) validate(cmd string) error {
	if cmd != "explain" && len(c.Args) > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args, " "))
	}
	if m, err := strconv.ParseUint(c.SecretFileMode, 8, 32); err != nil || m&^0o660 != 0 || m&0o600 != 0o600 {
		return settings.Invalid("secret-file-mode", "--secret-file-mode %q: want an octal mode the owner reads and writes and nobody else but the group reads, such as 0600 or 0640", c.SecretFileMode)
	}
	if c.MaxRoutes < 0 {
		return settings.Invalid("max-routes-per-container", "--max-routes-per-container %d: want 0 (no limit) or more", c.MaxRoutes)
	}
	if c.Pprof && c.MetricsAddr == "" {
		return settings.Invalid("pprof", "--pprof serves the profiler on --metrics-addr: set that too (an address only the operator reaches, e.g. 127.0.0.1:9273)")
	}
	if c.Output != "traefik" && c.Output != "caddy" {
		return settings.Invalid("output", "--output %q: want traefik or caddy", c.Output)
	}
	if c.Output == "caddy" {
		switch {
		case c.CaddyServer == "" || strings.ContainsAny(c.CaddyServer, "/ "):
			return settings.Invalid("caddy-server", "--caddy-server %q: --output caddy needs a server name without slashes or spaces", c.CaddyServer)
		case len(splitList(c.CaddyListen)) == 0:
			return settings.Invalid("caddy-listen", "--caddy-listen %q: --output caddy needs at least one listen address", c.CaddyListen)
		case c.CaddyCheck <= 0:
			return settings.Invalid("caddy-check", "--caddy-check %v: must be positive", c.CaddyCheck)
		}
	}
	if err := c.validateDNS(); err != nil {
		return err
	}
	if c.CaddyTLSIssuer != "acme" && c.CaddyTLSIssuer != caddy.IssuerInternal {
		return settings.Invalid("caddy-tls-issuer", "--caddy-tls-issuer %q: want acme or internal", c.CaddyTLSIssuer)
	}
	for _, n := range splitList(c.CaddyTLSAllow) {
		if _, err := route.ParseHost(n); err != nil {
			return settings.Invalid("caddy-tls-allow", "--caddy-tls-allow: %v", err)
		}
	}
	for _, h := range splitList(c.DockerHost) {
		if _, err := engine.ParseEndpoint(h); err != nil {
			return settings.Invalid("docker-host", "--docker-host: %v", err)
		}
	}
	if c.Swarm != "auto" && c.Swarm != "on" && c.Swarm != "off" {
		return settings.Invalid("swarm", "--swarm %q: want auto, on or off", c.Swarm)
	}
	if c.EngineGrace <= 0 {
		return settings.Invalid("engine-grace", "--engine-grace %v: must be positive", c.EngineGrace)
	}
	if _, err := docker.ParseScope(splitList(c.Filter)); err != nil {
		return settings.Invalid("filter", "--filter: %v", err)
	}
	if c.Health != "require" && c.Health != "ignore" {
		return settings.Invalid("health", "--health %q: want require or ignore", c.Health)
	}
	for key, list := range map[string]string{"traefik-entrypoints": c.TraefikEntryPoints, "traefik-redirect": c.TraefikRedirect, "traefik-certresolver": c.TraefikCertResolver} {
		for _, n := range splitList(list) {
			if _, err := route.ParseName(n); err != nil {
				return settings.Invalid(key, "--%s: traefik entrypoint or resolver: %v", key, err)
			}
		}
	}
	if c.TraefikAPI != "" {
		if _, err := traefik.NewAPI(c.TraefikAPI); err != nil {
			return settings.Invalid("traefik-api", "--traefik-api: %v", err)
		}
	}
	if !strings.HasSuffix(c.TraefikFile, ".yml") && !strings.HasSuffix(c.TraefikFile, ".yaml") {
		return settings.Invalid("traefik-file", "--traefik-file %q must end in .yml or .yaml, or Traefik will not read it", c.TraefikFile)
	}
	if strings.ContainsRune(c.TraefikFile, os.PathSeparator) {
		return settings.Invalid("traefik-file", "--traefik-file %q must be a plain file name; set the directory with --traefik-dir", c.TraefikFile)
	}
	if c.DefaultHost != "" {
		h, err := route.ParseHost(c.DefaultHost)
		if err == nil && route.IsWildcard(h) {
			err = fmt.Errorf("a wildcard cannot be the default host")
		}
		if err != nil {
			return settings.Invalid("default-host", "--default-host: %v", err)
		}
	}
	if c.IPFamily != "auto" && c.IPFamily != "4" && c.IPFamily != "6" {
		return settings.Invalid("ip-family", "--ip-family %q: want auto, 4 or 6", c.IPFamily)
	}
	if c.Hold < 0 {
		return settings.Invalid("hold", "--hold %v: must not be negative", c.Hold)
	}
	if c.Sleep && !c.holds() {
		return settings.Invalid("sleep", "--sleep needs the holding endpoint, which counts the requests of sleeping containers and holds them while one starts: --hold and --unavailable-grace above 0")
	}
	if _, _, err := net.SplitHostPort(c.HoldListen); err != nil && c.holds() {
		return settings.Invalid("hold-listen", "--hold-listen %q: want HOST:PORT, e.g. 127.0.0.1:9494 or :9494", c.HoldListen)
	}
	if _, _, err := net.SplitHostPort(c.HoldAdvertise); err != nil && c.HoldAdvertise != "" {
		return settings.Invalid("hold-advertise", "--hold-advertise %q: want HOST:PORT, e.g. dockroute:9494", c.HoldAdvertise)
	}
	if c.UnavailableGrace < 0 {
		return settings.Invalid("unavailable-grace", "--unavailable-grace %v: must not be negative", c.UnavailableGrace)
	}
	if c.Resync <= 0 {
		return settings.Invalid("resync", "--resync %v: must be positive", c.Resync)
	}
	if c.Coalesce.Quiet < 0 {
		return settings.Invalid("coalesce-quiet", "--coalesce-quiet %v: must not be negative", c.Coalesce.Quiet)
	}
	if c.Coalesce.MaxDelay < c.Coalesce.Quiet {
		return settings.Invalid("coalesce-max", "--coalesce-max %v must be at least --coalesce-quiet %v", c.Coalesce.MaxDelay, c.Coalesce.Quiet)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return settings.Invalid("log-format", "--log-format %q: want text or json", c.LogFormat)
	}
	return nil
}

// withLive returns prev with the live settings (liveKeys) taken from next:
// what a config reload applies.
func withLive(prev, next config) config {
	var c config
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	c.flags(fs)
	c.values = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		v := prev.values[f.Name]
		if liveKeys[f.Name] {
			v = next.values[f.Name]
		}
		// Both values were accepted by this same flag before.
		if err := fs.Set(f.Name, v); err != nil {
			panic(fmt.Sprintf("re-setting %s=%q: %v", f.Name, v, err))
		}
		c.values[f.Name] = v
	})
	c.Args = prev.Args
	c.fileLines = next.fileLines
	c.files = prev.files
	return c
}

// changedKeys lists, sorted, the settings whose values differ.
func changedKeys(a, b config) []string {
	var out []string
	for k, v := range a.values {
		if b.values[k] != v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (c config) logger(w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: readableAttr}
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

// maxLogValue bounds a value in a log line: labels and env values are a
// tenant's to choose, and a 1 MB label made 1 MB log lines.
const maxLogValue = 512

// readableAttr writes durations with their unit
// (JSON would write nanoseconds), errors as their text, and cuts long
// values, saying how long they were.
func readableAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value
	switch v.Kind() {
	case slog.KindDuration:
		return slog.String(a.Key, v.Duration().String())
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			v = slog.StringValue(err.Error())
		}
	}
	if v.Kind() == slog.KindString && len(v.String()) > maxLogValue {
		s := v.String()
		return slog.String(a.Key, fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(s[:maxLogValue], ""), len(s)))
	}
	if v.Kind() != a.Value.Kind() {
		return slog.Attr{Key: a.Key, Value: v}
	}
	return a
}

// withOwnNetwork resolves --network auto to network, the one network of
// dockroute's own container, and scopes dockroute to that network.
func (c config) withOwnNetwork(network string) config {
	if c.Network != docker.AutoNetwork {
		return c
	}
	c.Network, c.autoNetwork = network, network
	return c
}

// withHold is c with the running holding endpoint's target, when c still
// holds requests.
func (c config) withHold(at *holdTarget) config {
	if c.holds() {
		c.holdAt = at
	}
	return c
}

// withDNS is c with the address the running lookup server bound.
func (c config) withDNS(addr string) config {
	if c.dnsOn() {
		c.dnsAt = addr
	}
	return c
}

// withResponder is c with the running Responder's address, when c still
// looks hosts up.
func (c config) withResponder(addr, token string) config {
	if c.looksUpHosts() {
		c.responder, c.askToken = addr, token
	}
	return c
}

// resolveNetwork asks the engine which network --network auto means.
func resolveNetwork(ctx context.Context, c config, e engine.Engine) (config, string, error) {
	if c.Network != docker.AutoNetwork {
		return c, "", nil
	}
	n, err := docker.OwnNetwork(ctx, e)
	if err != nil {
		return c, "", err
	}
	return c.withOwnNetwork(n), n, nil
}

// endpoints are the engines to follow: --docker-host's, or the one the
// DOCKER_* environment names.
func (c config) endpoints() []engine.Endpoint {
	var eps []engine.Endpoint
	for _, h := range splitList(c.DockerHost) {
		ep, _ := engine.ParseEndpoint(h) // validated
		eps = append(eps, ep)
	}
	if len(eps) == 0 {
		eps = []engine.Endpoint{engine.DefaultEndpoint()}
	}
	return eps
}
