package docker

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// Container is the part of a Docker container that routing depends on,
// reduced to plain data so that Decide is a pure function and the watcher's
// cache is small. Env and Exposed never change during a container's life;
// State, Name and Networks do, and a list call is enough to refresh them.
type Container struct {
	ID      string
	Name    string
	Created time.Time
	// Started is when the container last started running (zero when
	// Docker did not say): of containers asking different things of a
	// host no one holds yet, the one started first decides (see
	// settleHost). A container that was created but never ran holds
	// nothing.
	Started time.Time
	Env     []string
	Labels  map[string]string
	// StopSignal is the signal `docker stop` sends this container first.
	StopSignal string
	// StopTimeout is how long `docker stop` waits for it to exit before
	// killing it; zero means the engine's default.
	StopTimeout time.Duration
	// Exposed holds the container's exposed ports ("8080/tcp"), sorted: the
	// image's EXPOSE plus --expose and -p, as Docker merges them.
	Exposed []string
	State   string // created, running, paused, restarting, exited, dead
	// Health is "" (no healthcheck), "starting", "healthy" or "unhealthy".
	Health string
	// Stopping is set when a stop has begun (Docker sent the stop signal)
	// while the container still runs its grace period: it is taken out of
	// routing at once so the proxy sends it no new requests.
	Stopping    bool
	NetworkMode string
	// Networks are the networks the container is attached to, with its
	// addresses there.
	Networks Networks
	// Published maps each container TCP port published on the engine's
	// host (-p) to its host port (nil when none is).
	Published map[uint16]uint16
}

// Attachment is a container's place on one network.
type Attachment struct {
	Network string
	// Addr is its address there: IPv4 where it has one, else its global
	// IPv6 address (zero when Docker gave it none).
	Addr netip.Addr
	// Addr6 is its global IPv6 address there, when it has one
	// (--ip-family 6 routes it).
	Addr6 netip.Addr
}

// Networks are a container's attachments, sorted by network name. A
// slice, not a map: nearly every container is on one network, and a map
// for it was ~500 bytes of every cached container (5 MB at 10,000).
type Networks []Attachment

// Get returns the attachment to the named network.
func (ns Networks) Get(name string) (Attachment, bool) {
	for _, a := range ns {
		if a.Network == name {
			return a, true
		}
	}
	return Attachment{}, false
}

// Names lists the networks, sorted.
func (ns Networks) Names() []string {
	names := make([]string, len(ns))
	for i, a := range ns {
		names[i] = a.Network
	}
	return names
}

// fromInspect reduces a full inspect answer, as the Docker client (or the
// fake engine) gives it.
func fromInspect(in container.InspectResponse) Container { return answerOf(in).container() }

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
func (a inspectAnswer) container() Container {
	c := Container{ID: a.ID, Name: strings.TrimPrefix(a.Name, "/")}
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
					c.publish(uint16(port.Int()), uint16(hp))
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

// listEntry is the part of a container list entry dockroute reads
// (refresh, entryName). The ClientEngine decodes a real engine's list
// straight into it (an entry is ~800 bytes, labels and mounts included);
// entryOf takes it from the client's type.
type listEntry struct {
	ID              string `json:"Id"`
	Names           []string
	State           container.ContainerState
	Status          string
	HostConfig      struct{ NetworkMode string }
	NetworkSettings *entryNetworks
	Ports           []container.Port
}

type entryNetworks struct{ Networks map[string]*endpointAddrs }

// entryOf takes from the client's type what a listEntry holds.
func entryOf(s container.Summary) listEntry {
	e := listEntry{ID: s.ID, Names: s.Names, State: s.State, Status: s.Status, Ports: s.Ports}
	e.HostConfig.NetworkMode = s.HostConfig.NetworkMode
	if s.NetworkSettings != nil {
		e.NetworkSettings = &entryNetworks{addrsOf(s.NetworkSettings.Networks)}
	}
	return e
}

// refresh returns c with the fields that can change during a container's
// life taken from a list entry.
func (c Container) refresh(e listEntry) Container {
	c.State = intern(string(e.State))
	c.Health = healthFromStatus(e.Status)
	c.Name = entryName(e)
	c.NetworkMode = intern(e.HostConfig.NetworkMode)
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
				c.publish(p.PrivatePort, p.PublicPort)
			}
		}
	}
	return c
}

// publish records that port is published on the engine's host as
// hostPort (the map is made only for containers that publish a port).
func (c *Container) publish(port, hostPort uint16) {
	if c.Published == nil {
		c.Published = map[uint16]uint16{}
	}
	c.Published[port] = hostPort
}

// intern returns the one copy of s kept for every container: states,
// network names and modes, exposed ports are the same few strings
// thousands of times over, each decoded anew from every answer.
func intern(s string) string { return unique.Make(s).Value() }

// entryName is a list entry's container name, for messages.
func entryName(e listEntry) string {
	if len(e.Names) > 0 {
		return strings.TrimPrefix(e.Names[0], "/")
	}
	return short(e.ID)
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

// attachments gives each network's address (IPv4 where there is one) and
// its global IPv6 address where there is one, sorted by network.
func attachments(eps map[string]*endpointAddrs) Networks {
	if len(eps) == 0 {
		return nil
	}
	ns := make(Networks, 0, len(eps))
	for name, ep := range eps {
		a := Attachment{Network: intern(name)}
		if ep != nil {
			a.Addr = pickAddr(ep.IPAddress, ep.GlobalIPv6Address)
			if a6, err := netip.ParseAddr(ep.GlobalIPv6Address); err == nil && a6.Is6() {
				a.Addr6 = a6
			}
		}
		ns = append(ns, a)
	}
	slices.SortFunc(ns, func(a, b Attachment) int { return strings.Compare(a.Network, b.Network) })
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

// networkNames lists the container's networks, sorted, for messages.
func (c Container) networkNames() string { return strings.Join(c.Networks.Names(), ", ") }

// short is the 12-character ID Docker's CLI shows.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (c Container) String() string { return fmt.Sprintf("%s (%s)", c.Name, short(c.ID)) }
