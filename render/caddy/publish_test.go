package caddy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// besideUser starts Caddy with a user's server and a publisher whose
// server listens at addr.
func besideUser(t *testing.T, bin string) (p *Publisher, log *caddytest.Buffer, addr string) {
	t.Helper()
	c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
	port := caddytest.FreePort(t)
	p, log = newPublisher(t, c, port)
	return p, log, fmt.Sprintf("127.0.0.1:%d", port)
}

func newPublisher(t *testing.T, c *caddytest.Caddy, listenPort int) (*Publisher, *caddytest.Buffer) {
	t.Helper()
	admin, err := NewAdmin(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	log := &caddytest.Buffer{}
	return NewPublisher(admin, Options{ID: "dockroute", Listen: []string{fmt.Sprintf("127.0.0.1:%d", listenPort)}}, slog.New(slog.NewTextHandler(log, nil))), log
}

// backend is a local HTTP server standing in for a container.
func backend(t *testing.T, name string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", name, r.Host) }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func table(routes map[string][]string) route.Table {
	var bs []route.Backend
	for h, addrs := range routes {
		for _, a := range addrs {
			bs = append(bs, route.Backend{Host: h, Server: a})
		}
	}
	return route.Build(bs)
}

// withoutOurs returns Caddy's whole config with dockroute's server removed.
func withoutOurs(t *testing.T, c *caddytest.Caddy) map[string]any {
	t.Helper()
	raw, err := c.Config("/config/")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.Unmarshal(raw, &cfg)
	if servers, ok := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any); ok {
		delete(servers, "dockroute")
	}
	return cfg
}

// answers sends n requests for host to addr (as caddytest.GetAnswered:
// they follow loads) and counts them by status and the first word of the
// body (which backend answered).
func answers(t *testing.T, addr, host string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		status, body, err := caddytest.GetAnswered(addr, host, "/")
		if err != nil {
			t.Fatalf("GET %s via %s: %v", host, addr, err)
		}
		first, _, _ := strings.Cut(body, " ")
		seen[fmt.Sprintf("%d %s", status, strings.TrimSpace(first))]++
	}
	return seen
}

func TestPublishBesideUserConfig(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		userPort, ourPort := caddytest.FreePort(t), caddytest.FreePort(t)
		c := caddytest.Start(t, bin, caddytest.UserConfig(userPort))
		before := withoutOurs(t, c)
		p, _ := newPublisher(t, c, ourPort)
		ctx := context.Background()
		ours := fmt.Sprintf("127.0.0.1:%d", ourPort)

		a, b := backend(t, "a"), backend(t, "b")
		if err := p.Publish(ctx, table(map[string][]string{"app.test": {a, b}})); err != nil {
			t.Fatal(err)
		}
		if got := answers(t, ours, "app.test", 10); got["200 a"] != 5 || got["200 b"] != 5 {
			t.Fatalf("two replicas answered %v, want 5 each (round robin)", got)
		}
		if got := answers(t, ours, "other.test", 1); got["404 no"] != 1 {
			t.Fatalf("unrouted host answered %v, want 404", got)
		}

		// Many pushes, one per table change; then the same table again,
		// which must cost Caddy nothing.
		for i := range 20 {
			tbl := table(map[string][]string{"app.test": {a}, fmt.Sprintf("n%d.test", i): {b}})
			if err := p.Publish(ctx, tbl); err != nil {
				t.Fatal(err)
			}
		}
		writes := c.Writes()
		if err := p.Publish(ctx, table(map[string][]string{"app.test": {a}, "n19.test": {b}})); err != nil {
			t.Fatal(err)
		}
		if c.Writes() != writes || p.Writes() != 21 {
			t.Fatalf("caddy saw %d→%d writes, publisher counts %d: an unchanged table must not be pushed", writes, c.Writes(), p.Writes())
		}
		if after := withoutOurs(t, c); !reflect.DeepEqual(before, after) {
			t.Fatalf("the user's config changed:\nbefore %v\nafter  %v", before, after)
		}
		if _, body, _ := caddytest.Get(fmt.Sprintf("127.0.0.1:%d", userPort), "x", "/"); body != "user says hi" {
			t.Fatalf("the user's route answers %q", body)
		}
	})
}

// TestPublishIntoEmptyCaddy starts from a Caddy with nothing but its admin
// endpoint, over a unix socket as a locked-down setup would use.
func TestPublishIntoEmptyCaddy(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		sock := filepath.Join(t.TempDir(), "admin.sock")
		c := caddytest.Start(t, bin, map[string]any{"admin": map[string]any{"listen": "unix/" + sock}})
		port := caddytest.FreePort(t)
		p, _ := newPublisher(t, c, port)
		if err := p.Publish(context.Background(), table(map[string][]string{"app.test": {backend(t, "a")}})); err != nil {
			t.Fatal(err)
		}
		if got := answers(t, fmt.Sprintf("127.0.0.1:%d", port), "app.test", 1); got["200 a"] != 1 {
			t.Fatalf("got %v", got)
		}
		if raw, _ := c.Config("/config/admin"); !strings.Contains(string(raw), sock) {
			t.Fatalf("admin block changed: %s", raw)
		}
	})
}

