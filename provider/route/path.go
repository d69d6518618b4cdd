package route

import (
	"fmt"
	"strings"
)

// MaxPathLen bounds a path prefix; it also keeps the Traefik priorities of
// exact and wildcard hosts apart (see render/traefik).
const MaxPathLen = 1024

// ParsePath validates a path prefix and returns its canonical form: "" for
// the whole host ("" or "/"), otherwise "/a/b" without a trailing slash.
//
// Accepted characters are letters, digits and "-._~/" — the unreserved URL
// characters and the separator. That keeps a prefix meaning the same in
// Traefik's PathPrefix and Caddy's path matcher (where "*" and "%" are
// special) and, like hosts, unable to break out of a rule or a template.
// Prefixes match whole segments: /api matches /api and /api/x, not /apix.
func ParsePath(s string) (string, error) {
	if s == "" || s == "/" {
		return "", nil
	}
	if !strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("path %q must start with /", s)
	}
	if len(s) > MaxPathLen {
		return "", fmt.Errorf("path is %d characters long, more than %d", len(s), MaxPathLen)
	}
	p := strings.TrimSuffix(s, "/")
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~/", r)) {
			return "", fmt.Errorf("character %q is not allowed in path %q (letters, digits and -._~/ only)", r, s)
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("path %q has an empty, . or .. segment", s)
		}
	}
	return p, nil
}

// Within tells whether requests for path p can reach prefix q's route: q
// is the whole host, or p is q or a path under it, segment by segment, as
// both proxies match prefixes (/api covers /api/x, not /apix).
func Within(p, q string) bool {
	return q == "" || p == q || strings.HasPrefix(p, q+"/")
}

// ParseName validates a Traefik entrypoint or certificate resolver name.
func ParseName(s string) (string, error) {
	if s == "" || len(s) > 64 {
		return "", fmt.Errorf("name %q must be 1 to 64 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", fmt.Errorf("character %q is not allowed in name %q (letters, digits, - and _ only)", r, s)
		}
	}
	return s, nil
}
