package contract

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/policy"
	"github.com/dockroute/dockroute/provider/route"
)

func TestParseSpec(t *testing.T) {
	type tg = Target
	tests := []struct {
		name    string
		env     []string
		labels  map[string]string
		optedIn bool
		targets []Target
		errHas  string
		notes   []string
	}{
		{name: "not opted in", env: []string{"PATH=/bin", "PORT=8080"}},
		{name: "defaults to port 80", env: []string{"VIRTUALHOST=a.local"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 80, Unset: true}}},
		{name: "explicit port 80 is not unset", env: []string{"VIRTUALHOST=a.local:80, b.local"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 80}, {Host: "b.local", Port: 80, Unset: true}}},
		{name: "port", env: []string{"VIRTUALHOST=a.local", "PORT=8080"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 8080}}},
		{name: "nginx-proxy names", env: []string{"VIRTUAL_HOST=a.local", "VIRTUAL_PORT=3000"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 3000}}},
		{name: "list with spaces, case, duplicates, empties", env: []string{"VIRTUALHOST= B.local ,a.local,, a.local "}, optedIn: true, targets: []tg{{Host: "a.local", Port: 80, Unset: true}, {Host: "b.local", Port: 80, Unset: true}}},
		{name: "wildcard", env: []string{"VIRTUALHOST=*.example.com"}, optedIn: true, targets: []tg{{Host: "*.example.com", Port: 80, Unset: true}}},
		{name: "both env names differ: primary wins, noted", env: []string{"VIRTUALHOST=a.local", "VIRTUAL_HOST=b.local"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 80, Unset: true}},
			notes: []string{`VIRTUALHOST="a.local" overrides VIRTUAL_HOST="b.local"`}},
		{name: "last value wins", env: []string{"VIRTUALHOST=a.local", "VIRTUALHOST=c.local"}, optedIn: true, targets: []tg{{Host: "c.local", Port: 80, Unset: true}}},
		{name: "labels alone", labels: map[string]string{"dockroute.host": "a.local", "dockroute.port": "9000"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 9000}}},
		{name: "labels beat env, noted", env: []string{"VIRTUALHOST=env.local", "PORT=80"}, labels: map[string]string{"dockroute.host": "label.local", "dockroute.port": "9000"}, optedIn: true,
			targets: []tg{{Host: "label.local", Port: 9000}},
			notes:   []string{`label dockroute.host="label.local" overrides VIRTUALHOST="env.local"`, `label dockroute.port="9000" overrides PORT="80"`}},
		{name: "several ports", env: []string{"VIRTUALHOST=web.local, api.local:8080, web.local/admin:9000", "PORT=3000"}, optedIn: true,
			targets: []tg{{Host: "api.local", Port: 8080}, {Host: "web.local", Port: 3000}, {Host: "web.local", Path: "/admin", Port: 9000}},
			notes:   []string{"PORT=3000 does not apply to api.local:8080, which names its own port", "PORT=3000 does not apply to web.local/admin:9000, which names its own port"}},
		{name: "a URL", env: []string{"VIRTUALHOST=http://a.test"}, optedIn: true, errHas: `item "http://a.test" is a URL: write the host (and path, and port) alone, as a.test`},
		{name: "a URL with a port", env: []string{"VIRTUALHOST=https://s.test:443/app/"}, optedIn: true, errHas: "alone, as s.test:443/app; how the proxy talks to the container is dockroute.proto"},
		{name: "default path and strip", env: []string{"VIRTUALHOST=a.local, b.local/other", "VIRTUAL_PATH=/api/", "VIRTUAL_PATH_STRIP=true"}, optedIn: true,
			targets: []tg{{Host: "a.local", Path: "/api", Port: 80, Strip: true, Unset: true}, {Host: "b.local", Path: "/other", Port: 80, Strip: true, Unset: true}}},
		{name: "path labels", labels: map[string]string{"dockroute.host": "a.local", "dockroute.path": "/api", "dockroute.strip": "1"}, optedIn: true,
			targets: []tg{{Host: "a.local", Path: "/api", Port: 80, Strip: true, Unset: true}}},
		{name: "disabled by label", env: []string{"VIRTUALHOST=a.local"}, labels: map[string]string{"dockroute.enable": "false"}},
		{name: "same host and path twice, other port", env: []string{"VIRTUALHOST=a.local:1,a.local:2"}, optedIn: true, errHas: "listed twice"},
		{name: "empty host", env: []string{"VIRTUALHOST="}, optedIn: true, errHas: "no host given"},
		{name: "only commas", env: []string{"VIRTUALHOST= , ,"}, optedIn: true, errHas: "no host given"},
		{name: "one bad host refuses all", env: []string{"VIRTUALHOST=a.local,b_c.local"}, optedIn: true, errHas: `"b_c.local"`},
		{name: "rule injection", env: []string{"VIRTUALHOST=a.com`) || Host(`b.com"}, optedIn: true, errHas: "not allowed"},
		{name: "path injection", env: []string{"VIRTUALHOST=a.com/x`) || Host(`b.com"}, optedIn: true, errHas: "not allowed"},
		{name: "template", env: []string{"VIRTUALHOST={{ env \"SECRET\" }}"}, optedIn: true, errHas: "not allowed"},
		{name: "proto", env: []string{"VIRTUALHOST=a.local", "PORT=8080", "VIRTUAL_PROTO=grpc"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 8080}}},
		{name: "middlewares and auth", labels: map[string]string{"dockroute.host": "a.local", "dockroute.middlewares": "hsts, auth-x", "dockroute.auth": "staff"}, optedIn: true, targets: []tg{{Host: "a.local", Port: 80, Unset: true}}},
		{name: "bad middleware name", labels: map[string]string{"dockroute.host": "a.local", "dockroute.middlewares": "hsts,a@file"}, optedIn: true, errHas: `dockroute.middlewares: "a@file": a name has lowercase letters`},
		{name: "middleware twice", labels: map[string]string{"dockroute.host": "a.local", "dockroute.middlewares": "hsts,hsts"}, optedIn: true, errHas: `"hsts" is listed twice`},
		{name: "bad auth group", labels: map[string]string{"dockroute.host": "a.local", "dockroute.auth": "Staff Users"}, optedIn: true, errHas: `dockroute.auth: "Staff Users"`},
		{name: "bad proto", env: []string{"VIRTUALHOST=a.local", "VIRTUAL_PROTO=fastcgi"}, optedIn: true, errHas: `"fastcgi": want http, https or h2c`},
		{name: "IPv4 literal", env: []string{"VIRTUALHOST=127.0.0.1"}, optedIn: true, errHas: "is an IP address, not a host name"},
		{name: "IPv4 literal with port", env: []string{"VIRTUALHOST=a.local, 10.0.0.1:8080"}, optedIn: true, errHas: "is an IP address, not a host name"},
		{name: "IPv6 literal", env: []string{"VIRTUALHOST=::1"}, optedIn: true, errHas: "is an IPv6 address, not a host name"},
		{name: "IPv6 literal in brackets with port", env: []string{"VIRTUALHOST=[::1]:8080"}, optedIn: true, errHas: "is an IPv6 address"},
		{name: "IPv6 literal with port", env: []string{"VIRTUALHOST=fd00::1:8080"}, optedIn: true, errHas: "is an IPv6 address"},
		{name: "newline", env: []string{"VIRTUALHOST=a.com\nb.com"}, optedIn: true, errHas: "not allowed"},
		{name: "item port bad", env: []string{"VIRTUALHOST=a.local:http"}, optedIn: true, errHas: "not a port"},
		{name: "port zero", env: []string{"VIRTUALHOST=a.local", "PORT=0"}, optedIn: true, errHas: "PORT"},
		{name: "port too big", env: []string{"VIRTUALHOST=a.local", "VIRTUAL_PORT=70000"}, optedIn: true, errHas: "VIRTUAL_PORT"},
		{name: "bad strip", labels: map[string]string{"dockroute.host": "a.local", "dockroute.strip": "maybe"}, optedIn: true, errHas: "dockroute.strip"},
		{name: "bad entrypoint", labels: map[string]string{"dockroute.host": "a.local", "dockroute.entrypoints": "web,we b"}, optedIn: true, errHas: "dockroute.entrypoints"},
		{name: "resolver without tls", labels: map[string]string{"dockroute.host": "a.local", "dockroute.tls": "false", "dockroute.certresolver": "le"}, optedIn: true, errHas: "needs TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, optedIn, err := ParseSpec(tc.env, tc.labels)
			if optedIn != tc.optedIn {
				t.Fatalf("optedIn = %v, want %v", optedIn, tc.optedIn)
			}
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !slices.Equal(spec.Targets, tc.targets) || !slices.Equal(spec.Notes, tc.notes) {
				t.Fatalf("spec = %+v\nwant targets %+v notes %q", spec, tc.targets, tc.notes)
			}
		})
	}
}

