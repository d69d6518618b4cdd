package docker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/dockroute/dockroute/provider/contract"
)

// Scope limits which containers dockroute considers, in Docker's own filter
// syntax (as `docker ps --filter`): "label=KEY", "label=KEY=VALUE" (every
// label filter must match) and "network=NAME" (any network filter may
// match). The zero Scope takes every container. It is how dockroute shares
// an engine with containers that are none of its business, as Traefik's
// constraints and docker-gen's -only-exposed do.
type Scope struct {
	labels   []string // "KEY" or "KEY=VALUE"
	networks []string
	// own is the network of dockroute's own container when --network
	// auto put it in the scope: reasons name it so, rather than blame a
	// --filter the user never wrote.
	own string
}

// Own returns s with network n added as --network auto adds it.
func (s Scope) Own(n string) Scope {
	if !slices.Contains(s.networks, n) {
		s.networks = append(slices.Clone(s.networks), n)
	}
	s.own = n
	return s
}

// Why says why c is outside the scope ("" when it is not).
func (s Scope) Why(c contract.Container) string {
	if s.Matches(c) {
		return ""
	}
	for _, l := range s.labels {
		k, v, hasValue := strings.Cut(l, "=")
		if got, ok := c.Labels[k]; !ok || hasValue && got != v {
			return fmt.Sprintf("it lacks the label %s, which dockroute's --filter requires", l)
		}
	}
	// The labels hold, so no network does.
	on := cmp.Or(c.NetworkNames(), "none")
	if s.own != "" && len(s.networks) == 1 {
		return fmt.Sprintf("it is not on %s, the network of dockroute's own container, which --network auto routes (it is on %s): docker network connect %s %s, or start it with --network %s", s.own, on, s.own, c.Name, s.own)
	}
	return fmt.Sprintf("it is on none of the networks dockroute's --filter names (%s; it is on %s)", strings.Join(s.networks, ", "), on)
}

// ParseScope reads filters such as "label=team=web" or "network=front".
func ParseScope(fs []string) (Scope, error) {
	var s Scope
	for _, f := range fs {
		key, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || val == "" {
			return Scope{}, fmt.Errorf("filter %q: want label=KEY, label=KEY=VALUE or network=NAME", f)
		}
		switch key {
		case "label":
			s.labels = append(s.labels, val)
		case "network":
			s.networks = append(s.networks, val)
		default:
			return Scope{}, fmt.Errorf("filter %q: dockroute filters on label and network only", f)
		}
	}
	return s, nil
}

// IsZero tells whether the scope takes every container.
func (s Scope) IsZero() bool { return len(s.labels) == 0 && len(s.networks) == 0 }

// args are the filters for a container list, so the engine itself leaves
// out-of-scope containers out.
func (s Scope) args() filters.Args {
	a := filters.NewArgs()
	for _, l := range s.labels {
		a.Add("label", l)
	}
	for _, n := range s.networks {
		a.Add("network", n)
	}
	return a
}

// Matches tells whether c is in scope, as the engine's list filter would
// (networks by name). Events are not filtered by the engine (a network
// event carries the network's labels, not the container's), so every
// inspected container is checked here.
func (s Scope) Matches(c contract.Container) bool {
	for _, l := range s.labels {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := c.Labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	if len(s.networks) == 0 {
		return true
	}
	return slices.ContainsFunc(s.networks, func(n string) bool { _, ok := c.Networks.Get(n); return ok })
}

// OutOfScope tells whether a container event shows, by itself, that its
// container is outside the scope: Docker puts a container's labels in its
// events' attributes (beside name and image), so a label filter needs no
// inspect. A network filter does (an event does not carry the container's
// networks), and so does an event without the container's attributes.
func (s Scope) OutOfScope(m events.Message) bool {
	if m.Type != events.ContainerEventType || len(s.labels) == 0 {
		return false
	}
	attrs := m.Actor.Attributes
	if _, ok := attrs["image"]; !ok {
		return false // not the attributes Docker sends: ask the engine
	}
	for _, l := range s.labels {
		k, v, hasValue := strings.Cut(l, "=")
		if got, ok := attrs[k]; !ok || hasValue && got != v {
			return true
		}
	}
	return false
}

func (s Scope) String() string {
	var parts []string
	for _, l := range s.labels {
		parts = append(parts, "label="+l)
	}
	for _, n := range s.networks {
		parts = append(parts, "network="+n)
	}
	return strings.Join(parts, ",")
}
