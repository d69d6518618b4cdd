package contract

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/policy"
	"github.com/dockroute/dockroute/provider/route"
)

// AddressMode says how the proxy reaches an engine's containers.
type AddressMode string

const (
	// AddrNetwork routes a container at its IP on a Docker network the
	// proxy shares: the local engine, or overlay/macvlan/routed networks.
	AddrNetwork AddressMode = "network"
	// AddrPublished routes a container at the host port it publishes
	// (-p), on the engine's address: the way to reach another machine's
	// containers when their networks are the machine's own.
	AddrPublished AddressMode = "published"
)

// TaskLabel marks a container that is a swarm task: it is routed through
// its service, never as a container of its own.
const TaskLabel = "com.docker.swarm.task.id"

// Options are the operator's choices that affect every container's verdict.
type Options struct {
	// Network names the Docker network whose address is routed. Empty means
	// "the container's only network"; a container on several is refused.
	// A container's dockroute.network label overrides it.
	Network string
	// IgnoreHealth routes containers whatever their healthcheck says
	// (--health=ignore). By default a container with a healthcheck is
	// routed only while healthy.
	IgnoreHealth bool
	// Address is how the proxy reaches this engine's containers: at their
	// IP on a network (the default) or at their published ports on
	// Advertise, this engine's address as the proxy reaches it.
	Address   AddressMode
	Advertise string
	// Engine names the engine in reasons.
	Engine string
	// SkipTasks ignores containers that are swarm tasks: their services
	// are followed, and routed, instead.
	SkipTasks bool
	// Middleware tells why a route for host may not run through the
	// operator's middleware set name (unknown, or not defined for the
	// output), and Auth why it may not use the basic-auth group; nil
	// allows all (tests). The daemon sets both from its files.
	Middleware func(name, host string) error
	Auth       func(group string) error
	// NoTCP refuses TLS passthrough routes (dockroute.tcp): the output
	// cannot route them (Caddy).
	NoTCP bool
	// IPFamily picks the backend address on a network: "auto" (or "")
	// its IPv4 address, else its IPv6 one; "4" only IPv4; "6" only IPv6.
	IPFamily string
	// TraefikLabels reads Traefik's Docker-provider labels of containers
	// that set none of dockroute's own (--traefik-labels).
	TraefikLabels bool
	// MaxRoutes is the most routes one container may ask for
	// (--max-routes-per-container); 0: no limit. One container's 5,000
	// hosts grew Caddy's config to 1.85 MB and made every later push of
	// anyone's change take 8-15 s.
	MaxRoutes int
	// Admit tells why a container may not claim host+path, as a code and
	// a reason ("" when it may): the operator's reserved names and policy.
	// nil admits every claim.
	Admit func(host, path string, who policy.Who) (code Code, reason string)
	// Hold is how long a host keeps the settings it was served with
	// after its last container went (--unavailable-grace): a container
	// asking for other settings is refused until then (see settleHost).
	Hold time.Duration
	// Sleep lets containers ask to be put to sleep when idle
	// (dockroute.idle; --sleep). Off, the label is noted and ignored.
	Sleep bool
}

// sleepFor is how long the container may be idle before it is put to
// sleep (0: never), noting in v why a dockroute.idle it set is ignored.
func sleepFor(spec Spec, opt Options, v *Verdict) time.Duration {
	switch {
	case spec.Idle == 0:
		return 0
	case !opt.Sleep:
		v.Notes = append(v.Notes, fmt.Sprintf("%s=%v is ignored: this dockroute does not stop and start containers (run it with --sleep)", setIdle.label, spec.Idle))
		return 0
	case slices.ContainsFunc(spec.Targets, func(t Target) bool { return t.TCP }):
		v.Notes = append(v.Notes, setIdle.label+" is ignored: the container has a TLS passthrough route (dockroute.tcp), whose connections dockroute does not see, so it is never put to sleep")
		return 0
	}
	return spec.Idle
}