func TestParseSpecEdge(t *testing.T) {
	spec, _, err := ParseSpec(nil, map[string]string{"dockroute.host": "a.local", "dockroute.entrypoints": "websecure, web,web", "dockroute.certresolver": "le"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (route.Edge{EntryPoints: "web,websecure", TLS: route.TLSOn, CertResolver: "le"}); spec.Edge != want {
		t.Fatalf("edge %+v, want %+v", spec.Edge, want)
	}
}

func running(env ...string) Container {
	return Container{
		ID: "0123456789abcdef", Name: "app", Env: env, Exposed: []string{"443/tcp", "8080/tcp"},
		State: "running", NetworkMode: "bridge",
		Networks: Networks{{Network: "bridge", Addr: netip.MustParseAddr("172.17.0.5")}},
	}
}

func TestDecide(t *testing.T) {
	twoNets := running("VIRTUALHOST=a.local", "PORT=8080")
	twoNets.NetworkMode = "front"
	twoNets.Networks = Networks{{Network: "back", Addr: netip.MustParseAddr("10.2.0.2")}, {Network: "front", Addr: netip.MustParseAddr("10.1.0.2")}}
	with := func(c Container, f func(*Container)) Container { f(&c); return c }
	operator := Options{
		Middleware: func(name, host string) error {
			if name != "good" {
				return fmt.Errorf("no set %q for %s", name, host)
			}
			return nil
		},
		Auth: func(group string) error {
			if group != "staff" {
				return fmt.Errorf("no group %q", group)
			}
			return nil
		},
	}

	tests := []struct {
		name   string
		c      Container
		opt    Options
		addr   string // routed at this address, or
		reason string // refused with a reason containing this
	}{
		{name: "routed", c: running("VIRTUALHOST=a.local", "PORT=8080"), addr: "172.17.0.5:8080"},
		{name: "not opted in", c: running(), reason: "not opted in"},
		{name: "port not exposed names the exposed ports", c: running("VIRTUALHOST=a.local"), reason: "port 80 is not exposed (exposed: 443/tcp, 8080/tcp)"},
		{name: "no ports exposed", c: with(running("VIRTUALHOST=a.local"), func(c *Container) { c.Exposed = nil }), reason: "exposes no ports"},
		{name: "paused", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.State = "paused" }), reason: "paused"},
		{name: "exited", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.State = "exited" }), reason: "not running"},
		{name: "host network", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.NetworkMode = "host" }), reason: "host network"},
		{name: "shared network namespace", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.NetworkMode, c.Networks = "container:abc", nil }), reason: "another container's network"},
		{name: "in a pod", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.NetworkMode = "container:abc" }), addr: "172.17.0.5:8080"},
		{name: "in a pod, exposing nothing", c: with(running("VIRTUALHOST=a.local", "PORT=9000"), func(c *Container) { c.NetworkMode, c.Exposed = "container:abc", nil }), addr: "172.17.0.5:9000"},
		{name: "in a pod, no port named", c: with(running("VIRTUALHOST=a.local"), func(c *Container) { c.NetworkMode, c.Exposed = "container:abc", nil }), reason: "shares its pod's network"},
		{name: "two networks, none chosen", c: twoNets, reason: "several networks (back, front)"},
		{name: "two networks, one chosen", c: twoNets, opt: Options{Network: "back"}, addr: "10.2.0.2:8080"},
		{name: "chosen network missing", c: twoNets, opt: Options{Network: "other"}, reason: `not on network "other" (dockroute --network or the label dockroute.network); it is on: back, front`},
		{name: "no address", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Networks = Networks{{Network: "bridge"}} }), reason: "no IP address"},
		{name: "invalid request", c: running("VIRTUALHOST=a..local"), reason: "invalid request: VIRTUALHOST"},
		{name: "second target's port not exposed", c: running("VIRTUALHOST=a.local:8080,b.local:9090"), reason: "port 9090 is not exposed"},
		{name: "network label", c: with(twoNets, func(c *Container) { c.Labels = map[string]string{"dockroute.network": "front"} }), addr: "10.1.0.2:8080"},
		{name: "stopping", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Stopping = true }), reason: "stopping"},
		{name: "health starting", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Health = "starting" }), reason: "still starting"},
		{name: "unhealthy", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Health = "unhealthy" }), reason: "unhealthy"},
		{name: "healthy", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Health = "healthy" }), addr: "172.17.0.5:8080"},
		{name: "unhealthy, health ignored", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Health = "unhealthy" }), opt: Options{IgnoreHealth: true}, addr: "172.17.0.5:8080"},
		{name: "disabled", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Labels = map[string]string{"dockroute.enable": "false"} }), reason: "disabled by the label"},
		{name: "known middleware", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Labels = map[string]string{"dockroute.middlewares": "good"} }), opt: operator, addr: "172.17.0.5:8080"},
		{name: "unknown middleware", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Labels = map[string]string{"dockroute.middlewares": "good,bad"} }), opt: operator, reason: `dockroute.middlewares: no set "bad" for a.local`},
		{name: "unknown auth group", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Labels = map[string]string{"dockroute.auth": "nobody"} }), opt: operator, reason: `dockroute.auth: no group "nobody"`},
		{name: "bare top-level name", c: running("VIRTUALHOST=a.local,localhost", "PORT=8080"), reason: "localhost is reserved"},
		{name: "wildcard over a top-level name", c: running("VIRTUALHOST=*.test", "PORT=8080"), reason: "*.test is reserved"},
		{name: "wildcard under a domain", c: running("VIRTUALHOST=*.a.test", "PORT=8080"), addr: "172.17.0.5:8080"},
		{name: "too many routes", c: running("VIRTUALHOST="+manyHosts(101), "PORT=8080"), opt: Options{MaxRoutes: 100}, reason: "asks for 101 routes, more than one container may have (100"},
		{name: "as many routes as allowed", c: running("VIRTUALHOST="+manyHosts(100), "PORT=8080"), opt: Options{MaxRoutes: 100}, addr: "172.17.0.5:8080"},
		{name: "oversized label", c: with(running("PORT=8080"), func(c *Container) { c.Labels = map[string]string{"dockroute.host": manyHosts(2000)} }), reason: "label dockroute.host is 20889 bytes long, more than dockroute reads"},
		{name: "oversized env", c: running("VIRTUALHOST="+manyHosts(2000), "PORT=8080"), reason: "VIRTUALHOST is 20889 bytes long, more than dockroute reads"},
		{name: "known auth group", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Labels = map[string]string{"dockroute.auth": "staff"} }), opt: operator, addr: "172.17.0.5:8080"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Decide(tc.c, tc.opt)
			if tc.addr != "" {
				if !v.Routed() || v.Backends[0].Server != tc.addr {
					t.Fatalf("verdict %+v, want routed at %s", v, tc.addr)
				}
				return
			}
			if v.Code == "" || !slices.Contains(Codes, v.Code) {
				t.Errorf("refusal without a known code: %+v", v)
			}
			if v.Routed() || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("verdict routed=%v reason %q, want refusal containing %q", v.Routed(), v.Reason, tc.reason)
			}
		})
	}
}

