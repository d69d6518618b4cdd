// Package policy is the operator's word on which containers may claim
// which host names (--policy-file): the domains containers may use at all,
// names no container may have, and names bound to owners the operator
// selects by what a tenant cannot choose alone (a network it is put on, a
// label a deploy pipeline sets, a compose project, the engine it runs on).
// It is pure: parsing and checking, no files and no Docker.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
	"gopkg.in/yaml.v3"
)

// Policy is a parsed policy file. The zero Policy (and nil) admits every
// claim.
type Policy struct {
	// Domains are the names containers may claim, each with every name
	// under it; empty: any name.
	Domains []string
	// Reserved names no container may claim.
	Reserved []Pattern
	Rules    []Rule
}

// Pattern is a host name, or "*." and a name: every name under it, at
// any depth.
type Pattern struct {
	Name  string // without "*."
	Under bool
}

func (p Pattern) String() string {
	if p.Under {
		return "*." + p.Name
	}
	return p.Name
}

// Rule binds names to the containers that may claim them.
type Rule struct {
	Line   int
	Names  []Pattern
	Owners []Owner
	// Broken is why the rule's owners could not be read: its names are
	// then claimed by no one until the file is fixed (fail closed).
	Broken string
}

// Owner selects containers; every field set must hold.
type Owner struct {
	Label, Value string // the container has label Label=Value
	Network      string // the container is attached to this network
	Project      string // compose project (label com.docker.compose.project)
	Engine       string // the engine it runs on (--docker NAME=...)
}

// composeProject is the label compose sets on a project's containers.
const composeProject = "com.docker.compose.project"

func (o Owner) String() string {
	var parts []string
	if o.Label != "" {
		parts = append(parts, "label "+o.Label+"="+o.Value)
	}
	if o.Network != "" {
		parts = append(parts, "network "+o.Network)
	}
	if o.Project != "" {
		parts = append(parts, "compose project "+o.Project)
	}
	if o.Engine != "" {
		parts = append(parts, "engine "+o.Engine)
	}
	return strings.Join(parts, " and ")
}

// Who is what a policy may select a container by.
type Who struct {
	Labels   map[string]string
	Networks []string
	Engine   string
}

func (o Owner) selects(w Who) bool {
	if o.Label != "" && (w.Labels == nil || w.Labels[o.Label] != o.Value) {
		return false
	}
	if o.Network != "" && !slices.Contains(w.Networks, o.Network) {
		return false
	}
	if o.Project != "" && w.Labels[composeProject] != o.Project {
		return false
	}
	return o.Engine == "" || w.Engine == o.Engine
}

// Admit tells why a container may not claim host (a canonical name, or
// "*." and one), as a code and a reason; both are "" when it may.
func (p *Policy) Admit(host string, w Who) (code, reason string) {
	if p == nil {
		return "", ""
	}
	if len(p.Domains) > 0 && !slices.ContainsFunc(p.Domains, func(d string) bool { return within(host, d) }) {
		return "outside_domains", fmt.Sprintf("%s is outside the domains the operator lets containers claim (%s, in the policy file)", host, strings.Join(p.Domains, ", "))
	}
	for _, r := range p.Reserved {
		if r.covers(host) {
			return "reserved_host", fmt.Sprintf("%s is reserved by the operator's policy file (%s): no container may claim it", host, r)
		}
	}
	for _, r := range p.Rules {
		if !slices.ContainsFunc(r.Names, func(n Pattern) bool { return n.covers(host) }) {
			continue
		}
		if r.Broken != "" {
			return "not_owner", fmt.Sprintf("%s is bound to owners by the policy file's rule at line %d, which could not be read (%s): no container may claim it until the file is fixed", host, r.Line, r.Broken)
		}
		if !slices.ContainsFunc(r.Owners, func(o Owner) bool { return o.selects(w) }) {
			var owners []string
			for _, o := range r.Owners {
				owners = append(owners, o.String())
			}
			return "not_owner", fmt.Sprintf("%s belongs, by the operator's policy file (line %d), to containers with %s; this container is none of them", host, r.Line, strings.Join(owners, ", or "))
		}
	}
	return "", ""
}

// Binds tells whether a rule binds host to owners (a rule that could not
// be read binds it to no one).
func (p *Policy) Binds(host string) bool {
	return p != nil && slices.ContainsFunc(p.Rules, func(r Rule) bool {
		return slices.ContainsFunc(r.Names, func(n Pattern) bool { return n.covers(host) })
	})
}