// TestCheckRestoresLostServer restarts Caddy with its original config, as a
// crash without --resume or a Caddyfile reload would leave it.
func TestCheckRestoresLostServer(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		userPort, ourPort := caddytest.FreePort(t), caddytest.FreePort(t)
		c := caddytest.Start(t, bin, caddytest.UserConfig(userPort))
		p, log := newPublisher(t, c, ourPort)
		ctx := context.Background()
		two := table(map[string][]string{"app.test": {backend(t, "a")}, "other.test": {backend(t, "b")}})
		if err := p.Publish(ctx, two); err != nil {
			t.Fatal(err)
		}
		c.Restart(t, caddytest.UserConfig(userPort))
		f, err := p.Check(ctx)
		if f.InSync || err != nil {
			t.Fatalf("Check after Caddy lost the server: %v %v, want false", f.InSync, err)
		}
		// Delivery counts every route as not run (it said "1 of the 2").
		if m := f.Missing; len(m) != 2 || !strings.Contains(m[0], "caddy lost dockroute's server") {
			t.Fatalf("what Caddy does not run, after losing the server: %q", m)
		}
		if err := p.Publish(ctx, table(map[string][]string{"app.test": {backend(t, "a")}})); err != nil {
			t.Fatal(err)
		}
		if f, err := p.Check(ctx); !f.InSync || err != nil {
			t.Fatalf("Check after publishing again: %v %v, want true", f.InSync, err)
		}
		if got := answers(t, fmt.Sprintf("127.0.0.1:%d", ourPort), "app.test", 1); got["200 a"] != 1 {
			t.Fatalf("after restart and check: %v", got)
		}
		if !strings.Contains(log.String(), "gone from caddy") {
			t.Fatalf("the restore was not logged:\n%s", log)
		}
		c.Kill()
		f, err = p.Check(ctx)
		if err == nil {
			t.Fatal("Check against a dead Caddy succeeded")
		}
		if m := f.Missing; len(m) != 1 || !strings.Contains(m[0], "admin API did not answer") {
			t.Fatalf("what a dead Caddy does not run: %q", m)
		}
	})
}

// hookTransport runs before() once, just before the first request whose
// method is method is sent: a concurrent writer slipping in between
// dockroute's read and its write.
type hookTransport struct {
	method string
	once   sync.Once
	before func()
}

func (h *hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == h.method {
		h.once.Do(h.before)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// loseAnswer sends the first request whose method is method, throws its
// answer away and reports the connection reset: Caddy applied the change,
// dockroute never heard.
type loseAnswer struct {
	method string
	lost   atomic.Bool
}

func (l *loseAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == l.method && l.lost.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, syscall.ECONNRESET
	}
	return resp, err
}

// TestLostAnswerIsAskedAgain: Caddy (2.6.2 seen in CI) replaces its admin
// server after a config load, and a change sent in that moment can be cut
// off, applied or not. dockroute sends it again under the same ETag; when
// the first was applied Caddy answers 412 and dockroute reads the config
// back and finds it done. The publish succeeds and the route is served.
func TestLostAnswerIsAskedAgain(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		p, _, addr := besideUser(t, bin)
		ctx := context.Background()
		if err := p.Publish(ctx, table(map[string][]string{"a.test": {backend(t, "a")}})); err != nil {
			t.Fatal(err)
		}
		lost := &loseAnswer{method: http.MethodPatch}
		p.admin.hc.Transport = lost
		if err := p.Publish(ctx, table(map[string][]string{"b.test": {backend(t, "b")}})); err != nil {
			t.Fatalf("publish with the PATCH's answer lost: %v", err)
		}
		if !lost.lost.Load() {
			t.Fatal("no PATCH was sent")
		}
		if got := answers(t, addr, "b.test", 1); got["200 b"] != 1 {
			t.Fatalf("b.test answered %v", got)
		}
	})
}