// FuzzParseSpec checks that whatever a container puts in its labels and
// environment, an accepted request holds only canonical hosts and paths,
// and both renderers' outputs decode. Seeds live in
// testdata/fuzz/FuzzParseSpec; TestSeedsLoadInTraefik also runs each
// accepted seed through Traefik's own loader.
func FuzzParseSpec(f *testing.F) {
	f.Fuzz(func(t *testing.T, hostEnv, hostLabel, port, path, strip string) {
		spec, optedIn, err := specInput{hostEnv, hostLabel, port, path, strip}.parse()
		if !optedIn {
			t.Fatal("a host is set, so the container is opted in")
		}
		if err != nil {
			return
		}
		if len(spec.Targets) == 0 {
			t.Fatalf("accepted spec without targets: %+v", spec)
		}
		for _, tg := range spec.Targets {
			if h, err := route.ParseHost(tg.Host); err != nil || h != tg.Host {
				t.Fatalf("accepted non-canonical host %q", tg.Host)
			}
			if p, err := route.ParsePath(tg.Path); err != nil || p != tg.Path {
				t.Fatalf("accepted non-canonical path %q", tg.Path)
			}
			if tg.Port == 0 {
				t.Fatalf("accepted port 0: %+v", tg)
			}
		}
		renderBoth(t, spec)
	})
}

