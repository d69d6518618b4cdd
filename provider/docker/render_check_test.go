package docker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy"
	"github.com/dockroute/dockroute/render/traefik"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// specInput is one FuzzParseSpec input.
type specInput struct{ hostEnv, hostLabel, port, path, strip string }

func (in specInput) parse() (Spec, bool, error) {
	env := []string{"VIRTUALHOST=" + in.hostEnv, "PORT=" + in.port, "VIRTUAL_PATH=" + in.path}
	labels := map[string]string{"dockroute.strip": in.strip}
	if in.hostLabel != "" {
		labels["dockroute.host"] = in.hostLabel
	}
	return ParseSpec(env, labels)
}

// renderBoth turns an accepted spec into a table and both outputs, and
// checks what can be checked in-process: the Traefik YAML holds no template
// text and decodes; the Caddy JSON decodes into Caddy's shape with no
// unknown field.
func renderBoth(t testing.TB, spec Spec) (table route.Table, traefikYAML []byte) {
	var bs []route.Backend
	for _, tg := range spec.Targets {
		bs = append(bs, route.Backend{Name: "c", Host: tg.Host, Path: tg.Path, Strip: tg.Strip, Edge: spec.Edge,
			Server: netip.AddrPortFrom(netip.MustParseAddr("172.17.0.2"), tg.Port).String()})
	}
	table = route.Build(bs)
	traefikYAML = traefik.Render(table, traefik.Options{RedirectFrom: []string{"web"}})
	if bytes.Contains(traefikYAML, []byte("{{")) || bytes.Contains(traefikYAML, []byte("}}")) {
		t.Fatalf("template text in Traefik output:\n%s", traefikYAML)
	}
	var anyYAML map[string]any
	if err := yaml.Unmarshal(traefikYAML, &anyYAML); err != nil {
		t.Fatalf("Traefik output does not decode: %v\n%s", err, traefikYAML)
	}
	dec := json.NewDecoder(bytes.NewReader(caddy.Render(table, caddy.Options{ID: "d", Listen: []string{":80"}}).JSON()))
	dec.DisallowUnknownFields()
	var s caddy.Server
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("Caddy output does not decode: %v", err)
	}
	if len(s.Routes) != len(table.Routes)+1 {
		t.Fatalf("%d Caddy routes for %d table routes", len(s.Routes), len(table.Routes))
	}
	return table, traefikYAML
}

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
		path := filepath.Join(t.TempDir(), "dockroute.yml")
		os.WriteFile(path, out, 0o644)
		var reqs []string
		for _, r := range table.Routes {
			reqs = append(reqs, strings.Replace(r.Host, "*", "x", 1)+r.Path+"/y")
		}
		routes := traefiktest.Check(t, path, reqs...)
		for i, r := range table.Routes {
			if got := routes[reqs[i]].Router; got != traefik.Name(r.Host, r.Path) {
				t.Errorf("%s: %s reaches %q", f, reqs[i], got)
			}
		}
	}
	if accepted < 3 {
		t.Fatalf("only %d seeds are accepted requests; the corpus should hold good ones too", accepted)
	}
}

func readSeed(t *testing.T, path string) specInput {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vals []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "string("); ok {
			s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			vals = append(vals, s)
		}
	}
	if len(vals) != 5 {
		t.Fatalf("%s: %d values, want 5", path, len(vals))
	}
	return specInput{vals[0], vals[1], vals[2], vals[3], vals[4]}
}