// reservedHost says why a container may not claim one of its targets'
// hosts ("" when it may): a bare top-level name ("com", "localhost") or a
// wildcard over one ("*.test") would take every name under it, or a name
// no tenant owns, from whoever else routes there.
func reservedHost(ts []Target) string {
	for _, t := range ts {
		name := strings.TrimPrefix(t.Host, "*.")
		if !strings.Contains(name, ".") {
			return fmt.Sprintf("%s is reserved: a container may not claim a top-level name, or a wildcard over one; route a name under a domain, such as app.%s.example", t.Host, name)
		}
	}
	return ""
}

// MaxSettingLen bounds the value of any label or environment variable
// dockroute reads for routing: 16 KiB holds a hundred long host names; a
// larger value is refused before it is parsed (or logged).
const MaxSettingLen = 16 << 10

// oversized names a routing setting of c whose value is over MaxSettingLen,
// with its size ("" when none is).
func oversized(c Container) (name string, size int) {
	for k, v := range c.Labels {
		if len(v) > MaxSettingLen && (strings.HasPrefix(k, "dockroute.") || strings.HasPrefix(k, "traefik.")) {
			return "label " + k, len(v)
		}
	}
	for _, e := range c.Env {
		k, v, _ := strings.Cut(e, "=")
		if len(v) > MaxSettingLen && routingEnv[k] {
			return k, len(v)
		}
	}
	return "", 0
}

// routingEnv are the environment variables dockroute reads.
var routingEnv = func() map[string]bool {
	m := map[string]bool{}
	for _, st := range []setting{setHost, setPort, setPath, setStrip, setProto} {
		for _, e := range st.envs {
			m[e] = true
		}
	}
	return m
}()

// ParseRequest reads what a container asks for: dockroute's own settings,
// else, when the operator allows it, Traefik's labels.
func ParseRequest(env []string, labels map[string]string, opt Options) (Spec, bool, error) {
	spec, optedIn, err := ParseSpec(env, labels)
	if optedIn || !opt.TraefikLabels {
		return spec, optedIn, err
	}
	if _, off := labels[setEnable.label]; off {
		return spec, optedIn, err // dockroute.enable=false wins
	}
	return ParseTraefikLabels(labels)
}

// Verdict is the decision for one container: backends to route, or the
// reason it is not routed.
type Verdict struct {
	ID, Name string
	// Engine names the engine the container runs on, when dockroute
	// follows several ("" otherwise).
	Engine string
	// Service is true for a swarm service's verdict.
	Service bool
	// Started is when the container started running (a service: when it
	// was created): the order of claims on a host no one holds.
	Started  time.Time
	OptedIn  bool
	Backends []route.Backend // nil when not routed
	// Conflicts are routes the container asked for and may not have,
	// because an earlier container claimed the same host with other
	// settings (see ResolveClaims).
	Conflicts []Conflict
	Reason    string // why not routed, in words a user can act on
	// Code names the reason in a word (see Codes).
	Code Code
	// Lifecycle is true when the reason is the container's state (stopped,
	// paused, starting up): routine, not a mistake to fix.
	Lifecycle bool
	Notes     []string
	// Info says how a choice was made that the container did not spell
	// out (which port was routed and why); explain shows it, logs do not
	// warn about it.
	Info []string
}

// Routed tells whether the verdict produces routes.
func (v Verdict) Routed() bool { return len(v.Backends) > 0 }

// Equal tells whether two verdicts say the same.
func (v Verdict) Equal(o Verdict) bool {
	return v.ID == o.ID && v.Name == o.Name && v.Started.Equal(o.Started) && v.OptedIn == o.OptedIn && v.Reason == o.Reason && v.Code == o.Code &&
		v.Lifecycle == o.Lifecycle && slices.Equal(v.Notes, o.Notes) && slices.Equal(v.Info, o.Info) && slices.Equal(v.Backends, o.Backends)
}

