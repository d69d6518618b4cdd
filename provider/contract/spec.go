package contract

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// setting is one thing a container can ask for, as a label and as
// environment variables (first name first; later names are aliases).
type setting struct {
	label string
	envs  []string
}

// The settings. Env names are autodock's (VIRTUALHOST, PORT) with
// nginx-proxy's as aliases, so its users can switch without touching their
// containers. Labels keep routing out of the app's environment and win when
// both are set.
var (
	setHost         = setting{"dockroute.host", []string{"VIRTUALHOST", "VIRTUAL_HOST"}}
	setPort         = setting{"dockroute.port", []string{"PORT", "VIRTUAL_PORT"}}
	setPath         = setting{"dockroute.path", []string{"VIRTUAL_PATH"}}
	setStrip        = setting{"dockroute.strip", []string{"VIRTUAL_PATH_STRIP"}}
	setNetwork      = setting{"dockroute.network", nil}
	setEnable       = setting{"dockroute.enable", nil}
	setEntryPoints  = setting{"dockroute.entrypoints", nil}
	setTLS          = setting{"dockroute.tls", nil}
	setCertResolver = setting{"dockroute.certresolver", nil}
	setLB           = setting{"dockroute.lb", nil}
	setProto        = setting{"dockroute.proto", []string{"VIRTUAL_PROTO"}}
	setMiddlewares  = setting{"dockroute.middlewares", nil}
	setAuth         = setting{"dockroute.auth", nil}
	setTCP          = setting{"dockroute.tcp", nil}
	setIdle         = setting{"dockroute.idle", nil}
)

// MinIdle is the shortest dockroute.idle: idleness is checked every
// second, so a shorter one would say more than dockroute measures.
const MinIdle = time.Second

// DefaultPort is the container port routed when none is given.
const DefaultPort = 80

// Target is one route a container asks for: Host (and Path under it) served
// by the container's Port.
type Target struct {
	Host  string
	Path  string
	Port  uint16
	Strip bool
	// Unset is true when no port was asked for (no ":port" in the item, no
	// PORT, VIRTUAL_PORT or dockroute.port): Decide then routes the
	// container's only exposed port, as nginx-proxy does, or else 80.
	Unset bool
	// TCP marks a TLS passthrough target (dockroute.tcp): connections
	// whose SNI is Host reach Port still encrypted. Path is "".
	TCP bool
}

// Spec is what a container asks for, from its labels and environment.
type Spec struct {
	Targets []Target // sorted by host, then path
	Edge    route.Edge
	Network string // a per-container --network
	// LB is, for a swarm service, "vip" (route its virtual IP, the
	// default) or "tasks" (route each running task).
	LB string
	// Proto is how the proxy speaks to the container: "" (HTTP), "https"
	// or "h2c".
	Proto string
	// Middlewares are the operator's middleware sets chosen, comma-joined
	// in order; Auth the operator's basic-auth group.
	Middlewares string
	Auth        string
	// Idle is dockroute.idle: how long the container may go without a
	// request before it is put to sleep (0: never).
	Idle time.Duration
	// Notes are harmless oddities worth showing in explain (a label
	// overriding an env var, say); they never stop routing.
	Notes []string
}

// source reads settings from labels first, then the environment.
type source struct {
	env    map[string]string
	labels map[string]string
	notes  []string
	// portFrom names the port setting given ("" when none): an item that
	// names a port of its own does not use it, and a note says so.
	portFrom string
}

// notePortOverrides notes every item whose own port differs from the
// port setting, which it therefore does not use (a.test:8080 with
// PORT=9000 routes 8080).
func (s *source) notePortOverrides(ts []Target, def Target) {
	if s.portFrom == "" {
		return
	}
	for _, t := range ts {
		if t.Port != def.Port {
			s.notes = append(s.notes, fmt.Sprintf("%s=%d does not apply to %s%s:%d, which names its own port", s.portFrom, def.Port, t.Host, t.Path, t.Port))
		}
	}
}