// Migrants from nginx-proxy and Traefik: with no port set, the only
// exposed port is routed (explain says why); other tools' settings that
// dockroute does not act on are named in one note, with what to use.
func TestMigrants(t *testing.T) {
	one := running("VIRTUAL_HOST=a.local")
	one.Exposed = []string{"3000/tcp"}
	v := Decide(one, Options{})
	if !v.Routed() || v.Backends[0].Server != "172.17.0.5:3000" || len(v.Info) != 1 || !strings.Contains(v.Info[0], "the only port the container exposes") {
		t.Fatalf("one exposed port: %+v", v)
	}
	if v := Decide(running("VIRTUAL_HOST=a.local"), Options{}); v.Routed() || !strings.Contains(strings.Join(v.Info, ""), "the container exposes 2 ports") {
		t.Fatalf("two exposed ports, none set: %+v", v)
	}
	if v := Decide(running("VIRTUAL_HOST=a.local:8080"), Options{}); len(v.Info) != 0 || v.Backends[0].Server != "172.17.0.5:8080" {
		t.Fatalf("an explicit port: %+v", v)
	}

	foreign := running("VIRTUAL_HOST=a.local", "PORT=8080", "LETSENCRYPT_HOST=a.local", "VIRTUAL_DEST=/x")
	foreign.Labels = map[string]string{"traefik.enable": "true", "caddy": "a.local"}
	v = Decide(foreign, Options{})
	if !v.Routed() || len(v.Notes) != 1 {
		t.Fatalf("foreign settings: %+v", v)
	}
	for _, want := range []string{"LETSENCRYPT_HOST: the proxy gets certificates", "VIRTUAL_DEST: dockroute.strip=true", "traefik.* labels", "caddy labels"} {
		if !strings.Contains(v.Notes[0], want) {
			t.Errorf("note %q lacks %q", v.Notes[0], want)
		}
	}
	notIn := running()
	notIn.Labels = map[string]string{"traefik.http.routers.x.rule": "Host(`a.local`)"}
	if v := Decide(notIn, Options{}); v.OptedIn || len(v.Notes) != 1 || !strings.Contains(v.Notes[0], "set dockroute.host") {
		t.Fatalf("a container with only Traefik labels: %+v", v)
	}
}