// Decide is the whole routing contract for one container, as a pure
// function. Checks run in the order a user would fix them: opt-in, the
// request itself, the container's state, then how to reach it.
func Decide(c Container, opt Options) Verdict {
	v := Verdict{ID: c.ID, Name: c.Name, Started: cmp.Or(c.Started, c.Created)}
	if opt.SkipTasks && c.Labels[TaskLabel] != "" {
		v.Code, v.Reason = CodeSwarmTask, "a swarm task: routed through its service"
		return v
	}
	if name, size := oversized(c); name != "" {
		v.OptedIn = true
		v.Code, v.Reason = CodeSettingTooLarge, fmt.Sprintf("%s is %d bytes long, more than dockroute reads (%d): split the routes over several containers", name, size, MaxSettingLen)
		return v
	}
	spec, optedIn, err := ParseRequest(c.Env, c.Labels, opt)
	v.OptedIn, v.Notes = optedIn, spec.Notes
	if !optedIn {
		v.Code, v.Reason = CodeNotOptedIn, "not opted in: set the label dockroute.host or the env VIRTUALHOST (or VIRTUAL_HOST) to the host names to route"
		if opt.TraefikLabels {
			v.Reason += ", or (--traefik-labels) traefik.enable=true with a router rule"
		}
		if _, ok := c.Labels[setEnable.label]; ok {
			v.Code, v.Reason = CodeDisabled, "disabled by the label dockroute.enable=false"
		}
		return v
	}
	if err != nil {
		v.Code, v.Reason = CodeInvalidRequest, "invalid request: "+err.Error()
		return v
	}
	who := policy.Who{Labels: c.Labels}
	for _, n := range c.Networks {
		who.Networks = append(who.Networks, n.Network)
	}
	if code, reason := claimLimits(spec.Targets, who, opt); reason != "" {
		v.Code, v.Reason = code, reason
		return v
	}
	if opt.NoTCP && slices.ContainsFunc(spec.Targets, func(t Target) bool { return t.TCP }) {
		v.Code, v.Reason = CodeTCPUnsupported, setTCP.label+": TLS passthrough routes need Traefik (--output traefik); stock Caddy has no layer-4 proxy"
		return v
	}
	if code, reason := operatorChoices(spec, opt); reason != "" {
		v.Code, v.Reason = code, reason
		return v
	}
	if code, reason := stateReason(c, opt); reason != "" {
		v.Code, v.Reason, v.Lifecycle = code, reason, true
		return v
	}
	if spec.Network != "" {
		opt.Network = spec.Network
	}
	targets, info := choosePorts(spec.Targets, c.Exposed)
	v.Info = info
	servers, code, reason := reach(c, opt, targets)
	if reason != "" {
		v.Code, v.Reason = code, reason
		return v
	}
	idle := sleepFor(spec, opt, &v)
	for i, t := range targets {
		b := route.Backend{
			Name: c.Name, Host: t.Host, Path: t.Path, Strip: t.Strip, Edge: spec.Edge, Proto: spec.Proto,
			Middlewares: spec.Middlewares, Auth: spec.Auth, Idle: idle, Server: servers[i],
		}
		if t.TCP {
			// The connection stays encrypted: nothing HTTP applies.
			b = route.Backend{Name: c.Name, Host: t.Host, Edge: route.Edge{EntryPoints: spec.Edge.EntryPoints}, TCP: true, Server: servers[i]}
		}
		v.Backends = append(v.Backends, b)
	}
	if opt.Address == AddrPublished {
		v.Info = append(v.Info, fmt.Sprintf("addresses: published ports on %s, where the proxy reaches engine %s (addr=published)", opt.Advertise, cmp.Or(opt.Engine, "local")))
	}
	return v
}

// claimLimits checks what a container or service claims against the
// operator's limit on routes, the names no one may claim, and the
// operator's Admit (reserved names and the policy file).
func claimLimits(ts []Target, who policy.Who, opt Options) (code Code, reason string) {
	if opt.MaxRoutes > 0 && len(ts) > opt.MaxRoutes {
		return CodeTooManyRoutes, fmt.Sprintf("asks for %d routes, more than one container may have (%d, --max-routes-per-container): split them over several containers, or have the operator raise the limit", len(ts), opt.MaxRoutes)
	}
	if reason := reservedHost(ts); reason != "" {
		return CodeReservedHost, reason
	}
	if opt.Admit == nil {
		return "", ""
	}
	who.Engine = opt.Engine
	for _, t := range ts {
		if code, reason := opt.Admit(t.Host, t.Path, who); reason != "" {
			return code, reason
		}
	}
	return "", ""
}

