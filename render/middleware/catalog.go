// Package middleware is the operator's catalog of named middleware sets
// that containers choose by label (dockroute.middlewares=auth,headers):
// the built-in ones and those defined in the middlewares file
// (--middlewares-file). A tenant's label only chooses among names; what a
// name does is the operator's, so no label can inject configuration.
//
//	middlewares:
//	  secure-headers:
//	    traefik:                    # Traefik middleware definitions ...
//	      - headers: {frameDeny: true, contentTypeNosniff: true}
//	    caddy:                      # ... and Caddy handlers, before reverse_proxy
//	      - handler: headers
//	        response: {set: {X-Frame-Options: [DENY], X-Content-Type-Options: [nosniff]}}
//	  sso:
//	    traefik: [authelia@file]    # a reference to an existing middleware
//
// A set may define either part; a container choosing it is refused when
// dockroute's output has no definition for it.
package middleware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
)

// The built-in sets, which need no file.
const (
	// WWWRedirect permanently redirects a host to its www. form.
	WWWRedirect = "www-redirect"
	// ApexRedirect permanently redirects a www. host to the name without it.
	ApexRedirect = "apex-redirect"
	// HSTS sends Strict-Transport-Security (one year, subdomains) on
	// responses over HTTPS.
	HSTS = "hsts"
)

// Builtins lists the built-in set names.
var Builtins = []string{ApexRedirect, HSTS, WWWRedirect}

// IsBuiltin tells whether name is a built-in set.
func IsBuiltin(name string) bool { return slices.Contains(Builtins, name) }

// Set is one named set: what dockroute writes for each proxy.
type Set struct {
	// Traefik are middlewares in the order they run: definitions dockroute
	// writes under its own name, or references to existing ones.
	Traefik []Traefik
	// Caddy are handlers placed, in order, before reverse_proxy.
	Caddy []json.RawMessage
}

// Traefik is one Traefik middleware of a set: Ref names an existing one
// ("name@provider"), else Def is a definition (one middleware type, as
// JSON, which is also YAML).
type Traefik struct {
	Ref string
	Def json.RawMessage
}

// Catalog is the sets of one middlewares file. The zero value (and nil)
// is the built-ins alone.
type Catalog struct {
	sets    map[string]Set
	skipped map[string]string // name → why its entry was skipped
}

// Lookup returns the set defined as name in the file.
func (c *Catalog) Lookup(name string) (Set, bool) {
	if c == nil {
		return Set{}, false
	}
	s, ok := c.sets[name]
	return s, ok
}

// Names lists the sets the file defines, sorted.
func (c *Catalog) Names() []string {
	if c == nil {
		return nil
	}
	var names []string
	for n := range c.sets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Check tells why a route may not use the set name with output ("traefik"
// or "caddy"), or nil when it may.
func (c *Catalog) Check(name, output string) error {
	if IsBuiltin(name) {
		return nil
	}
	if c != nil {
		if why, ok := c.skipped[name]; ok {
			return fmt.Errorf("middleware %q was skipped when the middlewares file was loaded: %s", name, why)
		}
		if s, ok := c.sets[name]; ok {
			if output == "traefik" && len(s.Traefik) == 0 || output == "caddy" && len(s.Caddy) == 0 {
				return fmt.Errorf("middleware %q has no %s definition in the middlewares file", name, output)
			}
			return nil
		}
	}
	return fmt.Errorf("middleware %q is not defined: define it in the middlewares file (--middlewares-file) or use a built-in (%s)", name, strings.Join(Builtins, ", "))
}

// Equal tells whether two catalogs define the same sets.
func (c *Catalog) Equal(o *Catalog) bool {
	a, b := c.Names(), o.Names()
	if !slices.Equal(a, b) {
		return false
	}
	for _, n := range a {
		x, _ := c.Lookup(n)
		y, _ := o.Lookup(n)
		if !slices.EqualFunc(x.Traefik, y.Traefik, func(p, q Traefik) bool { return p.Ref == q.Ref && bytes.Equal(p.Def, q.Def) }) ||
			!slices.EqualFunc(x.Caddy, y.Caddy, func(p, q json.RawMessage) bool { return bytes.Equal(p, q) }) {
			return false
		}
	}
	return true
}

// Problem is one entry skipped, with its line and the reason.
type Problem struct {
	Line   int
	Name   string
	Reason string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: %s: %s", p.Line, p.Name, p.Reason) }

// Parse reads a middlewares file. A file that is not YAML, or has a key
// other than "middlewares" at the top, fails as a whole; a bad entry is
// skipped with a Problem (containers choosing it are refused, with its
// reason) and the others are kept.
func Parse(data []byte) (*Catalog, []Problem, error) {
	c := &Catalog{sets: map[string]Set{}, skipped: map[string]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	if len(doc.Content) == 0 {
		return c, nil, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: want a mapping with the key \"middlewares\"", top.Line)
	}
	var sets *yaml.Node
	for i := 0; i < len(top.Content); i += 2 {
		if k := top.Content[i]; k.Value != "middlewares" {
			return nil, nil, fmt.Errorf("line %d: unknown key %q (want \"middlewares\")", k.Line, k.Value)
		}
		sets = top.Content[i+1]
	}
	if sets == nil || sets.Kind == yaml.ScalarNode && sets.Tag == "!!null" {
		return c, nil, nil
	}
	if sets.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: middlewares: want a mapping of names to sets", sets.Line)
	}
	var problems []Problem
	for i := 0; i < len(sets.Content); i += 2 {
		k, v := sets.Content[i], sets.Content[i+1]
		name := k.Value
		s, err := parseSet(name, v)
		if err == nil && c.has(name) {
			err = fmt.Errorf("defined twice")
		}
		if err != nil {
			problems = append(problems, Problem{Line: k.Line, Name: name, Reason: err.Error()})
			if route.ValidName(name) == nil {
				c.skipped[name] = err.Error()
			}
			continue
		}
		c.sets[name] = s
	}
	return c, problems, nil
}

func (c *Catalog) has(name string) bool {
	_, ok := c.sets[name]
	return ok
}

func parseSet(name string, n *yaml.Node) (Set, error) {
	var s Set
	if err := route.ValidName(name); err != nil {
		return s, err
	}
	if IsBuiltin(name) {
		return s, fmt.Errorf("%q is a built-in set; choose another name", name)
	}
	if n.Kind != yaml.MappingNode {
		return s, fmt.Errorf("want a mapping with traefik: and/or caddy:")
	}
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "traefik":
			s.Traefik, err = parseTraefik(items(v))
		case "caddy":
			s.Caddy, err = parseCaddy(items(v))
		default:
			err = fmt.Errorf("line %d: unknown key %q (want traefik or caddy)", k.Line, k.Value)
		}
		if err != nil {
			return s, err
		}
	}
	if len(s.Traefik) == 0 && len(s.Caddy) == 0 {
		return s, fmt.Errorf("defines nothing: give it traefik: and/or caddy:")
	}
	return s, nil
}

