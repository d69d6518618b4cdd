package docker

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
)

// Options are the operator's choices that affect every container's verdict.
type Options struct {
	// Network names the Docker network whose address is routed. Empty means
	// "the container's only network"; a container on several is refused.
	Network string
}

// Verdict is the decision for one container: a backend to route, or the
// reason it is not routed.
type Verdict struct {
	ID, Name string
	OptedIn  bool
	Backend  *route.Backend // nil when not routed
	Reason   string         // why not routed, in words a user can act on
	// Lifecycle is true when the reason is the container's state (stopped,
	// paused): routine, not a mistake to fix.
	Lifecycle bool
	Notes     []string
}

// Routed tells whether the verdict produces routes.
func (v Verdict) Routed() bool { return v.Backend != nil }

func (v Verdict) equal(o Verdict) bool {
	if v.ID != o.ID || v.Name != o.Name || v.OptedIn != o.OptedIn || v.Reason != o.Reason || v.Lifecycle != o.Lifecycle ||
		!slices.Equal(v.Notes, o.Notes) || (v.Backend == nil) != (o.Backend == nil) {
		return false
	}
	return v.Backend == nil || v.Backend.Addr == o.Backend.Addr && slices.Equal(v.Backend.Hosts, o.Backend.Hosts)
}

// Decide is the whole routing contract for one container, as a pure
// function. Checks run in the order a user would fix them: opt-in, the
// request itself, the container's state, then how to reach it.
func Decide(c Container, opt Options) Verdict {
	v := Verdict{ID: c.ID, Name: c.Name}
	spec, optedIn, err := ParseEnv(c.Env)
	v.OptedIn, v.Notes = optedIn, spec.Notes
	if !optedIn {
		v.Reason = fmt.Sprintf("not opted in: set %s (or %s) to the host names to route", EnvHost, EnvHostAlias)
		return v
	}
	if err != nil {
		v.Reason = "invalid request: " + err.Error()
		return v
	}
	if reason := stateReason(c.State); reason != "" {
		v.Reason, v.Lifecycle = reason, true
		return v
	}
	addr, reason := reach(c, spec.Port, opt)
	if reason != "" {
		v.Reason = reason
		return v
	}
	v.Backend = &route.Backend{Name: c.Name, Hosts: spec.Hosts, Addr: addr}
	return v
}

func stateReason(state string) string {
	switch state {
	case "running":
		return ""
	case "paused":
		return "container is paused; it is routed again on unpause"
	case "":
		return "Docker reported no state for the container"
	}
	return fmt.Sprintf("container is not running (state %q); it is routed once it runs", state)
}

// reach finds the address:port the proxy should dial, or why there is none.
func reach(c Container, port uint16, opt Options) (netip.AddrPort, string) {
	switch mode := c.NetworkMode; {
	case mode == "host":
		return netip.AddrPort{}, "container uses the host network, so it has no address of its own to route to; run it on a bridge or user-defined network"
	case mode == "none":
		return netip.AddrPort{}, "container has networking disabled (--network none)"
	case strings.HasPrefix(mode, "container:"):
		return netip.AddrPort{}, fmt.Sprintf("container shares another container's network (%s); route that container instead", mode)
	}
	if !slices.Contains(c.Exposed, strconv.Itoa(int(port))+"/tcp") {
		return netip.AddrPort{}, portReason(port, c.Exposed)
	}
	name, reason := chooseNetwork(c, opt.Network)
	if reason != "" {
		return netip.AddrPort{}, reason
	}
	addr := c.Networks[name]
	if !addr.IsValid() {
		return netip.AddrPort{}, fmt.Sprintf("container has no IP address on network %q", name)
	}
	return netip.AddrPortFrom(addr, port), ""
}

func portReason(port uint16, exposed []string) string {
	fix := fmt.Sprintf("add EXPOSE %d to the image or run with --expose %d, or set %s to an exposed port", port, port, EnvPort)
	if len(exposed) == 0 {
		return fmt.Sprintf("port %d is not exposed (the container exposes no ports); %s", port, fix)
	}
	return fmt.Sprintf("port %d is not exposed (exposed: %s); %s", port, strings.Join(exposed, ", "), fix)
}

func chooseNetwork(c Container, want string) (string, string) {
	if want != "" {
		if _, ok := c.Networks[want]; ok {
			return want, ""
		}
		return "", fmt.Sprintf("container is not on network %q (dockroute --network); it is on: %s", want, orNone(c.networkNames()))
	}
	switch len(c.Networks) {
	case 0:
		return "", "container is on no network"
	case 1:
		for name := range c.Networks {
			return name, ""
		}
	}
	return "", fmt.Sprintf("container is on several networks (%s); start dockroute with --network NAME to choose the one the proxy reaches", c.networkNames())
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
