package contract

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockroute/dockroute/provider/policy"
	"github.com/dockroute/dockroute/provider/route"
)

// Service is the part of a swarm service that routing depends on, with
// its running tasks, reduced to plain data so that DecideService is pure.
type Service struct {
	ID, Name string
	Created  time.Time
	// Env and Labels are the service's: the service spec's labels (not
	// its containers') and its containers' environment.
	Env    []string
	Labels map[string]string
	// VIPs maps each network of the service to its virtual IP there.
	VIPs map[string]netip.Addr
	// Published maps target ports to the ports the swarm publishes them
	// on (the routing mesh).
	Published map[uint16]uint16
	// Tasks are the tasks that run and are meant to (not those shutting
	// down on a drained node or in a rolling update).
	Tasks []Task
}

// Task is one running task of a service.
type Task struct {
	ID string
	// Addrs maps each network of the task to its address there.
	Addrs map[string]netip.Addr
}

// DecideService is the routing contract for a swarm service: the same
// labels and environment as a container's, read from the service spec,
// routed at the service's virtual IP on the chosen network (one server;
// the swarm balances), at each running task there (dockroute.lb=tasks),
// or, on an engine routed by published ports, at the port the routing
// mesh publishes on the engine's address.
func DecideService(s Service, opt Options) Verdict {
	v := Verdict{ID: s.ID, Name: s.Name, Started: s.Created, Service: true}
	spec, optedIn, err := ParseRequest(s.Env, s.Labels, opt)
	v.OptedIn, v.Notes = optedIn, spec.Notes
	if spec.Idle > 0 {
		v.Notes = append(v.Notes, setIdle.label+" is ignored: a swarm service is never put to sleep (scale it to 0 instead)")
	}
	switch {
	case !optedIn:
		v.Code, v.Reason = CodeNotOptedIn, "not opted in: set the service label dockroute.host (docker service create --label dockroute.host=...) or the env VIRTUALHOST"
		return v
	case err != nil:
		v.Code, v.Reason = CodeInvalidRequest, "invalid request: "+err.Error()
		return v
	}
	who := policy.Who{Labels: s.Labels, Networks: slices.Sorted(maps.Keys(s.VIPs))}
	if code, reason := claimLimits(spec.Targets, who, opt); reason != "" {
		v.Code, v.Reason = code, reason
		return v
	}
	if code, reason := operatorChoices(spec, opt); reason != "" {
		v.Code, v.Reason = code, reason
		return v
	}
	switch {
	case len(s.Tasks) == 0:
		v.Code, v.Reason, v.Lifecycle = CodeNoTasks, "the service has no running task; it is routed once one runs", true
		return v
	}
	var exposed []string
	for target := range s.Published {
		exposed = append(exposed, strconv.Itoa(int(target))+"/tcp")
	}
	slices.Sort(exposed)
	targets, info := choosePorts(spec.Targets, exposed)
	v.Info = info
	if spec.Network != "" {
		opt.Network = spec.Network
	}
	servers, code, reason := serviceServers(s, opt, spec.LB, targets)
	if reason != "" {
		v.Code, v.Reason = code, reason
		return v
	}
	for i, t := range targets {
		for _, srv := range servers[i] {
			v.Backends = append(v.Backends, route.Backend{Name: s.Name, Host: t.Host, Path: t.Path, Strip: t.Strip, Edge: spec.Edge, Proto: spec.Proto,
				Middlewares: spec.Middlewares, Auth: spec.Auth, Server: srv})
		}
	}
	return v
}

// serviceServers finds, for each target, the addresses the proxy dials.
func serviceServers(s Service, opt Options, lb string, targets []Target) (servers [][]string, code Code, reason string) {
	if opt.Address == AddrPublished {
		for _, t := range targets {
			pp, ok := s.Published[t.Port]
			if !ok {
				return nil, CodePortNotPublished, fmt.Sprintf("port %d is not published: engine %s's services are routed at the ports the swarm publishes on %s (addr=published); create the service with --publish %d", t.Port, cmp.Or(opt.Engine, "local"), opt.Advertise, t.Port)
			}
			servers = append(servers, []string{net.JoinHostPort(opt.Advertise, strconv.Itoa(int(pp)))})
		}
		return servers, "", ""
	}
	networks := slices.Sorted(maps.Keys(s.VIPs))
	for _, t := range s.Tasks {
		for n := range t.Addrs {
			if !slices.Contains(networks, n) {
				networks = append(networks, n)
			}
		}
	}
	network, code, reason := pickNetwork(networks, opt.Network)
	if reason != "" {
		return nil, code, reason
	}
	var addrs []netip.Addr
	if lb == "tasks" {
		for _, t := range s.Tasks {
			if a := t.Addrs[network]; a.IsValid() {
				addrs = append(addrs, a)
			}
		}
	} else if vip := s.VIPs[network]; vip.IsValid() {
		addrs = []netip.Addr{vip}
	}
	if len(addrs) == 0 {
		return nil, CodeNoAddress, fmt.Sprintf("the service has no address on network %q (with endpoint mode dnsrr there is no virtual IP: use the label dockroute.lb=tasks)", network)
	}
	for _, t := range targets {
		var list []string
		for _, a := range addrs {
			list = append(list, netip.AddrPortFrom(a, t.Port).String())
		}
		servers = append(servers, list)
	}
	return servers, "", ""
}

// pickNetwork chooses among a service's networks as chooseNetwork does
// among a container's; the swarm's ingress network is never one to route
// on (it is the routing mesh's own).
func pickNetwork(networks []string, want string) (string, Code, string) {
	networks = slices.DeleteFunc(networks, func(n string) bool { return n == "ingress" })
	if want != "" {
		if slices.Contains(networks, want) {
			return want, "", ""
		}
		return "", CodeNetworkMissing, fmt.Sprintf("service is not on network %q (dockroute --network or the label dockroute.network); it is on: %s", want, orNone(strings.Join(networks, ", ")))
	}
	switch len(networks) {
	case 0:
		return "", CodeNoNetwork, "the service is on no network the proxy can share (only the ingress mesh); attach it to an overlay network the proxy is on"
	case 1:
		return networks[0], "", ""
	}
	return "", CodeNetworkAmbiguous, fmt.Sprintf("service is on several networks (%s); start dockroute with --network NAME, or set the label dockroute.network", strings.Join(networks, ", "))
}