// get returns a setting's value and where it came from ("" when unset):
// the label if set, else the first environment name set. Every other value
// set for the same setting that differs is noted as overridden.
func (s *source) get(st setting) (val, from string) {
	if v, ok := s.labels[st.label]; ok {
		val, from = v, "label "+st.label
	}
	for _, name := range st.envs {
		ev, ok := s.env[name]
		switch {
		case !ok:
		case from == "":
			val, from = ev, name
		case ev != val:
			s.notes = append(s.notes, fmt.Sprintf("%s=%q overrides %s=%q", from, val, name, ev))
		}
	}
	return val, from
}

// ParseSpec reads a container's routing request. optedIn is false when no
// host is set (or dockroute.enable=false); err explains why an opted-in
// request cannot be honoured. One bad item refuses the whole request:
// routing a container on some of what it asked for would hide the mistake.
//
// The host setting is a comma-separated list of items (spaces ignored):
//
//	host[/path][:port]
//
// e.g. "example.com, api.example.com:8080, example.com/admin:9000". An item
// without a port uses the port setting (default 80); one without a path
// uses the path setting (default: the whole host).
func ParseSpec(env []string, labels map[string]string) (spec Spec, optedIn bool, err error) {
	src := &source{env: envMap(env), labels: labels}
	defer func() { spec.Notes = src.notes }()

	if v, from := src.get(setEnable); from != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return spec, true, fmt.Errorf("%s: %q is not true or false", from, v)
		}
		if !on {
			return spec, false, nil
		}
	}
	hostVal, hostFrom := src.get(setHost)
	tcpVal, tcpFrom := src.get(setTCP)
	if hostFrom == "" && tcpFrom == "" {
		src.noteForeign(env, labels)
		return spec, false, nil
	}
	def, err := defaults(src)
	if err != nil {
		return spec, true, err
	}
	src.noteForeign(env, labels)
	if hostFrom != "" {
		if spec.Targets, err = parseItems(hostVal, def); err != nil {
			return spec, true, fmt.Errorf("%s: %w", hostFrom, err)
		}
		src.notePortOverrides(spec.Targets, def)
	}
	if tcpFrom != "" {
		tcp, err := parseTCPItems(tcpVal, def)
		if err != nil {
			return spec, true, fmt.Errorf("%s: %w", tcpFrom, err)
		}
		spec.Targets = append(spec.Targets, tcp...)
	}
	if spec.Edge, err = parseEdge(src); err != nil {
		return spec, true, err
	}
	spec.Network, _ = src.get(setNetwork)
	if v, from := src.get(setProto); from != "" {
		p, err := parseProto(v)
		if err != nil {
			return spec, true, fmt.Errorf("%s: %w", from, err)
		}
		spec.Proto = p
	}
	if v, from := src.get(setMiddlewares); from != "" {
		if spec.Middlewares, err = route.ParseMiddlewares(v); err != nil {
			return spec, true, fmt.Errorf("%s: %w", from, err)
		}
	}
	if v, from := src.get(setAuth); from != "" {
		spec.Auth = strings.TrimSpace(v)
		if err := route.ValidName(spec.Auth); err != nil {
			return spec, true, fmt.Errorf("%s: %w", from, err)
		}
	}
	if v, from := src.get(setLB); from != "" {
		if v = strings.TrimSpace(v); v != "vip" && v != "tasks" {
			return spec, true, fmt.Errorf("%s: %q: want vip or tasks", from, v)
		}
		spec.LB = strings.TrimSpace(v)
	}
	if v, from := src.get(setIdle); from != "" {
		if spec.Idle, err = parseIdle(v); err != nil {
			return spec, true, fmt.Errorf("%s: %w", from, err)
		}
	}
	return spec, true, nil
}

// parseIdle reads dockroute.idle: a Go duration ("15m", "1h30m") of at
// least MinIdle.
func parseIdle(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < MinIdle {
		return 0, fmt.Errorf("%q: want a duration of at least %v, such as 15m or 1h", v, MinIdle)
	}
	return d, nil
}