// TestIPFamily: on a dual-stack network auto and 4 route the IPv4
// address and 6 the IPv6 one; each family refuses a container without
// such an address, saying why.
func TestIPFamily(t *testing.T) {
	dual := running("VIRTUALHOST=a.local", "PORT=8080")
	dual.Networks = Networks{{Network: "dual", Addr: netip.MustParseAddr("172.20.0.2"), Addr6: netip.MustParseAddr("fd00::2")}}
	v6only := running("VIRTUALHOST=a.local", "PORT=8080")
	v6only.Networks = Networks{{Network: "v6", Addr: netip.MustParseAddr("fd00::3"), Addr6: netip.MustParseAddr("fd00::3")}}
	v4only := running("VIRTUALHOST=a.local", "PORT=8080")
	for _, tc := range []struct {
		c              Container
		family, server string
	}{
		{dual, "", "172.20.0.2:8080"}, {dual, "auto", "172.20.0.2:8080"}, {dual, "4", "172.20.0.2:8080"}, {dual, "6", "[fd00::2]:8080"},
		{v6only, "auto", "[fd00::3]:8080"}, {v6only, "6", "[fd00::3]:8080"}, {v6only, "4", "no IPv4 address"},
		{v4only, "6", "172.17.0.5:8080"}, {v4only, "4", "172.17.0.5:8080"},
	} {
		v := Decide(tc.c, Options{IPFamily: tc.family})
		got := v.Reason
		if v.Routed() {
			got = v.Backends[0].Server
		}
		if !strings.Contains(got, tc.server) {
			t.Errorf("family %q: %s, want %s", tc.family, got, tc.server)
		}
	}
}

