package contract

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
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

// NetworkNames lists the container's networks, sorted, for messages.
func (c Container) NetworkNames() string { return strings.Join(c.Networks.Names(), ", ") }

// Short is the 12-character ID Docker's CLI shows.
func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (c Container) String() string { return fmt.Sprintf("%s (%s)", c.Name, Short(c.ID)) }