// TestConcurrentEditIsNotClobbered has a second writer change the config
// between dockroute's read and its write, both when dockroute creates its
// server (the other writer adds a server) and when it replaces it (the other
// writer edits dockroute's server). Caddy answers 412; dockroute re-reads and
// retries, the other writer's server survives, and the takeover of
// dockroute's own server is logged, not silent.
func TestConcurrentEditIsNotClobbered(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
		p, log := newPublisher(t, c, caddytest.FreePort(t))
		ctx := context.Background()
		other, _ := NewAdmin(c.Admin)
		hook := &hookTransport{method: http.MethodPut, before: func() {
			srv := fmt.Sprintf(`{"listen":["127.0.0.1:%d"],"routes":[]}`, caddytest.FreePort(t))
			if err := other.Send(ctx, http.MethodPut, "/config/apps/http/servers/other", []byte(srv), ""); err != nil {
				t.Errorf("concurrent writer: %v", err)
			}
		}}
		p.admin.hc.Transport = hook
		if err := p.Publish(ctx, table(map[string][]string{"app.test": {backend(t, "a")}})); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Config("/config/apps/http/servers/other"); err != nil {
			t.Fatalf("the concurrent writer's server was clobbered: %v", err)
		}

		p.admin.hc.Transport = &hookTransport{method: http.MethodPatch, before: func() {
			if err := other.Send(ctx, http.MethodPatch, "/id/dockroute/listen", []byte(`[":1"]`), ""); err != nil {
				t.Errorf("concurrent writer: %v", err)
			}
		}}
		if err := p.Publish(ctx, table(map[string][]string{"app2.test": {backend(t, "b")}})); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"changed concurrently", "changed by someone else"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		if raw, _ := c.Config("/id/dockroute/routes/0/match"); !strings.Contains(string(raw), "app2.test") {
			t.Fatalf("dockroute's server after the fight: %s", raw)
		}
	})
}

// TestRefusedRouteDoesNotBlockOthers hands Caddy a server with one route it
// refuses (a host listed twice, which Caddy's host matcher rejects) among
// good ones: the good ones are served, the refusal is logged with Caddy's
// reason and the route's hosts.
func TestRefusedRouteDoesNotBlockOthers(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		p, log, addr := besideUser(t, bin)
		tbl := table(map[string][]string{"a.test": {backend(t, "a")}, "b.test": {backend(t, "b")}, "c.test": {backend(t, "c")}})
		want := Render(tbl, p.opt)
		bad := want.Routes[1]
		bad.Match = []Match{{Host: []string{"bad.test", "bad.test"}}}
		want.Routes = append(want.Routes[:1], append([]Route{bad}, want.Routes[1:]...)...)
		if err := p.publish(context.Background(), want, nil); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"a", "b", "c"} {
			if got := answers(t, addr, h+".test", 1); got["200 "+h] != 1 {
				t.Errorf("%s.test answered %v", h, got)
			}
		}
		if !strings.Contains(log.String(), "caddy refused the route") || !strings.Contains(log.String(), "bad.test") || !strings.Contains(log.String(), "repeated") {
			t.Fatalf("refusal not logged with hosts and Caddy's reason:\n%s", log)
		}
	})
}

// TestServerRefusedKeepsCaddyAsItWas asks for a listener the user's server
// already has: Caddy refuses even the bare server, Publish fails (so the
// caller retries), and Caddy keeps the user's config.
func TestServerRefusedKeepsCaddyAsItWas(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		userPort := caddytest.FreePort(t)
		c := caddytest.Start(t, bin, caddytest.UserConfig(userPort))
		before := withoutOurs(t, c)
		p, _ := newPublisher(t, c, userPort)
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		err := p.Publish(context.Background(), table(map[string][]string{"a.test": {backend(t, "a")}}))
		if err == nil {
			t.Fatal("publishing on the user's listener succeeded")
		}
		if after := withoutOurs(t, c); !reflect.DeepEqual(before, after) {
			t.Fatalf("config changed: %v", after)
		}
		if _, body, _ := caddytest.Get(fmt.Sprintf("127.0.0.1:%d", userPort), "x", "/"); body != "user says hi" {
			t.Fatalf("the user's route answers %q", body)
		}
	})
}

// TestWildcardMatchesLikeTraefik: *.w.test matches one label, an exact host
// wins over it, and neither deeper names nor the bare domain match — the
// same answers traefik-oracle gives for the Traefik rendering.
func TestWildcardMatchesLikeTraefik(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.Start(t, bin, nil)
		port := caddytest.FreePort(t)
		p, _ := newPublisher(t, c, port)
		tbl := table(map[string][]string{"*.w.test": {backend(t, "wild")}, "x.w.test": {backend(t, "exact")}})
		if err := p.Publish(context.Background(), tbl); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for host, want := range map[string]string{"y.w.test": "200 wild", "Y.W.TEST": "200 wild", "x.w.test": "200 exact", "a.b.w.test": "404 no", "w.test": "404 no"} {
			if got := answers(t, addr, host, 1); got[want] != 1 {
				t.Errorf("%s answered %v, want %s", host, got, want)
			}
		}
	})
}

