package middleware

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// sample is a value of kind f, with every field of a struct set, the field
// names spelled by spell.
func sample(f field, spell func(string) string) any {
	switch f.kind {
	case kBool:
		return true
	case kInt:
		return 1
	case kDuration:
		return "10s"
	case kStrings:
		return []string{"x"}
	case kStrMap:
		return map[string]string{"X-A": "b"}
	case kIntMap:
		return map[string]int{"500": 200}
	case kStruct:
		m := map[string]any{}
		for k, sub := range f.sub {
			m[spell(k)] = sample(sub, spell)
		}
		return m
	}
	return "x"
}

// writeWithAll writes a Traefik file with one middleware of every type,
// every field set, on one router.
func writeWithAll(t *testing.T, spell func(string) string) string {
	mws := map[string]any{}
	var names []string
	for typ, f := range traefikTypes {
		name := "m-" + strings.ToLower(typ)
		mws[name] = map[string]any{spell(typ): sample(f, spell)}
		names = append(names, name)
	}
	slices.Sort(names)
	doc := map[string]any{"http": map[string]any{
		"routers":     map[string]any{"r": map[string]any{"rule": "Host(`a.test`)", "service": "s", "middlewares": names}},
		"services":    map[string]any{"s": map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": "http://10.0.0.1"}}}}},
		"middlewares": mws,
	}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "all.yml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSchemaMatchesTraefik: every field of every type dockroute accepts
// loads in Traefik's own decoder, spelled as documented and in lowercase
// (Traefik ignores case, and so does the check); and what the check
// refuses, Traefik refuses too.
func TestSchemaMatchesTraefik(t *testing.T) {
	same := func(s string) string { return s }
	r := traefiktest.Routers(t, writeWithAll(t, same))
	if got := len(r["r"].Middlewares); got != len(traefikTypes) {
		t.Fatalf("router loaded with %d middlewares, want %d: %+v", got, len(traefikTypes), r)
	}
	traefiktest.Routers(t, writeWithAll(t, strings.ToLower))

	// Every sample also passes dockroute's own check.
	for typ, f := range traefikTypes {
		def, _ := yaml.Marshal(map[string]any{typ: sample(f, same)})
		c, problems, _ := Parse([]byte("middlewares:\n  x:\n    traefik:\n" + indent(string(def), 6)))
		if len(problems) > 0 || c.Check("x", "traefik") != nil {
			t.Errorf("%s: the check refuses its own sample: %v", typ, problems)
		}
	}
}

// An unknown field breaks Traefik's whole file: the oracle shows it, and
// the check refuses the entry first.
func TestUnknownFieldRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(path, []byte("http:\n  middlewares:\n    m:\n      headers:\n        frameDenied: true\n"), 0o644)
	if out, ok := traefiktest.Loads(t, path); ok {
		t.Fatalf("Traefik loads an unknown field; the schema check would be needless:\n%s", out)
	}
	_, problems, err := Parse([]byte("middlewares:\n  m:\n    traefik:\n      - headers: {frameDenied: true}\n"))
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0].Reason, `unknown field "frameDenied"`) {
		t.Fatalf("problems %v err %v", problems, err)
	}
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	lines[0] = pad[:n-2] + "- " + strings.TrimLeft(lines[0], " ")
	return strings.Join(lines, "\n") + "\n"
}
