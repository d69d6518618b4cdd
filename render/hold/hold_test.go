package hold

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// serve runs e on loopback and returns its address.
func serve(t *testing.T, e *Endpoint) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// ask sends what the proxy sends for host+path: the token and the route.
func ask(t *testing.T, addr, token, host, path, reqPath string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+reqPath, nil)
	req.Host = host
	req.Header.Set(TokenHeader, token)
	req.Header.Set(RouteHeader, RouteValue(host, path))
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// app answers with what it received.
func app(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app host="+r.Host+" path="+r.URL.Path+" xff="+r.Header.Get("X-Forwarded-For")+" token="+r.Header.Get(TokenHeader)+" route="+r.Header.Get(RouteHeader))
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func down(host, path string) route.Table {
	return route.Table{Routes: []route.Route{{Host: host, Path: path}}}
}

func up(host, path string, servers ...string) route.Table {
	return route.Table{Routes: []route.Route{{Host: host, Path: path, Servers: servers}}}
}

func TestOnlyTheProxyIsHeld(t *testing.T) {
	e := &Endpoint{Limit: time.Second, Token: "secret"}
	e.Update(up("a.test", "", app(t)))
	addr := serve(t, e)
	for _, tok := range []string{"", "wrong", "secre"} {
		if resp, _ := ask(t, addr, tok, "a.test", "", "/"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("token %q: %d, want 403", tok, resp.StatusCode)
		}
	}
}

// TestReleasedWhenReady: a request held for a down route goes to the
// container the next table brings, as the proxy sent it (Host, path,
// X-Forwarded-For) but without the holding headers.
func TestReleasedWhenReady(t *testing.T) {
	e := &Endpoint{Limit: 10 * time.Second, Token: "secret"}
	e.Update(down("a.test", "/api"))
	addr := serve(t, e)
	backend := app(t)
	go func() {
		time.Sleep(200 * time.Millisecond)
		e.Update(up("a.test", "/api", backend))
	}()
	start := time.Now()
	resp, body := ask(t, addr, "secret", "a.test", "/api", "/users")
	if took := time.Since(start); resp.StatusCode != 200 || took < 150*time.Millisecond {
		t.Fatalf("%d %q after %v, want 200 after the update", resp.StatusCode, body, took)
	}
	if want := "app host=a.test path=/users xff=203.0.113.7 token= route="; body != want {
		t.Fatalf("the app saw %q, want %q", body, want)
	}
	if held, released, expired := e.Stats(); held != 0 || released != 1 || expired != 0 {
		t.Fatalf("stats %d %d %d", held, released, expired)
	}
}

func TestPastTheLimit503(t *testing.T) {
	e := &Endpoint{Limit: 100 * time.Millisecond, Token: "secret"}
	e.Update(down("a.test", ""))
	addr := serve(t, e)
	resp, body := ask(t, addr, "secret", "a.test", "", "/")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "a.test") {
		t.Fatalf("%d %v %q, want 503 with Retry-After", resp.StatusCode, resp.Header, body)
	}
}

// TestGoneRoute404: a route neither served nor kept is not held.
func TestGoneRoute404(t *testing.T) {
	e := &Endpoint{Limit: 10 * time.Second, Token: "secret"}
	e.Update(up("b.test", "", app(t)))
	addr := serve(t, e)
	if resp, _ := ask(t, addr, "secret", "a.test", "", "/"); resp.StatusCode != 404 {
		t.Fatalf("%d, want 404", resp.StatusCode)
	}
}

// TestVanishedServerIsReplaced: the table names a server that refuses
// (its container left again); the request waits for the next table.
func TestVanishedServerIsReplaced(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	e := &Endpoint{Limit: 10 * time.Second, Token: "secret"}
	e.Update(up("a.test", "", deadAddr))
	addr := serve(t, e)
	backend := app(t)
	go func() {
		time.Sleep(200 * time.Millisecond)
		e.Update(up("a.test", "", backend))
	}()
	if resp, body := ask(t, addr, "secret", "a.test", "", "/"); resp.StatusCode != 200 {
		t.Fatalf("%d %q, want 200 from the new server", resp.StatusCode, body)
	}
}

// TestClientGoneIsNotHeld: a client that gives up frees its request.
func TestClientGoneIsNotHeld(t *testing.T) {
	e := &Endpoint{Limit: time.Hour, Token: "secret"}
	e.Update(down("a.test", ""))
	addr := serve(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	req.Host = "a.test"
	req.Header.Set(TokenHeader, "secret")
	req.Header.Set(RouteHeader, "a.test")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("answered while down")
	}
	deadline := time.Now().Add(5 * time.Second)
	for held, _, _ := e.Stats(); held != 0; held, _, _ = e.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still held after their clients left", held)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPathForm: what Traefik sends with preservePath — the token and the
// route before the request's own path, which the app gets back intact.
func TestPathForm(t *testing.T) {
	e := &Endpoint{Limit: time.Second, Token: "secret"}
	e.Update(up("a.test", "/api", app(t)))
	addr := serve(t, e)
	for _, tc := range []struct{ own, want string }{{"/users", "path=/users "}, {"/", "path=/ "}, {"", "path=/ "}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+Path("secret", "a.test", "/api")+tc.own, nil)
		req.Host = "a.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%q: %d %q, want %q", tc.own, resp.StatusCode, b, tc.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+Path("wrong", "a.test", "/api")+"/users", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("wrong token in the path: %v %v", resp, err)
	}
}

