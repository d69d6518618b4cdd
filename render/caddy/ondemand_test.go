package caddy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPlanTLS(t *testing.T) {
	od := &OnDemand{Ask: "http://127.0.0.1:7000/tls-ask/tok"}
	anyName := `"subjects":["*.*","*.*.*","*.*.*.*","*.*.*.*.*","*.*.*.*.*.*","*.*.*.*.*.*.*","*.*.*.*.*.*.*.*","*.*.*.*.*.*.*.*.*","*.*.*.*.*.*.*.*.*.*"]`
	ours := `{"@id":"dr-on-demand","on_demand":true,` + anyName + `}`
	ask := `"on_demand":{"@id":"dr-ask","permission":{"module":"http","endpoint":"http://127.0.0.1:7000/tls-ask/tok"}}`
	for _, c := range []struct {
		name, cfg string
		od        *OnDemand
		askOnly   bool
		local     bool
		want      string // the TLS app to write; "" for none
		change    bool
		refused   bool
	}{
		{name: "a bare caddy run", cfg: `null`, od: od, change: true,
			want: `{"automation":{"policies":[` + ours + `],` + ask + `}}`},
		{name: "caddy 2.6 knows ask only", cfg: `{}`, od: od, askOnly: true, change: true,
			want: `{"automation":{"policies":[` + ours + `],"on_demand":{"@id":"dr-ask","ask":"http://127.0.0.1:7000/tls-ask/tok"}}}`},
		{name: "the local CA", cfg: `{"apps":{"tls":{"certificates":{"automate":["x.test"]}}}}`, od: &OnDemand{Ask: od.Ask, Issuer: IssuerInternal}, change: true,
			want: `{"certificates":{"automate":["x.test"]},"automation":{"policies":[{"@id":"dr-caddy-names","subjects":["x.test"]},{"@id":"dr-on-demand","on_demand":true,"issuers":[{"module":"internal"}],` + anyName + `}],` + ask + `}}`},
		{name: "a copy of the user's catch-all, just before it", od: od, change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[{"subjects":["a.test"]},{"issuers":[{"module":"acme","email":"me@example.com"}]}]}}}}`,
			want: `{"automation":{"policies":[{"subjects":["a.test"]},{"@id":"dr-on-demand","on_demand":true,"issuers":[{"module":"acme","email":"me@example.com"}],` + anyName + `},{"issuers":[{"module":"acme","email":"me@example.com"}]}],` + ask + `}}`},
		{name: "the names of the user's sites, as the user's catch-all has them", od: od, change: true,
			cfg: `{"apps":{"http":{"servers":{"user":{"routes":[{"match":[{"host":["b.example.com","a.example.com","app.localhost","10.0.0.1","taken.example.com"]}]}]}}},
				"tls":{"automation":{"policies":[{"subjects":["taken.example.com"]},{"issuers":[{"module":"acme","email":"me@example.com"}]}]}}}}`,
			want: `{"automation":{"policies":[{"subjects":["taken.example.com"]},
				{"@id":"dr-caddy-names","subjects":["a.example.com","b.example.com"],"issuers":[{"module":"acme","email":"me@example.com"}]},
				{"@id":"dr-on-demand","on_demand":true,"issuers":[{"module":"acme","email":"me@example.com"}],` + anyName + `},
				{"issuers":[{"module":"acme","email":"me@example.com"}]}],` + ask + `}}`},
		{name: "a local host routed", cfg: `{}`, od: od, local: true, change: true,
			want: `{"automation":{"policies":[{"@id":"dr-on-demand-local","on_demand":true,"issuers":[{"module":"internal"}],"subjects":["localhost","*.localhost","*.*.localhost","*.*.*.localhost","*.local","*.*.local","*.*.*.local","*.internal","*.*.internal","*.*.*.internal","*.home.arpa","*.*.home.arpa","*.*.*.home.arpa"]},` + ours + `],` + ask + `}}`},
		{name: "the last local host gone", od: od, change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[{"@id":"dr-on-demand-local","on_demand":true,"subjects":["*.localhost"]},` + ours + `],` + ask + `}}}}`,
			want: `{"automation":{"policies":[` + ours + `],` + ask + `}}`},
		{name: "subjects a policy of the user's names are left to it", od: od, change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[{"subjects":["*.*","*.*.*.*.*.*.*.*.*.*"]}]}}}}`,
			want: `{"automation":{"policies":[{"subjects":["*.*","*.*.*.*.*.*.*.*.*.*"]},{"@id":"dr-on-demand","on_demand":true,"subjects":["*.*.*","*.*.*.*","*.*.*.*.*","*.*.*.*.*.*","*.*.*.*.*.*.*","*.*.*.*.*.*.*.*","*.*.*.*.*.*.*.*.*"]}],` + ask + `}}`},
		{name: "a catch-all with an empty subjects list", od: od, change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[{"subjects":[],"issuers":[{"module":"internal"}]}]}}}}`,
			want: `{"automation":{"policies":[{"@id":"dr-on-demand","on_demand":true,"issuers":[{"module":"internal"}],` + anyName + `},{"subjects":[],"issuers":[{"module":"internal"}]}],` + ask + `}}`},
		{name: "after the user's policies with subjects", od: od, change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[{"subjects":["a.test"],"issuers":[{"module":"internal"}]}]}}}}`,
			want: `{"automation":{"policies":[{"subjects":["a.test"],"issuers":[{"module":"internal"}]},` + ours + `],` + ask + `}}`},
		{name: "already there", od: od,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[` + ours + `],` + ask + `}}}}`,
			want: `{"automation":{"policies":[` + ours + `],` + ask + `}}`},
		{name: "an earlier run's endpoint", od: od, change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[` + ours + `],"on_demand":{"@id":"dr-ask","permission":{"module":"http","endpoint":"http://127.0.0.1:6999/tls-ask/old"}}}}}}`,
			want: `{"automation":{"policies":[` + ours + `],` + ask + `}}`},
		{name: "the user's own endpoint", od: od, refused: true,
			cfg:  `{"apps":{"tls":{"automation":{"on_demand":{"ask":"http://127.0.0.1:5555/check"}}}}}`,
			want: `{"automation":{"on_demand":{"ask":"http://127.0.0.1:5555/check"}}}`},
		{name: "the user's own on-demand policy", od: od, refused: true, change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[` + ours + `,{"on_demand":true,"issuers":[{"module":"internal"}]}],` + ask + `}}}}`,
			want: `{"automation":{"policies":[{"on_demand":true,"issuers":[{"module":"internal"}]}]}}`},
		{name: "off: what an earlier run left is removed", change: true,
			cfg:  `{"apps":{"tls":{"automation":{"policies":[` + ours + `,{"issuers":[{"module":"internal"}]}],` + ask + `}}}}`,
			want: `{"automation":{"policies":[{"issuers":[{"module":"internal"}]}]}}`},
		{name: "off: a TLS app only dockroute's is deleted", change: true,
			cfg: `{"apps":{"tls":{"automation":{"policies":[` + ours + `],` + ask + `}}}}`},
		{name: "off: nothing to do", cfg: `{"apps":{"http":{}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := planTLS(decode(t, c.cfg), "dr", c.od, c.askOnly, c.local)
			got, _ := json.Marshal(plan.app)
			if c.want == "" && plan.app != nil || c.want != "" && !sameJSON(got, []byte(c.want)) {
				t.Errorf("TLS app\n got %s\nwant %s", got, c.want)
			}
			if plan.change != c.change || (plan.refused != "") != c.refused {
				t.Errorf("change %v, refused %q; want %v, %v", plan.change, plan.refused, c.change, c.refused)
			}
		})
	}
}

func TestCaddyNames(t *testing.T) {
	cfg := decode(t, `{"apps":{
		"http":{"servers":{
			"user":{"routes":[{"match":[{"host":["Shop.example.com","*.blog.example.com"]},{"path":["/x"]}]},{"match":[{"host":["{env.SITE}"]}]}]},
			"dr":{"@id":"dr","routes":[{"match":[{"host":["routed.test"]}]}]}}},
		"tls":{"certificates":{"automate":["mail.example.com"]}}}}`)
	got := caddyNames(cfg, "dr")
	want := map[string]bool{"shop.example.com": true, "*.blog.example.com": true, "mail.example.com": true}
	if len(got) != len(want) {
		t.Errorf("names %v, want %v", got, want)
	}
	for n := range want {
		if !got[n] {
			t.Errorf("names %v lack %s", got, n)
		}
	}
}

// TestApprover: Caddy may get a certificate for exactly the hosts routed,
// those --caddy-tls-allow names and those of Caddy's own config.
func TestApprover(t *testing.T) {
	a := &approver{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a.setTable(route.Build([]route.Backend{
		{Host: "plain.test", Server: "10.0.0.1:80"},
		{Host: "paths.test", Path: "/api", Server: "10.0.0.2:80"},
		{Host: "*.wild.test", Server: "10.0.0.3:80"},
		{Host: "pass.test", TCP: true, Server: "10.0.0.4:443"},
	}))
	a.set(&OnDemand{Ask: "http://127.0.0.1:7000/tls-ask/tok", Allow: []string{"spare.example.com", "*.ops.example.com"}})
	a.setCaddy(map[string]bool{"user.example.com": true})
	if !a.asks("/tls-ask/tok") || a.asks("/") || a.asks("/tls-ask/other") {
		t.Error("the ask's path is not told from the responder's other requests")
	}
	for name, want := range map[string]int{
		"plain.test": 200, "PLAIN.test.": 200, "paths.test": 200, "a.wild.test": 200,
		"spare.example.com": 200, "x.ops.example.com": 200, "user.example.com": 200,
		"wild.test": 403, "a.b.wild.test": 403, "pass.test": 403, "other.test": 403, "": 403,
		"ops.example.com": 403, "evil.plain.test": 403,
	} {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/tls-ask/tok?domain="+name, nil))
		if w.Code != want {
			t.Errorf("ask for %q: %d %s, want %d", name, w.Code, strings.TrimSpace(w.Body.String()), want)
		}
	}
	if a.set(nil); a.asks("/tls-ask/tok") || a.asks("") {
		t.Error("an ask path without on-demand TLS")
	}
}

// onDemandPublisher is a publisher for c whose plain hosts are looked up
// and get certificates on demand.
func onDemandPublisher(t *testing.T, c *caddytest.Caddy) (*Publisher, *caddytest.Buffer) {
	t.Helper()
	p, log := newPublisher(t, c, caddytest.FreePort(t))
	opt := p.Options()
	opt.AutoHTTPS, opt.NoRedirect = true, true // no redirecting server on :80
	opt.Lookup = &Lookup{Resolver: "udp/127.0.0.1:53", Hosts: "127.0.0.1:9", Refresh: time.Second}
	opt.OnDemand = &OnDemand{Ask: "http://127.0.0.1:9/tls-ask/tok"}
	p.SetOptions(opt)
	return p, log
}

// TestOnDemandBesideUsersOwn: a Caddy whose config has on-demand TLS of
// its own is left with it, and dockroute writes its plain hosts (automatic
// HTTPS gets their certificates).
func TestOnDemandBesideUsersOwn(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		cfg := caddytest.UserConfig(caddytest.FreePort(t))
		cfg["apps"].(map[string]any)["tls"] = map[string]any{"automation": map[string]any{"on_demand": map[string]any{"ask": "http://127.0.0.1:5555/check"}}}
		c := caddytest.Start(t, bin, cfg)
		before, _ := c.Config("/config/apps/tls")
		p, log := onDemandPublisher(t, c)
		if err := p.Publish(context.Background(), table(map[string][]string{"plain.test": {"10.0.0.1:80"}})); err != nil {
			t.Fatal(err)
		}
		if after, _ := c.Config("/config/apps/tls"); !sameJSON(before, after) {
			t.Errorf("the user's TLS app changed:\nbefore %s\nafter  %s", before, after)
		}
		raw, _ := c.Config("/id/dockroute")
		var s Server
		json.Unmarshal(raw, &s)
		if !s.Serves("plain.test", "") || slices.ContainsFunc(s.Routes, Route.looksUpHosts) {
			t.Errorf("the plain host is not written, or hosts are still looked up:\n%s", raw)
		}
		if !strings.Contains(log.String(), "on-demand TLS of its own") {
			t.Errorf("the log does not say why hosts are written:\n%s", log)
		}
	})
}

// noTrust keeps Caddy's local CA from installing its root certificate on
// this machine: the user's choice, in the user's config.
var noTrust = map[string]any{"certificate_authorities": map[string]any{"local": map[string]any{"install_trust": false}}}

// TestOnDemandKeptAndRemoved: dockroute's policy, removed by someone
// else, is found missing by the check and put back; a publisher without
// on-demand TLS (a restart without --caddy-tls) removes it, leaving the
// user's TLS settings as they were.
func TestOnDemandKeptAndRemoved(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		cfg := caddytest.UserConfig(caddytest.FreePort(t))
		user := map[string]any{"automation": map[string]any{"policies": []any{map[string]any{"issuers": []any{map[string]any{"module": "internal"}}}}}}
		cfg["apps"].(map[string]any)["tls"] = user
		cfg["apps"].(map[string]any)["pki"] = noTrust
		c := caddytest.Start(t, bin, cfg)
		before, _ := c.Config("/config/apps/tls")
		ctx := context.Background()
		p, _ := onDemandPublisher(t, c)
		tbl := table(map[string][]string{"plain.test": {"10.0.0.1:80"}})
		if err := p.Publish(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Config("/id/" + policyID("dockroute")); err != nil {
			t.Fatalf("no on-demand policy: %v", err)
		}
		if err := p.admin.Send(ctx, http.MethodDelete, "/id/"+policyID("dockroute"), nil, ""); err != nil {
			t.Fatal(err)
		}
		if f, err := p.Check(ctx); err != nil || f.InSync || len(f.Missing) == 0 {
			t.Fatalf("check after the policy was removed: %+v %v", f, err)
		}
		if err := p.Publish(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Config("/id/" + policyID("dockroute")); err != nil {
			t.Fatalf("the policy was not put back: %v", err)
		}

		plain, _ := newPublisher(t, c, caddytest.FreePort(t))
		if err := plain.Publish(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		if after, _ := c.Config("/config/apps/tls"); !sameJSON(before, after) {
			t.Errorf("without on-demand TLS, the TLS app is not the user's again:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// FuzzPlanTLS: whatever TLS app Caddy answers with, planning dockroute's
// part neither panics nor plans a config Caddy refuses for a name in two
// policies or two catch-alls, and planning again on the result changes
// nothing (one write, not one per check). Seeds: testdata/fuzz/FuzzPlanTLS.
func FuzzPlanTLS(f *testing.F) {
	f.Fuzz(func(t *testing.T, cfgJSON string, on, local bool) {
		var cfg any
		if json.Unmarshal([]byte(cfgJSON), &cfg) != nil {
			return
		}
		var od *OnDemand
		if on {
			od = &OnDemand{Ask: "http://127.0.0.1:7000/tls-ask/tok"}
		}
		plan := planTLS(cfg, "dr", od, false, local)
		raw, err := json.Marshal(plan.app)
		if err != nil {
			t.Fatalf("the planned TLS app does not encode: %v", err)
		}
		var app any
		json.Unmarshal(raw, &app)
		if plan.refused == "" && od != nil {
			policies, _ := dig(app, "automation", "policies").([]any)
			seen, catchAlls := map[string]bool{}, 0
			for _, p := range policies {
				subjects, _ := dig(p, "subjects").([]any)
				if _, ok := p.(map[string]any); ok && len(subjects) == 0 {
					catchAlls++
				}
				for _, s := range subjects {
					if s, ok := s.(string); ok && seen[s] && slices.Contains(append(slices.Clone(localSubjects), anySubjects...), s) {
						t.Fatalf("dockroute's subject %q is in two policies: %s", s, raw)
					} else if ok {
						seen[s] = true
					}
				}
			}
			if catchAlls > 1 {
				t.Skip("the user's config had two catch-alls already") // Caddy refuses it anyway
			}
		}
		root := map[string]any{"apps": map[string]any{}}
		if m, ok := cfg.(map[string]any); ok {
			if apps, ok := m["apps"].(map[string]any); ok {
				root["apps"] = apps
			}
		}
		if plan.app != nil {
			root["apps"].(map[string]any)["tls"] = app
		} else {
			delete(root["apps"].(map[string]any), "tls")
		}
		if again := planTLS(root, "dr", od, false, local); again.change {
			t.Fatalf("planning again changes the TLS app again:\nfirst  %s\nagain  %s", raw, mustJSON(t, again.app))
		}
	})
}

// TestOnDemandRefusedPublishesAll: when Caddy refuses dockroute's
// on-demand TLS settings, the routes are published all the same, every
// host written, and why is logged. A stand-in for Caddy's admin API: a
// real Caddy refuses only TLS settings whose fault lies in the user's
// config, which it would not have loaded in the first place.
func TestOnDemandRefusedPublishesAll(t *testing.T) {
	var mu sync.Mutex
	var server []byte
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/config/":
			w.Write([]byte(`{"apps":{"http":{"servers":{}}}}`))
		case r.URL.Path == "/config/apps/tls":
			http.Error(w, `{"error":"loading new config: tls: something in the user's policies"}`, http.StatusBadRequest)
		case r.Method == http.MethodPut && r.URL.Path == "/config/apps/http/servers/dockroute":
			server, _ = io.ReadAll(r.Body)
		case r.Method == http.MethodGet && r.URL.Path == "/id/dockroute" && server != nil:
			w.Write(server)
		default:
			http.Error(w, `{"error":"unknown object ID"}`, http.StatusNotFound)
		}
	}))
	defer admin.Close()
	a, err := NewAdmin(admin.URL)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	p := NewPublisher(a, Options{ID: "dockroute", Listen: []string{":443"}, AutoHTTPS: true,
		Lookup:   &Lookup{Resolver: "udp/127.0.0.1:53", Hosts: "127.0.0.1:9", Refresh: time.Second},
		OnDemand: &OnDemand{Ask: "http://127.0.0.1:9/tls-ask/tok"},
	}, slog.New(slog.NewTextHandler(&log, nil)))
	if err := p.Publish(context.Background(), table(map[string][]string{"plain.test": {"10.0.0.1:80"}})); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var s Server
	mu.Lock()
	json.Unmarshal(server, &s)
	mu.Unlock()
	if !s.Serves("plain.test", "") || slices.ContainsFunc(s.Routes, Route.looksUpHosts) {
		t.Errorf("the plain host is not written:\n%s", server)
	}
	if !strings.Contains(log.String(), "caddy refused dockroute's on-demand TLS settings") {
		t.Errorf("the log does not say why:\n%s", log.String())
	}
}