// operatorChoices checks that the middleware sets and the auth group a
// container chose exist in the operator's files.
func operatorChoices(spec Spec, opt Options) (code Code, reason string) {
	if opt.Middleware != nil {
		for _, name := range route.Middlewares(spec.Middlewares) {
			for _, t := range spec.Targets {
				if err := opt.Middleware(name, t.Host); err != nil {
					return CodeUnknownMiddleware, fmt.Sprintf("%s: %v", setMiddlewares.label, err)
				}
			}
		}
	}
	if spec.Auth != "" && opt.Auth != nil {
		if err := opt.Auth(spec.Auth); err != nil {
			return CodeUnknownAuthGroup, fmt.Sprintf("%s: %v", setAuth.label, err)
		}
	}
	return "", ""
}

// reach finds the address the proxy dials for each target, or why there
// is none: the container's IP on its network, or (addr=published) the
// target's published host port on the engine's advertised address.
func reach(c Container, opt Options, targets []Target) (servers []string, code Code, reason string) {
	if opt.Address != AddrPublished {
		addr, code, reason := address(c, opt.Network, opt.IPFamily)
		if reason == "" {
			code, reason = portsReason(targets, c.Exposed)
			if reason != "" && inPod(c) {
				code, reason = podPorts(targets)
			}
		}
		if reason != "" {
			return nil, code, reason
		}
		for _, t := range targets {
			servers = append(servers, netip.AddrPortFrom(addr, t.Port).String())
		}
		return servers, "", ""
	}
	for _, t := range targets {
		hp, ok := c.Published[t.Port]
		if !ok {
			return nil, CodePortNotPublished, fmt.Sprintf("port %d is not published: engine %s's containers are routed at their published ports on %s (addr=published); run the container with -p %d (or -p HOSTPORT:%d)", t.Port, cmp.Or(opt.Engine, "local"), opt.Advertise, t.Port, t.Port)
		}
		servers = append(servers, net.JoinHostPort(opt.Advertise, strconv.Itoa(int(hp))))
	}
	return servers, "", ""
}

func stateReason(c Container, opt Options) (code Code, reason string) {
	switch c.State {
	case "running":
	case "paused":
		return CodePaused, "container is paused; it is routed again on unpause"
	case "":
		return CodeNotRunning, "Docker reported no state for the container"
	default:
		return "not_running", fmt.Sprintf("container is not running (state %q); it is routed once it runs", c.State)
	}
	if c.Stopping {
		return CodeStopping, "container is stopping (Docker sent its stop signal); it was taken out of routing so it can finish its requests"
	}
	if opt.IgnoreHealth {
		return "", ""
	}
	switch c.Health {
	case "starting":
		return CodeHealthStarting, "healthcheck is still starting; the container is routed once it is healthy (or run dockroute with --health=ignore)"
	case "unhealthy":
		return CodeUnhealthy, "healthcheck says unhealthy; the container is routed again once it is healthy (or run dockroute with --health=ignore)"
	}
	return "", ""
}

// address finds the IP the proxy should dial, or why there is none.
func address(c Container, network, family string) (addr netip.Addr, code Code, reason string) {
	switch mode := c.NetworkMode; {
	case mode == "host":
		return addr, CodeHostNetwork, "container uses the host network, so it has no address of its own to route to; run it on a bridge or user-defined network"
	case mode == "none":
		return addr, CodeNoNetwork, "container has networking disabled (--network none)"
	case strings.HasPrefix(mode, "container:") && len(c.Networks) == 0:
		return addr, CodeSharedNetwork, fmt.Sprintf("container shares another container's network (%s) and the engine gives it no address of its own; route that container instead", mode)
	}
	// Sharing a network namespace with an address the engine names (a
	// Podman pod's containers share its infra container's), the container
	// is reached at that address.
	on, code, reason := chooseNetwork(c, network)
	if reason != "" {
		return addr, code, reason
	}
	name := on.Network
	switch family {
	case "4":
		if addr = on.Addr; !addr.Is4() {
			return netip.Addr{}, CodeNoAddress, fmt.Sprintf("container has no IPv4 address on network %q (dockroute runs with --ip-family 4)", name)
		}
	case "6":
		// IPv6 preferred, as nginx-proxy's prefer-IPv6 does: a container
		// without one is reached at its IPv4 address rather than dropped.
		if addr = on.Addr6; !addr.IsValid() {
			addr = on.Addr
		}
		if !addr.IsValid() {
			return addr, CodeNoAddress, fmt.Sprintf("container has no IP address on network %q", name)
		}
	default:
		if addr = on.Addr; !addr.IsValid() {
			return addr, CodeNoAddress, fmt.Sprintf("container has no IP address on network %q", name)
		}
	}
	return addr, "", ""
}