// FuzzFromPath: whoever reaches the endpoint chooses the path; reading it
// never panics, and a path it accepts restores one that starts with "/".
func FuzzFromPath(f *testing.F) {
	f.Add(Path("tok", "a.test", "/api") + "/users")
	f.Add(PathPrefix + "tok/!!!/x")
	f.Add(PathPrefix)
	f.Add("/%2e%2e/")
	f.Fuzz(func(t *testing.T, p string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path, r.URL.RawPath = p, p
		if _, _, ok := fromPath(r); ok && !strings.HasPrefix(r.URL.Path, "/") {
			t.Fatalf("%q restored as %q", p, r.URL.Path)
		}
	})
}

func TestNamed(t *testing.T) {
	cfg := []byte(`          - url: "http://172.17.0.2:8080"
          - url: "h2c://127.0.0.1:34567` + Path("0123abcd", "a.test", "") + `"
`)
	if addr, tok, ok := Named(cfg); !ok || addr != "127.0.0.1:34567" || tok != "0123abcd" {
		t.Fatalf("Named: %q %q %v", addr, tok, ok)
	}
	if _, _, ok := Named([]byte("no holding here")); ok {
		t.Fatal("found a holding endpoint in a config without one")
	}
}

// FuzzNamed: whatever an edited file holds, Named finds nothing or an
// address and a token a new endpoint can take up as they are.
func FuzzNamed(f *testing.F) {
	f.Add([]byte(`- url: "http://127.0.0.1:34567` + Path("0123abcd", "a.test", "/api") + `"`))
	f.Add([]byte(`url: http://x` + PathPrefix + `tok en/`))
	f.Add([]byte(PathPrefix + "ab/"))
	f.Add([]byte("://" + PathPrefix))
	f.Fuzz(func(t *testing.T, cfg []byte) {
		addr, tok, ok := Named(cfg)
		if !ok {
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil || tok == "" || !isHex([]byte(tok)) {
			t.Fatalf("Named(%q) = %q %q", cfg, addr, tok)
		}
	})
}

// TestServerOffOurNetworksIsRefused: the endpoint dials from dockroute's
// own network namespace; a private address on none of its networks (a
// Swarm overlay task's, with dockroute on the host) went out by the
// default route and was answered by another machine. It is refused at
// once (502), never dialled, and said why.
func TestServerOffOurNetworksIsRefused(t *testing.T) {
	const far = "10.250.250.7"
	if onLocalNetwork(netip.MustParseAddr(far)) || routedSpecifically(netip.MustParseAddr(far)) {
		t.Skipf("%s is on one of this machine's networks; the test needs one that is not", far)
	}
	var log strings.Builder
	e := &Endpoint{Limit: 10 * time.Second, Token: "secret", Log: slog.New(slog.NewTextHandler(&log, nil))}
	e.Update(up("a.test", "", far+":8080"))
	addr := serve(t, e)
	began := time.Now()
	if resp, body := ask(t, addr, "secret", "a.test", "", "/"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("%d %q, want 502", resp.StatusCode, body)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("refused after %v, want at once", took)
	}
	if !strings.Contains(log.String(), "cannot reach a server: it is on none of dockroute's networks") {
		t.Errorf("not said why:\n%s", log.String())
	}
	// Loopback, the machine's own networks and public addresses pass.
	for _, a := range []string{"127.0.0.1:80", "203.0.113.9:80"} {
		if err := e.reach(a); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
}

// The kernel's routes are read as it prints them: every IPv4 network of
// this machine's interfaces is routed specifically (read with the wrong
// byte order, none would be).
func TestRoutedSpecifically(t *testing.T) {
	if !routedSpecifically(netip.MustParseAddr("127.0.0.1")) && !onLocalNetwork(netip.MustParseAddr("127.0.0.1")) {
		t.Skip("no route table to read")
	}
	for _, n := range mustInterfaceAddrs(t) {
		if p, err := netip.ParsePrefix(n); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
			if !routedSpecifically(p.Addr()) {
				t.Errorf("%s, on this machine's network %s, is not routed specifically", p.Addr(), p)
			}
		}
	}
}

func mustInterfaceAddrs(t *testing.T) []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}
