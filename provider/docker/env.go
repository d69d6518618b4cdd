package docker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
)

// The environment variables a container opts in with. The first of each pair
// is autodock's original name; the second is nginx-proxy's, accepted so its
// users can switch without touching their containers.
const (
	EnvHost      = "VIRTUALHOST"
	EnvHostAlias = "VIRTUAL_HOST"
	EnvPort      = "PORT"
	EnvPortAlias = "VIRTUAL_PORT"
	DefaultPort  = 80
)

// Spec is what a container asks for in its environment.
type Spec struct {
	Hosts []string // canonical, unique, sorted
	Port  uint16
	// Notes are harmless oddities worth showing in explain (both a name and
	// its alias set, say); they never stop routing.
	Notes []string
}

// ParseEnv reads a container's routing request from its environment
// ("KEY=VALUE" entries, as Docker reports them). optedIn is false when no
// host variable is set at all; err explains why an opted-in container's
// request cannot be honoured. Hosts are comma-separated; spaces and empty
// items are ignored. One invalid host refuses the whole request: routing a
// container on some of the names it asked for would hide the typo.
func ParseEnv(env []string) (spec Spec, optedIn bool, err error) {
	vars := envMap(env)
	hostVal, hostName, notes := pick(vars, EnvHost, EnvHostAlias)
	spec.Notes = notes
	if hostName == "" {
		return spec, false, nil
	}
	hosts, err := parseHosts(hostVal)
	if err != nil {
		return spec, true, fmt.Errorf("%s: %w", hostName, err)
	}
	spec.Hosts = hosts

	portVal, portName, notes := pick(vars, EnvPort, EnvPortAlias)
	spec.Notes = append(spec.Notes, notes...)
	spec.Port = DefaultPort
	if portName != "" {
		p, err := parsePort(portVal)
		if err != nil {
			return spec, true, fmt.Errorf("%s: %w", portName, err)
		}
		spec.Port = p
	}
	return spec, true, nil
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

// pick returns the value of name, or of alias when name is unset, with the
// variable actually used ("" when neither is set).
func pick(vars map[string]string, name, alias string) (val, used string, notes []string) {
	v, ok := vars[name]
	va, okAlias := vars[alias]
	switch {
	case ok && okAlias && v != va:
		return v, name, []string{fmt.Sprintf("both %s=%q and %s=%q are set; %s is used", name, v, alias, va, name)}
	case ok:
		return v, name, nil
	case okAlias:
		return va, alias, nil
	}
	return "", "", nil
}

func parseHosts(s string) ([]string, error) {
	var hosts []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		h, err := route.ParseHost(item)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no host given (value %q)", s)
	}
	slices.Sort(hosts)
	return slices.Compact(hosts), nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(p), nil
}
