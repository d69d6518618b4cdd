package docker

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		optedIn bool
		hosts   []string
		port    uint16
		errHas  string
		notes   int
	}{
		{name: "not opted in", env: []string{"PATH=/bin", "PORT=8080"}},
		{name: "defaults to port 80", env: []string{"VIRTUALHOST=a.local"}, optedIn: true, hosts: []string{"a.local"}, port: 80},
		{name: "port", env: []string{"VIRTUALHOST=a.local", "PORT=8080"}, optedIn: true, hosts: []string{"a.local"}, port: 8080},
		{name: "nginx-proxy names", env: []string{"VIRTUAL_HOST=a.local", "VIRTUAL_PORT=3000"}, optedIn: true, hosts: []string{"a.local"}, port: 3000},
		{name: "list with spaces, case, duplicates, empties", env: []string{"VIRTUALHOST= B.local ,a.local,, a.local "}, optedIn: true, hosts: []string{"a.local", "b.local"}, port: 80},
		{name: "wildcard", env: []string{"VIRTUALHOST=*.example.com"}, optedIn: true, hosts: []string{"*.example.com"}, port: 80},
		{name: "both names differ: primary wins, noted", env: []string{"VIRTUALHOST=a.local", "VIRTUAL_HOST=b.local"}, optedIn: true, hosts: []string{"a.local"}, port: 80, notes: 1},
		{name: "last value wins", env: []string{"VIRTUALHOST=a.local", "VIRTUALHOST=c.local"}, optedIn: true, hosts: []string{"c.local"}, port: 80},
		{name: "empty host", env: []string{"VIRTUALHOST="}, optedIn: true, errHas: "no host given"},
		{name: "only commas", env: []string{"VIRTUALHOST= , ,"}, optedIn: true, errHas: "no host given"},
		{name: "one bad host refuses all", env: []string{"VIRTUALHOST=a.local,b_c.local"}, optedIn: true, errHas: `"b_c.local"`},
		{name: "rule injection", env: []string{"VIRTUALHOST=a.com`) || Host(`b.com"}, optedIn: true, errHas: "not allowed"},
		{name: "template", env: []string{"VIRTUALHOST={{ env \"SECRET\" }}"}, optedIn: true, errHas: "not allowed"},
		{name: "newline", env: []string{"VIRTUALHOST=a.com\nrule: x"}, optedIn: true, errHas: "not allowed"},
		{name: "port zero", env: []string{"VIRTUALHOST=a.local", "PORT=0"}, optedIn: true, errHas: "PORT"},
		{name: "port too big", env: []string{"VIRTUALHOST=a.local", "VIRTUAL_PORT=70000"}, optedIn: true, errHas: "VIRTUAL_PORT"},
		{name: "port not a number", env: []string{"VIRTUALHOST=a.local", "PORT=http"}, optedIn: true, errHas: "not a port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, optedIn, err := ParseEnv(tc.env)
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
			if !slices.Equal(spec.Hosts, tc.hosts) || spec.Port != tc.port || len(spec.Notes) != tc.notes {
				t.Fatalf("spec = %+v, want hosts %v port %d and %d notes", spec, tc.hosts, tc.port, tc.notes)
			}
		})
	}
}

func running(env ...string) Container {
	return Container{
		ID: "0123456789abcdef", Name: "app", Env: env, Exposed: []string{"443/tcp", "8080/tcp"},
		State: "running", NetworkMode: "bridge",
		Networks: map[string]netip.Addr{"bridge": netip.MustParseAddr("172.17.0.5")},
	}
}

func TestDecide(t *testing.T) {
	twoNets := running("VIRTUALHOST=a.local", "PORT=8080")
	twoNets.NetworkMode = "front"
	twoNets.Networks = map[string]netip.Addr{"front": netip.MustParseAddr("10.1.0.2"), "back": netip.MustParseAddr("10.2.0.2")}
	with := func(c Container, f func(*Container)) Container { f(&c); return c }

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
		{name: "shared network namespace", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.NetworkMode = "container:abc" }), reason: "another container's network"},
		{name: "two networks, none chosen", c: twoNets, reason: "several networks (back, front)"},
		{name: "two networks, one chosen", c: twoNets, opt: Options{Network: "back"}, addr: "10.2.0.2:8080"},
		{name: "chosen network missing", c: twoNets, opt: Options{Network: "other"}, reason: `not on network "other" (dockroute --network); it is on: back, front`},
		{name: "no address", c: with(running("VIRTUALHOST=a.local", "PORT=8080"), func(c *Container) { c.Networks = map[string]netip.Addr{"bridge": {}} }), reason: "no IP address"},
		{name: "invalid request", c: running("VIRTUALHOST=a..local"), reason: "invalid request: VIRTUALHOST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Decide(tc.c, tc.opt)
			if tc.addr != "" {
				if !v.Routed() || v.Backend.Addr.String() != tc.addr {
					t.Fatalf("verdict %+v, want routed at %s", v, tc.addr)
				}
				return
			}
			if v.Routed() || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("verdict routed=%v reason %q, want refusal containing %q", v.Routed(), v.Reason, tc.reason)
			}
		})
	}
}

// FuzzParseEnv checks that whatever a container puts in its environment,
// an accepted request holds only canonical hosts that are safe to render.
// Seeds live in testdata/fuzz/FuzzParseEnv.
func FuzzParseEnv(f *testing.F) {
	f.Fuzz(func(t *testing.T, host, alias, port string) {
		env := []string{"VIRTUALHOST=" + host, "VIRTUAL_HOST=" + alias, "PORT=" + port}
		spec, optedIn, err := ParseEnv(env)
		if !optedIn {
			t.Fatal("VIRTUALHOST is set, so the container is opted in")
		}
		if err != nil {
			return
		}
		if spec.Port == 0 || len(spec.Hosts) == 0 {
			t.Fatalf("accepted spec without port or hosts: %+v", spec)
		}
		for _, h := range spec.Hosts {
			if strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-*") != "" || strings.Contains(h[1:], "*") {
				t.Fatalf("accepted unsafe host %q", h)
			}
			if len(h) > 253 {
				t.Fatalf("accepted overlong host %q", h)
			}
		}
	})
}