// items is n's elements: those of a list, or n alone.
func items(n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.SequenceNode {
		return n.Content
	}
	return []*yaml.Node{n}
}

func parseTraefik(ns []*yaml.Node) ([]Traefik, error) {
	var out []Traefik
	for _, n := range ns {
		if n.Kind == yaml.ScalarNode {
			if err := validRef(n.Value); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			out = append(out, Traefik{Ref: n.Value})
			continue
		}
		if err := checkTraefik(n); err != nil {
			return nil, err
		}
		def, err := toJSON(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Traefik{Def: def})
	}
	return out, nil
}

func parseCaddy(ns []*yaml.Node) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, n := range ns {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: a Caddy handler is a mapping with the key handler:", n.Line)
		}
		raw, err := toJSON(n)
		if err != nil {
			return nil, err
		}
		var h struct {
			Handler string `json:"handler"`
		}
		if err := json.Unmarshal(raw, &h); err != nil || h.Handler == "" {
			return nil, fmt.Errorf("line %d: a Caddy handler needs handler: NAME (e.g. headers)", n.Line)
		}
		if h.Handler == "reverse_proxy" {
			return nil, fmt.Errorf("line %d: reverse_proxy is dockroute's own handler; a set runs before it", n.Line)
		}
		out = append(out, raw)
	}
	return out, nil
}

// toJSON encodes a YAML value as JSON (which is also YAML, so the Traefik
// writer can embed it as is). Text that Traefik's template pass would run
// is refused: the file is rendered as a Go template before it is decoded.
func toJSON(n *yaml.Node) (json.RawMessage, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	raw, err := json.Marshal(normalize(v))
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	if bytes.Contains(raw, []byte("{{")) {
		return nil, fmt.Errorf("line %d: \"{{\" is not allowed (Traefik would run it as a template)", n.Line)
	}
	return raw, nil
}

// normalize makes yaml.v3's decoded maps encodable as JSON objects.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
	}
	return v
}

// validRef checks a reference to an existing Traefik middleware,
// "name@provider", in the alphabet Traefik names take.
func validRef(ref string) error {
	name, provider, ok := strings.Cut(ref, "@")
	valid := func(s string) bool {
		if s == "" {
			return false
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				return false
			}
		}
		return true
	}
	if !ok || !valid(name) || !valid(provider) {
		return fmt.Errorf("%q: a reference is \"name@provider\" (e.g. auth@file), of letters, digits and -_.", ref)
	}
	return nil
}

// CheckRoute is Check for a route on host: the www and apex redirects need
// an exact host (a wildcard names no single host to redirect to or from).
func (c *Catalog) CheckRoute(name, output, host string) error {
	if (name == WWWRedirect || name == ApexRedirect) && route.IsWildcard(host) {
		return fmt.Errorf("%s needs exact hosts, and %s is a wildcard", name, host)
	}
	return c.Check(name, output)
}
