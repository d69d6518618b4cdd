// Package traefiktest checks rendered configs with traefik-oracle, a small
// program built from Traefik v3's own file provider and router (see
// ../shared/tools/traefik-oracle beside the repository; make builds it and
// passes its path in DOCKROUTE_ORACLE). It is used by tests only.
package traefiktest

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/render/hold"
)

// Route is where Traefik sends one request: the router and service it picks
// and the service's servers, or Router "" for a 404.
type Route struct {
	Router, Service string
	Servers         []string
}

// Router is one router as Traefik loaded it.
type Router struct {
	Rule, Service string
	EntryPoints   []string
	Middlewares   []string
}

var routerLine = regexp.MustCompile(`^router (\S+) rule=(.*) service=(\S+) servers=\S* entrypoints=\[(.*?)\] middlewares=\[(.*?)\]$`)

// Routers loads path with Traefik's own code, fails the test unless it loads
// cleanly, and returns the routers by name.
func Routers(t testing.TB, path string) map[string]Router {
	t.Helper()
	out := run(t, path)
	routers := map[string]Router{}
	for line := range strings.SplitSeq(out, "\n") {
		if m := routerLine.FindStringSubmatch(line); m != nil {
			routers[m[1]] = Router{Rule: m[2], Service: m[3], EntryPoints: strings.Fields(m[4]), Middlewares: strings.Fields(m[5])}
		}
	}
	return routers
}

// Check loads path (a file or directory) with Traefik's own code and asks it
// where each of requests ("host" or "host/path") goes. The test fails unless
// Traefik loads the config without complaint. When DOCKROUTE_ORACLE is unset
// the test fails, unless DOCKROUTE_SKIP_ORACLE=1 says a human chose to skip.
func Check(t testing.TB, path string, requests ...string) map[string]Route {
	t.Helper()
	out := run(t, path, requests...)
	routes := map[string]Route{}
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(line, "route ")
		if !ok {
			continue
		}
		req, target, _ := strings.Cut(rest, " -> ")
		f := strings.Fields(target)
		switch {
		case target == "404":
			routes[req] = Route{}
		case len(f) == 3:
			routes[req] = Route{Router: f[0], Service: f[1], Servers: AppServers(strings.Split(f[2], ","))}
		case len(f) == 2: // a service without servers
			routes[req] = Route{Router: f[0], Service: f[1]}
		default:
			t.Fatalf("traefik-oracle: cannot read %q", line)
		}
	}
	return routes
}

func run(t testing.TB, path string, requests ...string) string {
	t.Helper()
	if !e2e {
		t.Skip(unitLane)
	}
	bin := os.Getenv("DOCKROUTE_ORACLE")
	if bin == "" {
		if os.Getenv("DOCKROUTE_SKIP_ORACLE") == "1" {
			t.Skip("DOCKROUTE_SKIP_ORACLE=1: Traefik oracle checks skipped")
		}
		t.Fatal("DOCKROUTE_ORACLE is not set: run the tests with `make test`, which builds ../shared/tools/traefik-oracle, or set DOCKROUTE_SKIP_ORACLE=1 to skip these checks")
	}
	out, err := exec.Command(bin, append([]string{path}, requests...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("traefik-oracle rejects %s: %v\n%s", path, err, out)
	}
	return string(out)
}

// Loads tells whether Traefik's own decoder accepts path, with what it
// said: for tests that show a config Traefik refuses.
func Loads(t testing.TB, path string) (string, bool) {
	t.Helper()
	bin := os.Getenv("DOCKROUTE_ORACLE")
	if bin == "" {
		run(t, path) // fails or skips with the usual message
	}
	out, err := exec.Command(bin, path).CombinedOutput()
	return string(out), err == nil && !strings.Contains(string(out), "DECODE ERROR")
}

// AppServers is servers without dockroute's holding endpoint, which every
// route's service lists beside the apps when requests are held (and alone
// when its host is down): what tests of where a host goes compare.
func AppServers(servers []string) []string {
	return slices.DeleteFunc(servers, func(s string) bool { return strings.Contains(s, hold.PathPrefix) })
}