// defaults reads the port, path and strip settings every item starts from.
func defaults(src *source) (Target, error) {
	def := Target{Port: DefaultPort, Unset: true}
	if v, from := src.get(setPort); from != "" {
		def.Unset, src.portFrom = false, from
		p, err := parsePort(v)
		if err != nil {
			return def, fmt.Errorf("%s: %w", from, err)
		}
		def.Port = p
	}
	if v, from := src.get(setPath); from != "" {
		p, err := route.ParsePath(strings.TrimSpace(v))
		if err != nil {
			return def, fmt.Errorf("%s: %w", from, err)
		}
		def.Path = p
	}
	if v, from := src.get(setStrip); from != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return def, fmt.Errorf("%s: %q is not true or false", from, v)
		}
		def.Strip = b
	}
	return def, nil
}

func parseItems(s string, def Target) ([]Target, error) {
	var out []Target
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		t, err := parseItem(item, def)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no host given (value %q)", s)
	}
	slices.SortFunc(out, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Port, b.Port))
	})
	out = slices.Compact(out)
	for i := 1; i < len(out); i++ {
		if out[i].Host == out[i-1].Host && out[i].Path == out[i-1].Path {
			return nil, fmt.Errorf("%s%s is listed twice with different ports (%d and %d)", out[i].Host, out[i].Path, out[i-1].Port, out[i].Port)
		}
	}
	return out, nil
}

// parseTCPItems reads dockroute.tcp: items "host[:port]", each a TLS
// passthrough route for the SNI name host.
func parseTCPItems(s string, def Target) ([]Target, error) {
	def.Path, def.Strip = "", false
	for item := range strings.SplitSeq(s, ",") {
		if strings.Contains(item, "/") {
			return nil, fmt.Errorf("item %q: a TLS passthrough route takes a whole host (the path is encrypted); no path", strings.TrimSpace(item))
		}
	}
	out, err := parseItems(s, def)
	for i := range out {
		out[i].TCP = true
	}
	return out, err
}

// parseItem reads "host[/path][:port]". Paths cannot hold ":", so the last
// colon, if any, starts the port.
func parseItem(item string, def Target) (Target, error) {
	t := def
	if scheme, rest, ok := strings.Cut(item, "://"); ok {
		// A URL, as nginx-proxy users sometimes write: without this, its
		// colon read as a port ("//a.test" is not a port number).
		return t, fmt.Errorf("item %q is a URL: write the host (and path, and port) alone, as %s; how the proxy talks to the container is dockroute.proto (http, https, h2c), not the %s scheme", item, strings.TrimSuffix(rest, "/"), scheme)
	}
	if isIPv6Literal(item) {
		return t, fmt.Errorf("%q is an IPv6 address, not a host name: a route for it would receive every request sent to the proxy by that address; route a name", item)
	}
	if i := strings.LastIndexByte(item, ':'); i >= 0 {
		p, err := parsePort(item[i+1:])
		if err != nil {
			return t, fmt.Errorf("item %q: %w", item, err)
		}
		t.Port, t.Unset, item = p, false, item[:i]
	}
	host, path, hasPath := strings.Cut(item, "/")
	h, err := route.ParseHost(host)
	if err != nil {
		return t, err
	}
	t.Host = h
	if hasPath {
		if t.Path, err = route.ParsePath("/" + path); err != nil {
			return t, err
		}
	}
	return t, nil
}

// parseProto reads an upstream protocol: http, https, h2c, and
// nginx-proxy's names grpc (gRPC in cleartext: h2c) and grpcs (gRPC over
// TLS: https, where HTTP/2 is negotiated).
func parseProto(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "http":
		return "", nil
	case "https", "grpcs":
		return "https", nil
	case "h2c", "grpc":
		return "h2c", nil
	}
	return "", fmt.Errorf("%q: want http, https or h2c (nginx-proxy's grpc and grpcs are h2c and https)", v)
}

