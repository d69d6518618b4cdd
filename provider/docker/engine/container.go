package engine

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/dockroute/dockroute/provider/contract"
)

// FromInspect reduces a full inspect answer, as the Docker client (or the
// fake engine) gives it.
func FromInspect(in container.InspectResponse) contract.Container { return answerOf(in).container() }

// inspectAnswer is the part of an inspect answer dockroute reads. The
// ClientEngine decodes a real engine's answer straight into it (the rest,
// ~5 kB of paths, mounts and driver data, is skipped); answerOf takes it
// from the client's type. Docker's answer may lack any pointer field
// (older engines, odd states), so none is trusted to be set.
type inspectAnswer struct {
	ID              string `json:"Id"`
	Name            string
	Created         string
	State           *answerState
	HostConfig      *answerHostConfig
	Config          *answerConfig
	NetworkSettings *answerNetworks
}

type answerState struct {
	Status    container.ContainerState
	StartedAt string
	Health    *answerHealth
}

type answerHealth struct{ Status container.HealthStatus }

type answerHostConfig struct{ NetworkMode container.NetworkMode }

type answerNetworks struct {
	Networks map[string]*endpointAddrs
	Ports    nat.PortMap
}

type answerConfig struct {
	Env          []string
	Labels       map[string]string
	StopSignal   string
	StopTimeout  *int
	ExposedPorts nat.PortSet
}

// endpointAddrs is what is read of a container's attachment to a network.
type endpointAddrs struct{ IPAddress, GlobalIPv6Address string }

// container reduces the answer to what routing keeps.
func (a inspectAnswer) container() contract.Container {
	c := contract.Container{ID: a.ID, Name: strings.TrimPrefix(a.Name, "/")}
	c.Created, _ = time.Parse(time.RFC3339Nano, a.Created)
	if a.State != nil {
		c.State = intern(string(a.State.Status))
		c.Started, _ = time.Parse(time.RFC3339Nano, a.State.StartedAt)
		if a.State.Health != nil {
			c.Health = intern(string(a.State.Health.Status))
		}
	}
	if a.HostConfig != nil {
		c.NetworkMode = intern(string(a.HostConfig.NetworkMode))
	}
	if cf := a.Config; cf != nil {
		c.Env = cf.Env
		c.Labels = cf.Labels
		c.StopSignal = cf.StopSignal
		if t := cf.StopTimeout; t != nil && *t > 0 {
			c.StopTimeout = time.Duration(*t) * time.Second
		}
		for p := range cf.ExposedPorts {
			c.Exposed = append(c.Exposed, intern(string(p)))
		}
		slices.Sort(c.Exposed)
	}
	if ns := a.NetworkSettings; ns != nil {
		c.Networks = attachments(ns.Networks)
		for port, bindings := range ns.Ports {
			if port.Proto() != "tcp" {
				continue
			}
			for _, b := range bindings {
				if hp, err := strconv.ParseUint(b.HostPort, 10, 16); err == nil && hp > 0 {
					publish(&c, uint16(port.Int()), uint16(hp))
					break
				}
			}
		}
	}
	return c
}

// answerOf takes from the client's type what an inspectAnswer holds.
func answerOf(in container.InspectResponse) inspectAnswer {
	var a inspectAnswer
	if b := in.ContainerJSONBase; b != nil {
		a.ID, a.Name, a.Created = b.ID, b.Name, b.Created
		if b.State != nil {
			a.State = &answerState{Status: b.State.Status, StartedAt: b.State.StartedAt}
			if b.State.Health != nil {
				a.State.Health = &answerHealth{b.State.Health.Status}
			}
		}
		if b.HostConfig != nil {
			a.HostConfig = &answerHostConfig{b.HostConfig.NetworkMode}
		}
	}
	if cf := in.Config; cf != nil {
		a.Config = &answerConfig{Env: cf.Env, Labels: cf.Labels, StopSignal: cf.StopSignal, StopTimeout: cf.StopTimeout, ExposedPorts: cf.ExposedPorts}
	}
	if ns := in.NetworkSettings; ns != nil {
		a.NetworkSettings = &answerNetworks{addrsOf(ns.Networks), ns.Ports}
	}
	return a
}

// addrsOf reads each network's addresses of the client's type.
func addrsOf(eps map[string]*network.EndpointSettings) map[string]*endpointAddrs {
	if eps == nil {
		return nil
	}
	m := make(map[string]*endpointAddrs, len(eps))
	for name, ep := range eps {
		var ea *endpointAddrs
		if ep != nil {
			ea = &endpointAddrs{ep.IPAddress, ep.GlobalIPv6Address}
		}
		m[name] = ea
	}
	return m
}

// Entry is the part of a container list entry dockroute reads
// (Refresh, Name). The ClientEngine decodes a real engine's list
// straight into it (an entry is ~800 bytes, labels and mounts included);
// EntryOf takes it from the client's type.
type Entry struct {
	ID     string `json:"Id"`
	Names  []string
	State  container.ContainerState
	Status string
	// HostConfig is nil when the engine leaves it out (Podman does).
	HostConfig      *struct{ NetworkMode string }
	NetworkSettings *entryNetworks
	Ports           []container.Port
	// Health is the engine's health summary (Docker API 1.52 and later;
	// nil before, and on Podman).
	Health *struct{ Status string }
}