// choosePorts gives every target that asked for no port nginx-proxy's
// port: the container's only exposed TCP port, or else 80 (the seed's
// default). info says which rule chose.
func choosePorts(targets []Target, exposed []string) ([]Target, []string) {
	var tcp []uint16
	for _, e := range exposed {
		if p, ok := strings.CutSuffix(e, "/tcp"); ok {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				tcp = append(tcp, uint16(n))
			}
		}
	}
	out := slices.Clone(targets)
	var info []string
	for i, t := range out {
		if !t.Unset {
			continue
		}
		if len(tcp) == 1 {
			out[i].Port = tcp[0]
			info = append(info, fmt.Sprintf("%s%s: port %d, the only port the container exposes (no PORT, VIRTUAL_PORT or dockroute.port set)", t.Host, t.Path, tcp[0]))
		} else {
			info = append(info, fmt.Sprintf("%s%s: port %d, the default: the container exposes %d ports, so none is chosen for it (set PORT, VIRTUAL_PORT or dockroute.port)", t.Host, t.Path, t.Port, len(tcp)))
		}
	}
	return out, slices.Compact(info)
}

// inPod tells whether c shares another container's network namespace
// and exposes nothing itself: a Podman pod's containers do, the pod's
// infra container holding the ports.
func inPod(c Container) bool {
	return strings.HasPrefix(c.NetworkMode, "container:") && len(c.Exposed) == 0
}

// podPorts checks the targets of a container in a pod, whose ports dockroute
// cannot see: a port it names is taken as said; the default is not.
func podPorts(targets []Target) (code Code, reason string) {
	for _, t := range targets {
		if t.Unset {
			return CodePortNotExposed, "the container shares its pod's network, whose ports dockroute cannot see: set the port it listens on (PORT, dockroute.port, or host:PORT)"
		}
	}
	return "", ""
}

// portsReason checks that every target's port is exposed.
func portsReason(targets []Target, exposed []string) (code Code, reason string) {
	for _, t := range targets {
		if !slices.Contains(exposed, strconv.Itoa(int(t.Port))+"/tcp") {
			return CodePortNotExposed, portReason(t.Port, exposed)
		}
	}
	return "", ""
}

func portReason(port uint16, exposed []string) string {
	fix := fmt.Sprintf("add EXPOSE %d to the image or run with --expose %d, or route an exposed port (PORT, dockroute.port, or host:PORT)", port, port)
	if len(exposed) == 0 {
		return fmt.Sprintf("port %d is not exposed (the container exposes no ports); %s", port, fix)
	}
	return fmt.Sprintf("port %d is not exposed (exposed: %s); %s", port, strings.Join(exposed, ", "), fix)
}

func chooseNetwork(c Container, want string) (on Attachment, code Code, reason string) {
	if want != "" {
		if a, ok := c.Networks.Get(want); ok {
			return a, "", ""
		}
		return on, CodeNetworkMissing, fmt.Sprintf("container is not on network %q (dockroute --network or the label dockroute.network); it is on: %s", want, orNone(c.NetworkNames()))
	}
	switch len(c.Networks) {
	case 0:
		return on, CodeNoNetwork, "container is on no network"
	case 1:
		return c.Networks[0], "", ""
	}
	return on, CodeNetworkAmbiguous, fmt.Sprintf("container is on several networks (%s); start dockroute with --network NAME, or set the label dockroute.network, to choose the one the proxy reaches", c.NetworkNames())
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
