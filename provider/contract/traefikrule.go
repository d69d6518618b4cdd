package contract

import (
	"fmt"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
)

// ruleRoutes is what a Traefik router rule of the supported subset asks
// for: one or more hosts, optionally under one path prefix.
type ruleRoutes struct {
	Hosts []string // canonical
	Path  string   // canonical, "" for the whole host
}

// parseTraefikRule reads the subset of Traefik's rule language that maps
// onto dockroute's routes, and refuses everything else by name:
//
//	rule  = hosts [ "&&" path ] | path "&&" hosts
//	hosts = host { "||" host } | "(" hosts ")"
//	host  = "Host(" str { "," str } ")"      (several strings: Traefik v2)
//	path  = "PathPrefix(" str ")" | "(" path ")"
//	str   = `text` | "text"
//
// A "||" list next to "&&" must be in parentheses, as "&&" binds tighter
// in Traefik: Host(a) || Host(b) && PathPrefix(p) would not mean what it
// seems to here.
func parseTraefikRule(rule string) (ruleRoutes, error) {
	p := &ruleParser{src: rule}
	if err := p.lex(); err != nil {
		return ruleRoutes{}, err
	}
	var out ruleRoutes
	first, err := p.operand(&out)
	if err != nil {
		return out, err
	}
	if p.peek() == "&&" {
		p.next()
		if first.list {
			return out, fmt.Errorf("put the Host(...) || Host(...) list in parentheses before \"&&\": Traefik reads \"&&\" first")
		}
		second, err := p.operand(&out)
		if err != nil {
			return out, err
		}
		if second.list {
			return out, fmt.Errorf("put the Host(...) || Host(...) list in parentheses after \"&&\": Traefik reads \"&&\" first")
		}
		if first.path == second.path {
			return out, fmt.Errorf("want Host(...) && PathPrefix(...), got two %s", map[bool]string{true: "PathPrefix(...)", false: "host matchers"}[first.path])
		}
	} else if first.path {
		return out, fmt.Errorf("a PathPrefix(...) without Host(...) matches every host; dockroute routes named hosts")
	}
	if t := p.peek(); t != "" {
		return out, fmt.Errorf("unsupported %q in the rule: dockroute reads Host(...), || between hosts and one && PathPrefix(...)", t)
	}
	return out, nil
}

// operandKind says what one side of "&&" was.
type operandKind struct {
	path bool // a PathPrefix
	list bool // an unparenthesized "||" list of hosts
}

type ruleParser struct {
	src  string
	toks []string // "Host", "PathPrefix", "(", ")", ",", "||", "&&", or "'text" for a string
	pos  int
}

func (p *ruleParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *ruleParser) next() string { t := p.peek(); p.pos++; return t }

func (p *ruleParser) expect(want string) error {
	if got := p.next(); got != want {
		return fmt.Errorf("expected %q, found %s", want, describeToken(got))
	}
	return nil
}

func describeToken(t string) string {
	switch {
	case t == "":
		return "the end of the rule"
	case t[0] == '\'':
		return fmt.Sprintf("the string %q", t[1:])
	}
	return fmt.Sprintf("%q", t)
}

// lex splits the rule into tokens; matcher names other than Host and
// PathPrefix are refused here, by name.
func (p *ruleParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')' || c == ',':
			p.toks = append(p.toks, string(c))
			i++
		case strings.HasPrefix(s[i:], "||") || strings.HasPrefix(s[i:], "&&"):
			p.toks = append(p.toks, s[i:i+2])
			i += 2
		case c == '`' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return fmt.Errorf("unterminated string at %q", s[i:])
			}
			p.toks = append(p.toks, "'"+s[i+1:i+1+end])
			i += end + 2
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i
			for j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			switch name := s[i:j]; name {
			case "Host", "PathPrefix":
				p.toks = append(p.toks, name)
			default:
				return fmt.Errorf("unsupported matcher %s(...): dockroute reads Host(...) and PathPrefix(...)", name)
			}
			i = j
		default:
			return fmt.Errorf("unsupported %q in the rule (negation, regular expressions and other operators are not read)", s[i:i+1])
		}
	}
	return nil
}

// operand reads one side of "&&": hosts (into out.Hosts) or a path (into
// out.Path).
func (p *ruleParser) operand(out *ruleRoutes) (operandKind, error) {
	var k operandKind
	switch p.peek() {
	case "(":
		p.next()
		inner, err := p.operand(out)
		if err != nil {
			return k, err
		}
		if err := p.expect(")"); err != nil {
			return k, err
		}
		return operandKind{path: inner.path}, nil
	case "PathPrefix":
		p.next()
		if out.Path != "" {
			return k, fmt.Errorf("more than one PathPrefix(...)")
		}
		s, err := p.call(false)
		if err != nil {
			return k, err
		}
		if out.Path, err = route.ParsePath(s[0]); err != nil {
			return k, fmt.Errorf("PathPrefix(%q): %w", s[0], err)
		}
		return operandKind{path: true}, nil
	case "Host":
		if len(out.Hosts) > 0 {
			return k, fmt.Errorf("host matchers on both sides of \"&&\"")
		}
		for n := 0; ; n++ {
			if err := p.expect("Host"); err != nil {
				return k, err
			}
			items, err := p.call(true)
			if err != nil {
				return k, err
			}
			for _, s := range items {
				if strings.HasPrefix(s, "*.") {
					// dockroute's own host settings read "*." as a
					// wildcard; widening a claim the labels do not make
					// would route hosts Traefik itself never would.
					return k, fmt.Errorf("Host(%q): Traefik reads this as the literal name %q, which no request carries, not as a wildcard; to route every subdomain, set dockroute.host=%s instead of Traefik's labels", s, s, s)
				}
				h, err := route.ParseHost(s)
				if err != nil {
					return k, fmt.Errorf("Host(%q): %w", s, err)
				}
				out.Hosts = append(out.Hosts, h)
			}
			if p.peek() != "||" {
				return operandKind{list: n > 0}, nil
			}
			p.next()
		}
	}
	return k, fmt.Errorf("expected Host(...) or PathPrefix(...), found %s", describeToken(p.peek()))
}

// call reads "(" str { "," str } ")" after a matcher's name; many allows
// more than one string.
func (p *ruleParser) call(many bool) ([]string, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var items []string
	for {
		t := p.next()
		if t == "" || t[0] != '\'' {
			return nil, fmt.Errorf("expected a quoted string, found %s", describeToken(t))
		}
		items = append(items, t[1:])
		switch sep := p.next(); {
		case sep == ")":
			return items, nil
		case sep == "," && many:
		default:
			return nil, fmt.Errorf("expected \")\", found %s", describeToken(sep))
		}
	}
}
