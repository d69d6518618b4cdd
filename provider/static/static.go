// Package static is the provider of routes to backends that are not Docker
// containers, read from a YAML file (--routes-file) and reloaded when it
// changes:
//
//	routes:
//	  legacy.example.com:
//	    - http://10.0.0.5:8080
//	    - http://legacy-2.internal:8080
//	  example.com/api: [http://10.0.0.7:9000]
//
// Keys are host[/path] as in the container grammar; values are URLs with an
// IP or a host name and an optional port. The scheme is the protocol the
// proxy speaks to the backend: http:// (default port 80), https:// (443) or
// h2c:// (cleartext HTTP/2, e.g. gRPC; port 80); all URLs of one key must
// share it, since a route has one upstream protocol.
// When a static route and a container claim the same host and path, the
// static route wins: the file is the operator's, a container's labels are
// a tenant's request.
package static

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
)

// Name is the backend name static routes carry in logs and explain.
const Name = "routes-file"

// Problem is one entry skipped, with its line and the reason.
type Problem struct {
	Line   int
	Key    string
	Reason string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: %s: %s", p.Line, p.Key, p.Reason) }

// Parse reads a routes file. A file that is not YAML, or has a key other
// than "routes" at the top, fails as a whole (nothing in it can be
// trusted); a bad entry is skipped with a Problem and the others are kept.
func Parse(data []byte) ([]route.Backend, []Problem, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	if len(doc.Content) == 0 || bytes.TrimSpace(data) == nil {
		return nil, nil, nil // an empty file: no static routes
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: want a mapping with the key \"routes\"", top.Line)
	}
	var routes *yaml.Node
	for i := 0; i < len(top.Content); i += 2 {
		k := top.Content[i]
		if k.Value != "routes" {
			return nil, nil, fmt.Errorf("line %d: unknown key %q (the only key is \"routes\")", k.Line, k.Value)
		}
		routes = top.Content[i+1]
	}
	if routes == nil || routes.Kind == yaml.ScalarNode && routes.Tag == "!!null" {
		return nil, nil, nil
	}
	if routes.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: routes must map host[/path] to URLs", routes.Line)
	}
	var backends []route.Backend
	var problems []Problem
	for i := 0; i < len(routes.Content); i += 2 {
		k, v := routes.Content[i], routes.Content[i+1]
		bs, err := entry(k.Value, v)
		if err != nil {
			problems = append(problems, Problem{Line: k.Line, Key: k.Value, Reason: err.Error()})
			continue
		}
		backends = append(backends, bs...)
	}
	return backends, problems, nil
}

func entry(key string, v *yaml.Node) ([]route.Backend, error) {
	hostStr, pathStr, _ := strings.Cut(key, "/")
	host, err := route.ParseHost(hostStr)
	if err != nil {
		return nil, err
	}
	path, err := route.ParsePath("/" + pathStr)
	if err != nil {
		return nil, err
	}
	var urls []string
	switch v.Kind {
	case yaml.ScalarNode:
		urls = []string{v.Value}
	case yaml.SequenceNode:
		for _, n := range v.Content {
			if n.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a URL", n.Line)
			}
			urls = append(urls, n.Value)
		}
	default:
		return nil, fmt.Errorf("want a URL or a list of URLs")
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("no URLs")
	}
	var out []route.Backend
	for _, u := range urls {
		server, proto, err := parseURL(u)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && out[0].Proto != proto {
			return nil, fmt.Errorf("URL %q: every URL of a route must use the same scheme as the first", u)
		}
		out = append(out, route.Backend{Name: Name, Host: host, Path: path, Server: server, Proto: proto})
	}
	return out, nil
}

// schemes maps a URL scheme to the backend protocol and its default port.
var schemes = map[string]struct {
	proto string
	port  int
}{
	"http":  {"", 80},
	"https": {"https", 443},
	"h2c":   {"h2c", 80},
}

// parseURL accepts SCHEME://HOST[:PORT][/] where HOST is an IP or a host
// name, and returns "host:port" and the backend protocol.
func parseURL(s string) (server, proto string, err error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", "", fmt.Errorf("URL %q: %w", s, err)
	}
	scheme, known := schemes[u.Scheme]
	if !known || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Path != "" && u.Path != "/" || u.Opaque != "" {
		return "", "", fmt.Errorf("URL %q: want http://, https:// or h2c://HOST[:PORT] with nothing after the port", s)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	} else if host, err = route.ParseHost(host); err != nil || route.IsWildcard(host) {
		return "", "", fmt.Errorf("URL %q: host is neither an IP nor a host name", s)
	}
	port := scheme.port
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", "", fmt.Errorf("URL %q: bad port", s)
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), scheme.proto, nil
}

// Merge combines static and container backends. For every host and path
// the file names, container backends are dropped (the static route wins);
// overridden lists the dropped ones.
func Merge(static, containers []route.Backend) (merged, overridden []route.Backend) {
	if len(static) == 0 {
		return containers, nil // nothing to override: no copy of the fleet
	}
	claimed := map[[2]string]bool{}
	for _, b := range static {
		claimed[[2]string{b.Host, b.Path}] = true
	}
	merged = slices.Clone(static)
	for _, b := range containers {
		// Static routes are HTTP: they never override a TLS passthrough.
		if !b.TCP && claimed[[2]string{b.Host, b.Path}] {
			overridden = append(overridden, b)
			continue
		}
		merged = append(merged, b)
	}
	return merged, overridden
}
