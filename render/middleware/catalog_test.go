package middleware

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
)

const sampleFile = `middlewares:
  secure-headers:
    traefik:
      - headers: {frameDeny: true, customResponseHeaders: {X-Served-By: dockroute}}
    caddy:
      - handler: headers
        response: {set: {X-Frame-Options: [DENY]}}
  sso:
    traefik: authelia@file
  caddy-only:
    caddy: {handler: vars}
  Bad_Name: {traefik: [a@file]}
  hsts: {traefik: [a@file]}
  typo:
    traefik: [{headers: {frameDenied: true}}]
  tmpl:
    traefik: [{headers: {customResponseHeaders: {X: "{{ .Env }}"}}}]
  proxy:
    caddy: [{handler: reverse_proxy}]
  empty: {}
  ref:
    traefik: ["no-provider"]
`

func TestParse(t *testing.T) {
	c, problems, err := Parse([]byte(sampleFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); strings.Join(got, " ") != "caddy-only secure-headers sso" {
		t.Fatalf("sets %v", got)
	}
	want := map[string]string{
		"Bad_Name": "lowercase letters",
		"hsts":     "built-in",
		"typo":     `unknown field "frameDenied"`,
		"tmpl":     `"{{" is not allowed`,
		"proxy":    "reverse_proxy is dockroute's own",
		"empty":    "defines nothing",
		"ref":      `"name@provider"`,
	}
	if len(problems) != len(want) {
		t.Fatalf("problems %v", problems)
	}
	for _, p := range problems {
		if !strings.Contains(p.Reason, want[p.Name]) {
			t.Errorf("%s: reason %q, want it to say %q", p.Name, p.Reason, want[p.Name])
		}
	}
	s, _ := c.Lookup("secure-headers")
	if len(s.Traefik) != 1 || string(s.Traefik[0].Def) != `{"headers":{"customResponseHeaders":{"X-Served-By":"dockroute"},"frameDeny":true}}` {
		t.Errorf("traefik part %s", s.Traefik[0].Def)
	}
	if len(s.Caddy) != 1 || string(s.Caddy[0]) != `{"handler":"headers","response":{"set":{"X-Frame-Options":["DENY"]}}}` {
		t.Errorf("caddy part %s", s.Caddy)
	}

	for name, out := range map[string]string{
		"secure-headers/traefik": "", "secure-headers/caddy": "", "sso/traefik": "", "hsts/caddy": "", "www-redirect/traefik": "",
		"sso/caddy":          `"sso" has no caddy definition`,
		"caddy-only/traefik": `"caddy-only" has no traefik definition`,
		"typo/traefik":       `"typo" was skipped when the middlewares file was loaded: line 15: headers: unknown field`,
		"nope/caddy":         `"nope" is not defined: define it in the middlewares file`,
	} {
		set, output, _ := strings.Cut(name, "/")
		err := c.Check(set, output)
		if out == "" && err != nil || out != "" && (err == nil || !strings.Contains(err.Error(), out)) {
			t.Errorf("Check(%s): %v, want %q", name, err, out)
		}
	}
	var none *Catalog
	if none.Check("hsts", "caddy") != nil || none.Check("x", "caddy") == nil {
		t.Error("a nil catalog knows the built-ins only")
	}
}

func TestParseRefusesWholeFile(t *testing.T) {
	for data, want := range map[string]string{
		"middlewares: [":          "did not find",
		"middleware:\n  a: {}":    `unknown key "middleware"`,
		"- a":                     "want a mapping",
		"middlewares: [a, b]":     "want a mapping of names",
		"middlewares:\n  a: {}\n": "",
	} {
		_, _, err := Parse([]byte(data))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("Parse(%q) err = %v, want %q", data, err, want)
		}
	}
	for _, empty := range []string{"", "middlewares:", "# nothing\n"} {
		if c, _, err := Parse([]byte(empty)); err != nil || len(c.Names()) != 0 {
			t.Errorf("Parse(%q): %v %v", empty, c.Names(), err)
		}
	}
}

// FuzzParse: whatever the file, Parse does not panic, and every set it
// keeps has a valid name, Traefik definitions that are JSON objects of one
// known type with no template text, and Caddy handlers that name one.
// Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse(data)
		if err != nil {
			return
		}
		for _, name := range c.Names() {
			if route.ValidName(name) != nil || IsBuiltin(name) {
				t.Fatalf("kept set %q", name)
			}
			s, _ := c.Lookup(name)
			for _, m := range s.Traefik {
				if m.Ref != "" {
					if validRef(m.Ref) != nil {
						t.Fatalf("kept reference %q", m.Ref)
					}
					continue
				}
				var obj map[string]json.RawMessage
				if json.Unmarshal(m.Def, &obj) != nil || len(obj) != 1 || bytes.Contains(m.Def, []byte("{{")) {
					t.Fatalf("kept definition %s", m.Def)
				}
				for typ := range obj {
					if _, _, ok := traefikTypes.lookup(typ); !ok {
						t.Fatalf("kept type %q", typ)
					}
				}
			}
			for _, h := range s.Caddy {
				var obj struct{ Handler string }
				if json.Unmarshal(h, &obj) != nil || obj.Handler == "" || obj.Handler == "reverse_proxy" {
					t.Fatalf("kept handler %s", h)
				}
			}
		}
	})
}
