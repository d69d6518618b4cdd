// Package traefik renders a route table as a Traefik v3 dynamic configuration
// for the file provider, and publishes it atomically into the directory
// Traefik watches.
package traefik

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
)

// header opens every rendered file. It holds no template text: Traefik runs
// each file through Go templates before decoding it.
const header = "# Written by dockroute from the running containers. Do not edit: dockroute\n# rewrites this file whenever its routes change.\n"

// NamePrefix starts every router and service name dockroute writes, so they
// never collide with the user's own routers in other files of the directory
// (Traefik refuses duplicate names across files).
const NamePrefix = "dockroute-"

// wildcardPriority is the priority of a wildcard host's router. Traefik's
// default priority is the rule's length, which would let the longer
// HostRegexp of *.example.com beat Host(`a.example.com`); an exact host
// must always win, as it does in Caddy and in TLS certificate matching.
const wildcardPriority = 1

// The shapes below are the subset of Traefik's dynamic configuration that
// dockroute writes, with Traefik's own key names.
type config struct {
	// HTTP is omitted when there are no routes: Traefik refuses an empty
	// "http: {}" ("http cannot be a standalone element") and would then drop
	// the whole directory, while an empty document loads as "no routes".
	HTTP *httpConfig `yaml:"http,omitempty"`
}

type httpConfig struct {
	Routers  map[string]router  `yaml:"routers,omitempty"`
	Services map[string]service `yaml:"services,omitempty"`
}

type router struct {
	Rule     string `yaml:"rule"`
	Service  string `yaml:"service"`
	Priority int    `yaml:"priority,omitempty"`
}

type service struct {
	LoadBalancer loadBalancer `yaml:"loadBalancer"`
}

type loadBalancer struct {
	Servers []server `yaml:"servers"`
}

type server struct {
	URL string `yaml:"url"`
}

// Render returns the file contents for t. It is deterministic: equal tables
// give equal bytes (yaml.v3 writes map keys sorted), so an unchanged table
// never causes a rewrite. Hosts in t must be canonical (route.ParseHost).
func Render(t route.Table) []byte {
	var cfg config
	if len(t.Routes) > 0 {
		cfg.HTTP = &httpConfig{
			Routers:  make(map[string]router, len(t.Routes)),
			Services: make(map[string]service, len(t.Routes)),
		}
	}
	for _, r := range t.Routes {
		name := Name(r.Host)
		rt := router{Rule: Rule(r.Host), Service: name}
		if route.IsWildcard(r.Host) {
			rt.Priority = wildcardPriority
		}
		cfg.HTTP.Routers[name] = rt
		lb := loadBalancer{Servers: make([]server, 0, len(r.Servers))}
		for _, s := range r.Servers {
			lb.Servers = append(lb.Servers, server{URL: "http://" + s.String()})
		}
		cfg.HTTP.Services[name] = service{LoadBalancer: lb}
	}
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		// Only plain strings, ints and maps of them are encoded: a failure
		// here is a bug in this package, not bad input.
		panic(fmt.Sprintf("traefik: encoding config: %v", err))
	}
	return buf.Bytes()
}

// Name is the router and service name for a host: the host with dots turned
// into underscores and a wildcard's "*" into "wildcard_". Canonical hosts
// never contain "_", so the mapping is one-to-one and stays readable
// (hello.local → dockroute-hello_local, *.example.com →
// dockroute-wildcard__example_com).
func Name(host string) string {
	return NamePrefix + strings.NewReplacer("*", "wildcard_", ".", "_").Replace(host)
}

// Rule is the Traefik v3 rule matching host. A wildcard matches exactly one
// label in front of the rest, like Caddy's host matcher and TLS wildcards.
func Rule(host string) string {
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		return "HostRegexp(`^[a-z0-9-]+\\." + regexp.QuoteMeta(rest) + "$`)"
	}
	return "Host(`" + host + "`)"
}
