package contract

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
)

func TestParseTraefikRule(t *testing.T) {
	good := map[string]ruleRoutes{
		"Host(`a.test`)":                                         {Hosts: []string{"a.test"}},
		"Host(\"A.test\")":                                       {Hosts: []string{"a.test"}},
		"Host(`a.test`) || Host(`b.test`)":                       {Hosts: []string{"a.test", "b.test"}},
		"Host(`a.test`,`b.test`)":                                {Hosts: []string{"a.test", "b.test"}},
		"Host(`a.test`) && PathPrefix(`/api`)":                   {Hosts: []string{"a.test"}, Path: "/api"},
		"PathPrefix(`/api/`) && Host(`a.test`)":                  {Hosts: []string{"a.test"}, Path: "/api"},
		"(Host(`a.test`) || Host(`b.test`)) && PathPrefix(`/x`)": {Hosts: []string{"a.test", "b.test"}, Path: "/x"},
		"( Host(`a.test`) )":                                     {Hosts: []string{"a.test"}},
		"Host(`a.test`) && PathPrefix(`/`)":                      {Hosts: []string{"a.test"}},
	}
	for rule, want := range good {
		got, err := parseTraefikRule(rule)
		if err != nil || strings.Join(got.Hosts, ",") != strings.Join(want.Hosts, ",") || got.Path != want.Path {
			t.Errorf("%s: %+v %v, want %+v", rule, got, err, want)
		}
	}
	bad := map[string]string{
		"":                                   "expected Host",
		"HostRegexp(`.*`)":                   "unsupported matcher HostRegexp",
		"Host(`a.test`) || PathPrefix(`/x`)": "expected \"Host\"",
		"Host(`a.test`) || Host(`b.test`) && PathPrefix(`/x`)": "in parentheses",
		"PathPrefix(`/x`)":                 "every host",
		"Host(`a.test`) && Host(`b.test`)": "both sides",
		"!Host(`a.test`)":                  "unsupported \"!\"",
		"Host(`a.test`) && PathPrefix(`/x`) && PathPrefix(`/y`)": "unsupported \"&&\"",
		"Host(`a.test`":                           "expected \")\"",
		"Host(`a.test)":                           "unterminated",
		"Host(`{{ .Name }}`)":                     "Host(\"{{ .Name }}\")",
		"Host(`a.test`) && PathPrefix(`/a b`)":    "not allowed in path",
		"Host(`10.0.0.1`)":                        "IP address",
		"Host(`a.test`) && Path(`/x`)":            "unsupported matcher Path",
		"Host(`a.test`) && PathPrefix(`/x`,`/y`)": "expected \")\"",
		"Host(a.test)":                            "unsupported matcher a",
		// Traefik reads "*" in Host() literally: no request matches it.
		"Host(`*.a.test`)": "literal name",
	}
	for rule, want := range bad {
		if got, err := parseTraefikRule(rule); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %+v %v, want an error with %q", rule, got, err, want)
		}
	}
}

