//go:build e2e

package contract

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// TestSeedsLoadInTraefik renders every accepted seed of FuzzParseSpec and
// has Traefik's own loader and router take it: exit 0, and every target
// reaches its router.
func TestSeedsLoadInTraefik(t *testing.T) {
	files, _ := filepath.Glob("testdata/fuzz/FuzzParseSpec/*")
	accepted := 0
	for _, f := range files {
		in := readSeed(t, f)
		spec, optedIn, err := in.parse()
		if !optedIn || err != nil {
			continue
		}
		accepted++
		table, out := renderBoth(t, spec)
		checkInTraefik(t, f, t.TempDir(), table, out)
	}
	if accepted < 3 {
		t.Fatalf("only %d seeds are accepted requests; the corpus should hold good ones too", accepted)
	}
}

// checkInTraefik writes seed's Traefik rendering out into dir and has
// Traefik's own loader and router take it: every route's host and path
// reach its router.
func checkInTraefik(t *testing.T, seed, dir string, table route.Table, out []byte) {
	t.Helper()
	path := filepath.Join(dir, "dockroute.yml")
	os.WriteFile(path, out, 0o644)
	var reqs []string
	for _, r := range table.Routes {
		reqs = append(reqs, strings.Replace(r.Host, "*", "x", 1)+r.Path+"/y")
	}
	routes := traefiktest.Check(t, path, reqs...)
	for i, r := range table.Routes {
		if got := routes[reqs[i]].Router; got != traefik.Name(r.Host, r.Path) {
			t.Errorf("%s: %s reaches %q in Traefik", seed, reqs[i], got)
		}
	}
}

// TestTraefikLabelSeedsLoad renders every accepted FuzzTraefikLabels seed
// and has the real proxies take it: Traefik's own loader and router (each
// target reaches its router) and every Caddy's validate.
func TestTraefikLabelSeedsLoad(t *testing.T) {
	files, _ := filepath.Glob("testdata/fuzz/FuzzTraefikLabels/*")
	accepted := 0
	for _, f := range files {
		vals := readSeedValues(t, f, 4)
		spec, _, err := labelInput{vals[0], vals[1], vals[2], vals[3]}.parse()
		if err != nil || !allowed(spec) {
			continue
		}
		accepted++
		table, out := renderBoth(t, spec)
		dir := t.TempDir()
		checkInTraefik(t, f, dir, table, out)
		caddyConfig := filepath.Join(dir, "caddy.json")
		os.WriteFile(caddyConfig, []byte(`{"apps":{"http":{"servers":{"d":`+string(caddy.Render(table, caddyFuzzOptions).JSON())+`}}}}`), 0o644)
		for _, bin := range caddytest.Binaries(t) {
			if out, err := exec.Command(bin, "validate", "--config", caddyConfig).CombinedOutput(); err != nil {
				t.Errorf("%s: %s refuses the rendering: %v\n%s", f, bin, err, out)
			}
		}
	}
	if accepted < 4 {
		t.Fatalf("only %d seeds are accepted; the corpus should hold good ones too", accepted)
	}
}
