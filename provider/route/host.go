// Package route holds the route table: the plain data every provider produces
// and every renderer consumes. Nothing in it talks to Docker, a proxy or a
// file; the table is a pure function of the backends given to Build.
package route

import (
	"fmt"
	"strings"
)

// MaxHostLen is the longest host name DNS can carry (RFC 1035 §2.3.4).
const MaxHostLen = 253

// ParseHost validates one host name as a user typed it and returns its
// canonical (lowercase) form.
//
// Accepted: RFC 1123 names (labels of 1–63 letters, digits and inner
// hyphens), and a wildcard "*." followed by such a name, which matches
// exactly one extra label, as a TLS wildcard certificate does and as both
// Traefik's HostRegexp rendering and Caddy's host matcher treat it.
//
// Everything else is refused. That is the safety boundary for the renderers:
// a valid host holds only [a-z0-9.-] and a leading "*.", so it can never
// close a Traefik rule's backtick, add a "||" clause, start a Go template
// action ("{{") that Traefik's file provider would execute, or break YAML or
// JSON quoting.
func ParseHost(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty host")
	}
	if len(s) > MaxHostLen {
		return "", fmt.Errorf("host is %d characters long, more than DNS allows (%d)", len(s), MaxHostLen)
	}
	// Lower-case only once every byte is ASCII: Unicode lower-cases some
	// letters to ASCII ones (the Kelvin sign to "k"), which would let a
	// name no browser sends pass for one it does.
	if i := strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 }); i >= 0 {
		r := []rune(s[i:])[0]
		return "", fmt.Errorf("host %q: character %q is not allowed in a host name (letters, digits, hyphens and dots only; write an internationalized name in its xn-- form)", s, r)
	}
	h := strings.ToLower(s)
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name = rest
	}
	if strings.HasSuffix(name, ".") {
		return "", fmt.Errorf("host %q ends with a dot; write it without the trailing dot", s)
	}
	labels := strings.Split(name, ".")
	for i, label := range labels {
		if err := checkLabel(label); err != nil {
			return "", fmt.Errorf("host %q, label %d: %w", s, i+1, err)
		}
	}
	if numeric(labels[len(labels)-1]) {
		return "", fmt.Errorf("%q is an IP address, not a host name: a route for it would receive every request sent to the proxy by that address; route a name", s)
	}
	return h, nil
}

// numeric tells whether a last label makes a name an IPv4 address to a
// browser (the WHATWG URL standard: a last label of decimal digits, or
// 0x and hex digits, as in 127.0.0.1, 127.1 or 0x7f.1). No top-level domain
// is numeric, so no real name is refused.
func numeric(label string) bool {
	digits := label
	if rest, ok := strings.CutPrefix(label, "0x"); ok {
		digits = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'f' {
				return '0'
			}
			return r
		}, rest)
	}
	return strings.Trim(digits, "0123456789") == ""
}

func checkLabel(l string) error {
	switch {
	case l == "":
		return fmt.Errorf("empty label (two dots in a row, or a leading dot)")
	case l == "*":
		return fmt.Errorf(`"*" is allowed only as the whole first label, as in *.example.com`)
	case len(l) > 63:
		return fmt.Errorf("label is %d characters long, more than 63", len(l))
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("character %q is not allowed in a host name (letters, digits, hyphens and dots only)", r)
		}
	}
	return nil
}

// IsWildcard tells whether a canonical host is a "*." wildcard.
func IsWildcard(host string) bool { return strings.HasPrefix(host, "*.") }