func TestParseTraefikLabels(t *testing.T) {
	spec, optedIn, err := ParseTraefikLabels(map[string]string{
		"traefik.enable":                                       "true",
		"traefik.docker.network":                               "proxy",
		"traefik.http.routers.app.rule":                        "Host(`app.example.com`) || Host(`www.app.example.com`)",
		"traefik.http.routers.app.entrypoints":                 "websecure",
		"traefik.http.routers.app.tls":                         "true",
		"traefik.http.routers.app.tls.certresolver":            "le",
		"traefik.http.routers.app.middlewares":                 "hsts, secure-headers",
		"traefik.http.routers.api.rule":                        "Host(`app.example.com`) && PathPrefix(`/api`)",
		"traefik.http.routers.api.entryPoints":                 "websecure",
		"traefik.http.routers.api.tls.certResolver":            "le",
		"traefik.http.routers.api.middlewares":                 "hsts,secure-headers",
		"traefik.http.routers.api.service":                     "api",
		"traefik.http.services.api.loadbalancer.server.port":   "9000",
		"traefik.http.services.api.loadbalancer.server.scheme": "h2c",
		"traefik.http.services.web.loadbalancer.server.port":   "8080",
		"traefik.http.services.web.loadbalancer.server.scheme": "h2c",
		"traefik.http.routers.app.service":                     "web",
		"com.example.unrelated":                                "x",
	})
	if err != nil || !optedIn {
		t.Fatalf("%v %v", optedIn, err)
	}
	want := []Target{{Host: "app.example.com", Port: 8080}, {Host: "app.example.com", Path: "/api", Port: 9000}, {Host: "www.app.example.com", Port: 8080}}
	if len(spec.Targets) != 3 || spec.Targets[0] != want[0] || spec.Targets[1] != want[1] || spec.Targets[2] != want[2] {
		t.Errorf("targets %+v, want %+v", spec.Targets, want)
	}
	if e := (route.Edge{EntryPoints: "websecure", TLS: route.TLSOn, CertResolver: "le"}); spec.Edge != e {
		t.Errorf("edge %+v, want %+v", spec.Edge, e)
	}
	if spec.Middlewares != "hsts,secure-headers" || spec.Network != "proxy" || spec.Proto != "h2c" {
		t.Errorf("middlewares %q network %q proto %q", spec.Middlewares, spec.Network, spec.Proto)
	}

	if _, optedIn, _ := ParseTraefikLabels(map[string]string{"traefik.enable": "false", "traefik.http.routers.a.rule": "Host(`a.test`)"}); optedIn {
		t.Error("traefik.enable=false opted in")
	}
	if _, optedIn, _ := ParseTraefikLabels(map[string]string{"traefik.docker.network": "x"}); optedIn {
		t.Error("no enable and no router opted in")
	}
	spec, _, err = ParseTraefikLabels(map[string]string{"traefik.http.routers.a.rule": "Host(`a.test`)"})
	if err != nil || len(spec.Targets) != 1 || !spec.Targets[0].Unset || spec.Edge != (route.Edge{}) {
		t.Errorf("a lone rule: %+v %v; want the container's only exposed port and global settings", spec, err)
	}

	refused := map[string]map[string]string{
		"traefik.http.middlewares.auth.basicauth.users": {"traefik.enable": "true", "traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.middlewares.auth.basicauth.users": "x:y"},
		"names another provider's middleware":           {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.routers.a.middlewares": "auth@file"},
		"traefik.http.services.s.loadbalancer.sticky":   {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.services.s.loadbalancer.sticky": "true"},
		"traefik.tcp.routers.a.rule":                    {"traefik.tcp.routers.a.rule": "HostSNI(`*`)", "traefik.http.routers.a.rule": "Host(`a.test`)"},
		"has no rule":                                   {"traefik.enable": "true", "traefik.http.routers.a.entrypoints": "web"},
		"differ in entrypoints":                         {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.routers.b.rule": "Host(`b.test`)", "traefik.http.routers.b.entrypoints": "web"},
		"names service nope":                            {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.routers.a.service": "nope"},
		"defines 2":                                     {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.services.x.loadbalancer.server.port": "1", "traefik.http.services.y.loadbalancer.server.port": "2"},
		"routed twice":                                  {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.routers.b.rule": "Host(`a.test`)", "traefik.http.routers.b.service": "y", "traefik.http.routers.a.service": "x", "traefik.http.services.x.loadbalancer.server.port": "1", "traefik.http.services.y.loadbalancer.server.port": "2"},
		"tls=false":                                     {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.routers.a.tls": "false", "traefik.http.routers.a.tls.certresolver": "le"},
		"is not true or false":                          {"traefik.enable": "yes please", "traefik.http.routers.a.rule": "Host(`a.test`)"},
		"want http, https or h2c":                       {"traefik.http.routers.a.rule": "Host(`a.test`)", "traefik.http.services.s.loadbalancer.server.scheme": "grpc"},
	}
	for want, labels := range refused {
		if _, optedIn, err := ParseTraefikLabels(labels); !optedIn || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v %v, want a refusal with %q", labels, optedIn, err, want)
		}
	}
}

// TestTraefikLabelsNeedTheSwitch: without --traefik-labels a container with
// only Traefik's labels is not opted in, and is told why; dockroute's own
// settings win over Traefik's when both are set.
func TestTraefikLabelsNeedTheSwitch(t *testing.T) {
	c := Container{ID: "c1", Name: "app", State: "running", Exposed: []string{"80/tcp"},
		Networks: Networks{{Network: "bridge", Addr: netip.MustParseAddr("172.17.0.9")}},
		Labels:   map[string]string{"traefik.enable": "true", "traefik.http.routers.a.rule": "Host(`a.test`)"}}
	if v := Decide(c, Options{}); v.Routed() || v.Code != "not_opted_in" {
		t.Fatalf("without the switch: %+v", v)
	}
	v := Decide(c, Options{TraefikLabels: true})
	if !v.Routed() || v.Backends[0].Host != "a.test" || v.Backends[0].Server != "172.17.0.9:80" {
		t.Fatalf("with the switch: %+v", v)
	}
	c.Labels["dockroute.host"] = "own.test"
	if v := Decide(c, Options{TraefikLabels: true}); !v.Routed() || v.Backends[0].Host != "own.test" {
		t.Fatalf("dockroute.host beside Traefik's labels: %+v", v)
	}
	c.Labels["dockroute.host"] = ""
	delete(c.Labels, "dockroute.host")
	c.Labels["dockroute.enable"] = "false"
	if v := Decide(c, Options{TraefikLabels: true}); v.Routed() {
		t.Fatalf("dockroute.enable=false: %+v", v)
	}
}