// TestTLSPassthroughRequest: dockroute.tcp gives passthrough backends, alone
// or beside HTTP ones, never with a path or HTTP settings; the Caddy
// output refuses them.
func TestTLSPassthroughRequest(t *testing.T) {
	c := running("VIRTUALHOST=a.local", "PORT=8080")
	c.Labels = map[string]string{"dockroute.tcp": "a.local:443, *.db.local:443", "dockroute.auth": "staff", "dockroute.entrypoints": "websecure"}
	v := Decide(c, Options{})
	if len(v.Backends) != 3 {
		t.Fatalf("%+v", v)
	}
	var tcp []string
	for _, b := range v.Backends {
		if b.TCP {
			tcp = append(tcp, b.Host+" "+b.Server)
			if b.Auth != "" || b.Path != "" || b.Edge.EntryPoints != "websecure" || b.Edge.TLS != route.TLSDefault {
				t.Errorf("a passthrough backend carries HTTP settings: %+v", b)
			}
		} else if b.Auth != "staff" {
			t.Errorf("the HTTP backend lost its auth: %+v", b)
		}
	}
	if want := []string{"*.db.local 172.17.0.5:443", "a.local 172.17.0.5:443"}; !slices.Equal(tcp, want) {
		t.Errorf("passthrough backends %v, want %v", tcp, want)
	}
	only := running()
	only.Labels = map[string]string{"dockroute.tcp": "only.local:443"}
	if v := Decide(only, Options{}); !v.Routed() || !v.Backends[0].TCP {
		t.Errorf("dockroute.tcp alone opts in: %+v", v)
	}
	if v := Decide(only, Options{NoTCP: true}); v.Routed() || v.Code != "tcp_unsupported" {
		t.Errorf("the Caddy output: %+v", v)
	}
	only.Labels["dockroute.tcp"] = "only.local/x:443"
	if v := Decide(only, Options{}); v.Routed() || !strings.Contains(v.Reason, "no path") {
		t.Errorf("a path: %+v", v)
	}
}

// manyHosts is a VIRTUALHOST value of n hosts.
func manyHosts(n int) string {
	hs := make([]string, n)
	for i := range hs {
		hs[i] = fmt.Sprintf("h%d.test", i)
	}
	return strings.Join(hs, ",")
}