// within tells whether host is domain or a name under it (a wildcard
// "*.x" is within domain when x is).
func within(host, domain string) bool {
	host = strings.TrimPrefix(host, "*.")
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// covers tells whether p governs a claim of host: the name itself, a name
// under p (Under), or a wildcard claim that would serve a name p governs.
func (p Pattern) covers(host string) bool {
	name, wild := strings.CutPrefix(host, "*.")
	switch {
	case p.Under && within(host, p.Name) && host != p.Name:
		return true
	case !p.Under && host == p.Name:
		return true
	case wild && !p.Under:
		// *.x serves every name one label under x: p's name may be one.
		label, ok := strings.CutSuffix(p.Name, "."+name)
		return ok && !strings.Contains(label, ".")
	}
	return false
}

// Problem is a part of the file that was not applied as written.
type Problem struct {
	Line   int
	Reason string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: %s", p.Line, p.Reason) }

// file is the policy file as written.
type file struct {
	Domains  []yaml.Node `yaml:"domains"`
	Reserved []yaml.Node `yaml:"reserved"`
	Hosts    []yaml.Node `yaml:"hosts"`
}

type ruleFile struct {
	Names  []string    `yaml:"names"`
	Owners []ownerFile `yaml:"owners"`
}

type ownerFile struct {
	Label   string `yaml:"label"`
	Network string `yaml:"network"`
	Project string `yaml:"project"`
	Engine  string `yaml:"engine"`
}

// Parse reads a policy file. A file that is not YAML of this shape is an
// error; an entry that cannot be read is a problem, and fails closed: a
// bad domain admits nothing more, a rule whose owners cannot be read
// leaves its names to no one, a name that is not a host name is skipped.
func Parse(data []byte) (*Policy, []Problem, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("policy file: %w", err)
	}
	p := &Policy{}
	var problems []Problem
	for _, n := range f.Domains {
		d, err := route.ParseHost(n.Value)
		if err != nil || n.Kind != yaml.ScalarNode || route.IsWildcard(d) {
			problems = append(problems, Problem{n.Line, fmt.Sprintf("domain %q: not a host name (write example.com for it and every name under it)", n.Value)})
			continue
		}
		p.Domains = append(p.Domains, d)
	}
	if len(f.Domains) > 0 && len(p.Domains) == 0 {
		p.Domains = []string{"(none readable)"} // fail closed: the operator meant to limit
	}
	for _, n := range f.Reserved {
		pat, err := parsePattern(n)
		if err != nil {
			problems = append(problems, Problem{n.Line, err.Error()})
			continue
		}
		p.Reserved = append(p.Reserved, pat)
	}
	for _, n := range f.Hosts {
		r, probs := parseRule(n)
		problems = append(problems, probs...)
		if len(r.Names) > 0 {
			p.Rules = append(p.Rules, r)
		}
	}
	return p, problems, nil
}

func parsePattern(n yaml.Node) (Pattern, error) {
	if n.Kind != yaml.ScalarNode {
		return Pattern{}, fmt.Errorf("expected a host name")
	}
	h, err := route.ParseHost(n.Value)
	if err != nil {
		return Pattern{}, fmt.Errorf("name %q: %v", n.Value, err)
	}
	name, under := strings.CutPrefix(h, "*.")
	return Pattern{Name: name, Under: under}, nil
}

func parseRule(n yaml.Node) (Rule, []Problem) {
	r := Rule{Line: n.Line}
	var rf ruleFile
	if err := n.Decode(&rf); err != nil {
		// The names cannot be trusted either: nothing to bind.
		return r, []Problem{{n.Line, fmt.Sprintf("host rule skipped: %v", err)}}
	}
	var problems []Problem
	for _, s := range rf.Names {
		pat, err := parsePattern(yaml.Node{Kind: yaml.ScalarNode, Value: s})
		if err != nil {
			problems = append(problems, Problem{n.Line, err.Error()})
			continue
		}
		r.Names = append(r.Names, pat)
	}
	if len(rf.Names) == 0 {
		problems = append(problems, Problem{n.Line, "host rule skipped: it names no host (names: [...])"})
	}
	for _, of := range rf.Owners {
		o, err := parseOwner(of)
		if err != nil {
			r.Broken = err.Error()
			break
		}
		r.Owners = append(r.Owners, o)
	}
	if len(rf.Owners) == 0 {
		r.Broken = "it names no owner (owners: [...])"
	}
	if r.Broken != "" && len(r.Names) > 0 {
		problems = append(problems, Problem{n.Line, "host rule's owners: " + r.Broken + "; its names are claimed by no container until it is fixed"})
	}
	return r, problems
}

func parseOwner(of ownerFile) (Owner, error) {
	o := Owner{Network: of.Network, Project: of.Project, Engine: of.Engine}
	if of.Label != "" {
		k, v, ok := strings.Cut(of.Label, "=")
		if !ok || k == "" {
			return o, fmt.Errorf("owner label %q: write label: KEY=VALUE", of.Label)
		}
		o.Label, o.Value = k, v
	}
	if o == (Owner{}) {
		return o, fmt.Errorf("an owner names nothing (label, network, project or engine)")
	}
	return o, nil
}
