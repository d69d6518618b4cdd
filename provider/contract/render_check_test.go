package contract

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy"
	mw "github.com/dockroute/dockroute/render/middleware"
	"github.com/dockroute/dockroute/render/traefik"
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
			Proto: spec.Proto, Middlewares: spec.Middlewares, Auth: spec.Auth,
			Server: netip.AddrPortFrom(netip.MustParseAddr("172.17.0.2"), tg.Port).String()})
	}
	table = route.Build(bs)
	traefikYAML = traefik.Render(table, traefik.Options{RedirectFrom: []string{"web"}, Middlewares: fuzzCatalog, InsecureUpstream: true})
	// "{{" opens a template action; "}}" alone is harmless (it ends the
	// JSON definitions of middlewares).
	if bytes.Contains(traefikYAML, []byte("{{")) {
		t.Fatalf("template text in Traefik output:\n%s", traefikYAML)
	}
	var anyYAML map[string]any
	if err := yaml.Unmarshal(traefikYAML, &anyYAML); err != nil {
		t.Fatalf("Traefik output does not decode: %v\n%s", err, traefikYAML)
	}
	dec := json.NewDecoder(bytes.NewReader(caddy.Render(table, caddyFuzzOptions).JSON()))
	var s struct{ Routes []json.RawMessage }
	if spec.Middlewares == "" && spec.Auth == "" {
		// Without the operator's raw handlers, every field is dockroute's.
		dec.DisallowUnknownFields()
		var server caddy.Server
		if err := dec.Decode(&server); err != nil {
			t.Fatalf("Caddy output does not decode: %v", err)
		}
		s.Routes = make([]json.RawMessage, len(server.Routes))
	} else if err := dec.Decode(&s); err != nil {
		t.Fatalf("Caddy output does not decode: %v", err)
	}
	if len(s.Routes) != len(table.Routes)+1 {
		t.Fatalf("%d Caddy routes for %d table routes", len(s.Routes), len(table.Routes))
	}
	return table, traefikYAML
}

func readSeed(t *testing.T, path string) specInput {
	vals := readSeedValues(t, path, 5)
	return specInput{vals[0], vals[1], vals[2], vals[3], vals[4]}
}

// readSeedValues reads a fuzz corpus file of n strings.
func readSeedValues(t *testing.T, path string, n int) []string {
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
	if len(vals) != n {
		t.Fatalf("%s: %d values, want %d", path, len(vals), n)
	}
	return vals
}

// fuzzCatalog is an operator's middlewares file for the fuzzers: a set
// defined for both proxies, beside the built-ins.
var fuzzCatalog = func() *mw.Catalog {
	c, problems, err := mw.Parse([]byte(`middlewares:
  secure-headers:
    traefik:
      - headers: {frameDeny: true}
    caddy:
      - {handler: headers, response: {set: {X-Frame-Options: [DENY]}}}
`))
	if err != nil || len(problems) > 0 {
		panic(fmt.Sprint(err, problems))
	}
	return c
}()

var caddyFuzzOptions = caddy.Options{ID: "d", Listen: []string{":80"}, Middlewares: fuzzCatalog, InsecureUpstream: true}

// allowed is what Decide's operator check lets through: sets the
// catalog defines for both outputs, and fit for every host.
func allowed(spec Spec) bool {
	for _, name := range route.Middlewares(spec.Middlewares) {
		for _, tg := range spec.Targets {
			for _, out := range []string{"traefik", "caddy"} {
				if fuzzCatalog.CheckRoute(name, out, tg.Host) != nil {
					return false
				}
			}
		}
	}
	return true
}

// labelInput is one FuzzTraefikLabels input: a router's rule,
// entrypoints and middlewares, and its service's scheme.
type labelInput struct{ rule, entryPoints, middlewares, scheme string }

func (in labelInput) parse() (Spec, bool, error) {
	labels := map[string]string{"traefik.enable": "true", "traefik.http.routers.r.rule": in.rule,
		"traefik.http.services.s.loadbalancer.server.port": "8080"}
	for k, v := range map[string]string{"entrypoints": in.entryPoints, "middlewares": in.middlewares} {
		if v != "" {
			labels["traefik.http.routers.r."+k] = v
		}
	}
	if in.scheme != "" {
		labels["traefik.http.services.s.loadbalancer.server.scheme"] = in.scheme
	}
	return ParseTraefikLabels(labels)
}

// FuzzTraefikLabels: any rule, entrypoints, middlewares and scheme either
// is refused with a reason or gives canonical targets whose rendering
// decodes in both outputs (TestTraefikLabelSeedsLoad loads the seeds in
// the real proxies).
func FuzzTraefikLabels(f *testing.F) {
	f.Fuzz(func(t *testing.T, rule, entryPoints, middlewares, scheme string) {
		spec, optedIn, err := labelInput{rule, entryPoints, middlewares, scheme}.parse()
		if !optedIn {
			t.Fatal("traefik.enable=true, so the container is opted in")
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a reason")
			}
			return
		}
		for _, tg := range spec.Targets {
			if h, err := route.ParseHost(tg.Host); err != nil || h != tg.Host {
				t.Fatalf("accepted non-canonical host %q", tg.Host)
			}
			if p, err := route.ParsePath(tg.Path); err != nil || p != tg.Path {
				t.Fatalf("accepted non-canonical path %q", tg.Path)
			}
		}
		if len(spec.Targets) == 0 {
			t.Fatalf("accepted labels without targets: %+v", spec)
		}
		if allowed(spec) {
			renderBoth(t, spec)
		}
	})
}