// TestDecideAsksTheOperator: every target of a container, and of a swarm
// service, goes through the operator's Admit with what a policy selects
// by (labels, networks, engine); its refusal refuses the whole request.
func TestDecideAsksTheOperator(t *testing.T) {
	var asked []string
	opt := Options{Engine: "edge-1", Admit: func(host, path string, who policy.Who) (Code, string) {
		asked = append(asked, fmt.Sprintf("%s%s %v %s %s", host, path, who.Networks, who.Labels["team"], who.Engine))
		if host == "theirs.test" {
			return CodeNotOwner, "theirs.test belongs to another team"
		}
		return "", ""
	}}
	c := running("VIRTUALHOST=mine.test/app, theirs.test", "PORT=8080")
	c.Labels = map[string]string{"team": "a"}
	v := Decide(c, opt)
	if v.Routed() || v.Code != "not_owner" || v.Reason != "theirs.test belongs to another team" {
		t.Errorf("verdict %+v; want not_owner", v)
	}
	if want := []string{"mine.test/app [bridge] a edge-1", "theirs.test [bridge] a edge-1"}; !slices.Equal(asked, want) {
		t.Errorf("asked %q, want %q", asked, want)
	}
	s := Service{ID: "s", Name: "svc", Env: []string{"VIRTUALHOST=theirs.test", "PORT=80"}, Labels: map[string]string{"team": "b"},
		VIPs: map[string]netip.Addr{"overlay": netip.MustParseAddr("10.0.9.2")}}
	if v := DecideService(s, opt); v.Code != "not_owner" {
		t.Errorf("a service's verdict %+v; want not_owner", v)
	}
	if last := asked[len(asked)-1]; last != "theirs.test [overlay] b edge-1" {
		t.Errorf("the service was asked as %q", last)
	}
}

// TestIdleRequest: dockroute.idle reaches the container's HTTP backends
// only when the daemon sleeps containers; otherwise, or beside a TLS
// passthrough route, it is noted and ignored. A bad value refuses the
// container, saying what is wanted.
func TestIdleRequest(t *testing.T) {
	c := running("VIRTUALHOST=a.local", "PORT=8080")
	c.Labels = map[string]string{"dockroute.idle": "15m"}
	v := Decide(c, Options{Sleep: true})
	if !v.Routed() || v.Backends[0].Idle != 15*time.Minute {
		t.Fatalf("with --sleep: %+v", v)
	}
	v = Decide(c, Options{})
	if !v.Routed() || v.Backends[0].Idle != 0 || !slices.ContainsFunc(v.Notes, func(n string) bool { return strings.Contains(n, "--sleep") }) {
		t.Errorf("without --sleep, the label is noted and ignored: %+v", v)
	}
	c.Labels["dockroute.tcp"] = "db.local:443"
	v = Decide(c, Options{Sleep: true})
	if !v.Routed() || slices.ContainsFunc(v.Backends, func(b route.Backend) bool { return b.Idle != 0 }) || len(v.Notes) == 0 {
		t.Errorf("beside a passthrough route: %+v", v)
	}
	for _, bad := range []string{"soon", "500ms", "-1m", ""} {
		c.Labels = map[string]string{"dockroute.idle": bad}
		if v := Decide(c, Options{Sleep: true}); v.Routed() || !strings.Contains(v.Reason, "dockroute.idle") || !strings.Contains(v.Reason, "at least 1s") {
			t.Errorf("dockroute.idle=%q: %+v", bad, v)
		}
	}
}

// FuzzIdleLabel: any dockroute.idle value either refuses the container,
// saying so, or gives every HTTP backend an idle time of at least MinIdle.
func FuzzIdleLabel(f *testing.F) {
	f.Fuzz(func(t *testing.T, idle string) {
		c := running("VIRTUALHOST=a.local", "PORT=8080")
		c.Labels = map[string]string{"dockroute.idle": idle}
		v := Decide(c, Options{Sleep: true})
		if !v.Routed() {
			if !strings.Contains(v.Reason, "dockroute.idle") {
				t.Fatalf("refused without naming the label: %q", v.Reason)
			}
			return
		}
		for _, b := range v.Backends {
			if b.Idle < MinIdle {
				t.Fatalf("dockroute.idle=%q gave %v", idle, b.Idle)
			}
		}
	})
}