// recorder records the body of every config write sent to Caddy.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Body != nil {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		r.mu.Lock()
		r.writes = append(r.writes, string(body))
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestRefusalNeverPublishesLessThanAccepted: with a server Caddy accepted
// in place, a new table brings a new route, a changed route, a route Caddy
// refuses and a changed route whose new form Caddy refuses. While dockroute
// looks for the refused ones, no write may drop a route Caddy accepted
// before (before, the search began by pushing a server with no routes, and
// every host answered 404 meanwhile). At the end the good changes are
// served, the refused new route is left out, the refused change keeps its
// accepted form, and both refusals are logged with hosts and reason.
func TestRefusalNeverPublishesLessThanAccepted(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		p, log, addr := besideUser(t, bin)
		ctx := context.Background()
		a, b, cc := backend(t, "a"), backend(t, "b"), backend(t, "c")
		if err := p.Publish(ctx, table(map[string][]string{"a.test": {a}, "b.test": {b}, "c.test": {cc}})); err != nil {
			t.Fatal(err)
		}

		rec := &recorder{}
		p.admin.hc.Transport = rec
		want := Render(table(map[string][]string{"a.test": {a, backend(t, "a2")}, "b.test": {b}, "c.test": {cc}, "d.test": {backend(t, "d")}}), p.opt)
		for i, r := range want.Routes {
			if slices.Equal(r.Hosts(), []string{"b.test"}) { // b's new form: an upstream Caddy refuses
				changed := r
				changed.Handle = []Handler{{Handler: "reverse_proxy", Upstreams: []Upstream{{Dial: b}}, Transport: &Transport{Protocol: "no-such-transport"}}}
				want.Routes[i] = changed
			}
		}
		bad := Route{Match: []Match{{Host: []string{"bad.test", "bad.test"}}}, Handle: want.Routes[0].Handle, Terminal: true}
		want.Routes = append([]Route{bad}, want.Routes...)
		if err := p.publish(ctx, want, nil); err != nil {
			t.Fatal(err)
		}

		if len(rec.writes) < 3 {
			t.Fatalf("%d writes: no search happened", len(rec.writes))
		}
		for i, w := range rec.writes {
			for _, h := range []string{"a.test", "b.test", "c.test"} {
				if !strings.Contains(w, `"`+h+`"`) {
					t.Errorf("write %d of %d drops %s, which Caddy had accepted:\n%s", i+1, len(rec.writes), h, w)
				}
			}
		}
		if got := answers(t, addr, "a.test", 4); got["200 a"] != 2 || got["200 a2"] != 2 {
			t.Errorf("a.test's change not served: %v", got)
		}
		for h, want := range map[string]string{"b.test": "200 b", "c.test": "200 c", "d.test": "200 d", "bad.test": "404 no"} {
			if got := answers(t, addr, h, 1); got[want] != 1 {
				t.Errorf("%s answered %v, want %s", h, got, want)
			}
		}
		for _, s := range []string{"caddy refused the route; publishing the others without it", "bad.test", "caddy refused the route's new form; it keeps serving the form it accepted before", "b.test"} {
			if !strings.Contains(log.String(), s) {
				t.Errorf("log lacks %q:\n%s", s, log)
			}
		}
	})
}

// TestDefaultHostAndDownRoutes pushes a default host and a down route to
// each real Caddy: unknown hosts reach the default host's routes, path by
// path, after every host's own routes; a down route answers 503 with its
// page, Retry-After and no caching.
func TestDefaultHostAndDownRoutes(t *testing.T) {
	caddytest.Each(t, func(t *testing.T, bin string) {
		port := caddytest.FreePort(t)
		c := caddytest.Start(t, bin, nil)
		p, _ := newPublisher(t, c, port)
		opt := p.opt
		opt.DefaultHost = "home.test"
		p.SetOptions(opt)
		home, api, other := backend(t, "home"), backend(t, "api"), backend(t, "other")
		tbl := route.Build([]route.Backend{
			{Host: "home.test", Server: home},
			{Host: "home.test", Path: "/api", Server: api},
			{Host: "other.test", Server: other},
		})
		tbl.Routes = append(tbl.Routes, route.Route{Host: "down.test"}) // as Recent keeps it
		if err := p.Publish(context.Background(), tbl); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for _, tc := range []struct{ host, path, want string }{
			{"unknown.test", "/", "home unknown.test"},
			{"unknown.test", "/api/x", "api unknown.test"},
			{"unknown.test", "/apix", "home unknown.test"},
			{"other.test", "/api/x", "other other.test"},
			{"home.test", "/api", "api home.test"},
		} {
			if status, body, err := caddytest.Get(addr, tc.host, tc.path); status != 200 || body != tc.want {
				t.Errorf("%s%s: %d %q %v, want %q", tc.host, tc.path, status, body, err, tc.want)
			}
		}
		req, _ := http.NewRequest("GET", "http://"+addr+"/x", nil)
		req.Host = "down.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(body), "No container serves down.test right now") ||
			resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("down route: %d %v %q", resp.StatusCode, resp.Header, body)
		}
	})
}