type entryNetworks struct{ Networks map[string]*endpointAddrs }

// EntryOf takes from the client's type what a Entry holds.
func EntryOf(s container.Summary) Entry {
	e := Entry{ID: s.ID, Names: s.Names, State: s.State, Status: s.Status, Ports: s.Ports}
	e.HostConfig = &struct{ NetworkMode string }{s.HostConfig.NetworkMode}
	if s.NetworkSettings != nil {
		e.NetworkSettings = &entryNetworks{addrsOf(s.NetworkSettings.Networks)}
	}
	return e
}

// Refresh returns c with the fields that can change during a container's
// life taken from a list entry. What the entry does not say is kept from
// the inspect: Podman's list has no health (neither in the status text
// nor as a field) and no network mode, and reading their absence as "no
// healthcheck" routed unhealthy containers again at every resync.
func Refresh(c contract.Container, e Entry) contract.Container {
	c.State = intern(string(e.State))
	if h, ok := entryHealth(e); ok {
		c.Health = h
	}
	c.Name = e.Name()
	if e.HostConfig != nil {
		c.NetworkMode = intern(e.HostConfig.NetworkMode)
	}
	c.Networks = nil
	if e.NetworkSettings != nil {
		c.Networks = attachments(e.NetworkSettings.Networks)
	}
	// Host ports may change over a container's life (a -p without a host
	// port gets a new one when the engine restarts it).
	c.Published = nil
	for _, p := range e.Ports {
		if p.Type == "tcp" && p.PublicPort != 0 {
			if _, ok := c.Published[p.PrivatePort]; !ok {
				publish(&c, p.PrivatePort, p.PublicPort)
			}
		}
	}
	return c
}

// publish records that port is published on the engine's host as
// hostPort (the map is made only for containers that publish a port).
func publish(c *contract.Container, port, hostPort uint16) {
	if c.Published == nil {
		c.Published = map[uint16]uint16{}
	}
	c.Published[port] = hostPort
}

// intern returns the one copy of s kept for every container: states,
// network names and modes, exposed ports are the same few strings
// thousands of times over, each decoded anew from every answer.
func intern(s string) string { return unique.Make(s).Value() }

// Name is the entry's container name, for messages.
func (e Entry) Name() string {
	if len(e.Names) > 0 {
		return strings.TrimPrefix(e.Names[0], "/")
	}
	return contract.Short(e.ID)
}

// healthFromStatus reads the health state from a list entry's status text
// ("Up 2 minutes (healthy)", "Up 3 seconds (health: starting)"): the list
// API has no structured field for it.
func healthFromStatus(status string) string {
	switch {
	case strings.HasSuffix(status, "(healthy)"):
		return "healthy"
	case strings.HasSuffix(status, "(unhealthy)"):
		return "unhealthy"
	case strings.HasSuffix(status, "(health: starting)"):
		return "starting"
	}
	return ""
}

// SaysHealth tells whether a list entry says anything of the container's
// health (see entryHealth).
func (e Entry) SaysHealth() bool {
	_, ok := entryHealth(e)
	return ok
}

// entryHealth is what a list entry says of the container's health: API
// 1.52's field ("none": no healthcheck), else Docker's status text. False
// when it says nothing: a running container with a healthcheck always has
// it in Docker's status text, so only a container without one, or an
// engine that never says (Podman), gives none; for a container known to
// have a healthcheck, that is no news.
func entryHealth(e Entry) (string, bool) {
	if e.Health != nil {
		if e.Health.Status == "none" {
			return "", true
		}
		return intern(e.Health.Status), true
	}
	if h := healthFromStatus(e.Status); h != "" {
		return h, true
	}
	return "", false
}

// attachments gives each network's address (IPv4 where there is one) and
// its global IPv6 address where there is one, sorted by network.
func attachments(eps map[string]*endpointAddrs) contract.Networks {
	if len(eps) == 0 {
		return nil
	}
	ns := make(contract.Networks, 0, len(eps))
	for name, ep := range eps {
		a := contract.Attachment{Network: intern(name)}
		if ep != nil {
			a.Addr = pickAddr(ep.IPAddress, ep.GlobalIPv6Address)
			if a6, err := netip.ParseAddr(ep.GlobalIPv6Address); err == nil && a6.Is6() {
				a.Addr6 = a6
			}
		}
		ns = append(ns, a)
	}
	slices.SortFunc(ns, func(a, b contract.Attachment) int { return strings.Compare(a.Network, b.Network) })
	return ns
}

// pickAddr prefers IPv4, which every proxy setup reaches, and falls back to
// the global IPv6 address of an IPv6-only network.
func pickAddr(v4, v6 string) netip.Addr {
	for _, s := range []string{v4, v6} {
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