// isIPv6Literal tells whether an item is, or starts with, an IPv6 address
// ("[::1]:8080", "fd00::1"): host names hold no colons, and an item holds
// at most one (before its port).
func isIPv6Literal(item string) bool {
	host, _, _ := strings.Cut(item, "/")
	if strings.HasPrefix(host, "[") {
		return true
	}
	if strings.Count(host, ":") < 2 {
		return false
	}
	_, err := netip.ParseAddr(host)
	if err != nil {
		i := strings.LastIndexByte(host, ':')
		_, err = netip.ParseAddr(host[:i])
	}
	return err == nil
}

func parseEdge(src *source) (route.Edge, error) {
	var e route.Edge
	if v, from := src.get(setEntryPoints); from != "" {
		eps, err := entryPointList(v)
		if err != nil {
			return e, fmt.Errorf("%s: %w", from, err)
		}
		e.EntryPoints = eps
	}
	if v, from := src.get(setTLS); from != "" {
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return e, fmt.Errorf("%s: %q is not true or false", from, v)
		}
		e.TLS = route.TLSOff
		if on {
			e.TLS = route.TLSOn
		}
	}
	if v, from := src.get(setCertResolver); from != "" {
		name, err := route.ParseName(strings.TrimSpace(v))
		if err != nil {
			return e, fmt.Errorf("%s: %w", from, err)
		}
		if e.TLS == route.TLSOff {
			return e, fmt.Errorf("%s is set but dockroute.tls=false; a certificate resolver needs TLS", from)
		}
		e.CertResolver, e.TLS = name, route.TLSOn
	}
	return e, nil
}

// foreignEnv are other tools' settings dockroute recognizes but does not
// act on, with what to use instead: silence would leave a migrant's
// setting quietly without effect.
var foreignEnv = map[string]string{
	"VIRTUAL_DEST":      "VIRTUAL_DEST: dockroute.strip=true (with VIRTUAL_PATH or dockroute.path) strips a prefix; other destinations are not supported",
	"LETSENCRYPT_HOST":  "LETSENCRYPT_HOST: the proxy gets certificates: --traefik-certresolver or the label dockroute.certresolver for Traefik, --caddy-tls for Caddy",
	"LETSENCRYPT_EMAIL": "LETSENCRYPT_EMAIL: the ACME account is the proxy's (Traefik's certificatesResolvers, Caddy's email)",
	"HTTPS_METHOD":      "HTTPS_METHOD: redirects are --traefik-redirect (and the label dockroute.tls) for Traefik, --caddy-no-redirect for Caddy",
}

// noteForeign adds one note naming every setting of nginx-proxy, Traefik's
// Docker provider or caddy-docker-proxy the container carries, none of
// which dockroute reads, and what to use instead.
func (s *source) noteForeign(env []string, labels map[string]string) {
	var found []string
	for _, name := range slices.Sorted(maps.Keys(envMap(env))) {
		if hint, ok := foreignEnv[name]; ok {
			found = append(found, hint)
		}
	}
	var traefikLabels, caddyLabels bool
	for k := range labels {
		traefikLabels = traefikLabels || strings.HasPrefix(k, "traefik.")
		caddyLabels = caddyLabels || k == "caddy" || strings.HasPrefix(k, "caddy.") || strings.HasPrefix(k, "caddy_")
	}
	if traefikLabels {
		found = append(found, "traefik.* labels: dockroute reads Traefik's Docker labels only with --traefik-labels, and only when dockroute.host and VIRTUALHOST are unset; set dockroute.host (and dockroute.port, dockroute.tls, ...)")
	}
	if caddyLabels {
		found = append(found, "caddy labels: dockroute does not read caddy-docker-proxy's labels; set dockroute.host (and dockroute.port, ...)")
	}
	if len(found) > 0 {
		s.notes = append(s.notes, "settings dockroute does not act on: "+strings.Join(found, "; "))
	}
}

// envMap keeps the last value of each key, as a process's getenv would.
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(p), nil
}
