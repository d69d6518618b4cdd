package route

import (
	"fmt"
	"slices"
	"strings"
)

// ValidName checks the name of a middleware set or an auth group:
// lowercase letters, digits and inner hyphens, as a DNS label, so it can
// be part of a Traefik middleware name and never carries syntax.
func ValidName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("%q: a name has 1 to 63 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' && i > 0 && i < len(name)-1
		if !ok {
			return fmt.Errorf("%q: a name has lowercase letters, digits and inner hyphens", name)
		}
	}
	return nil
}

// ParseMiddlewares reads a route's choice of middleware sets,
// comma-separated and in the order they run, and returns them joined by
// commas (a Backend stays comparable). Every name must be valid and appear
// once.
func ParseMiddlewares(s string) (string, error) {
	var names []string
	for item := range strings.SplitSeq(s, ",") {
		name := strings.TrimSpace(item)
		if err := ValidName(name); err != nil {
			return "", err
		}
		if slices.Contains(names, name) {
			return "", fmt.Errorf("%q is listed twice", name)
		}
		names = append(names, name)
	}
	return strings.Join(names, ","), nil
}

// Middlewares lists the sets of a route's Middlewares field.
func Middlewares(field string) []string {
	if field == "" {
		return nil
	}
	return strings.Split(field, ",")
}
