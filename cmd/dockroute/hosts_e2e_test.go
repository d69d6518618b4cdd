//go:build e2e

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// TestPlainHostChurnLoadsNothing: with --caddy-dns on loopback, plain
// hosts (a host and a port) come, scale, restart and go without a single
// Caddy config load, on both Caddys; a host nothing routes answers 404
// (not 502), in its absolute form too; a host with settings of its own
// is one load.
func TestPlainHostChurnLoadsNothing(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
		proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, proxy, "--caddy-dns", fmt.Sprint(caddytest.FreePort(t)))
		first := dockertest.Unique("plain") + ".test"
		a := dockertest.Run(t, hello(first)...)
		waitAnswer(t, proxy, first, 200, a[:12])
		loads := c.Loads()

		// New hosts, a second replica, a restart, a removal.
		var hosts []string
		var ids []string
		for range 4 {
			h := dockertest.Unique("plain") + ".test"
			id := dockertest.Run(t, hello(h)...)
			waitAnswer(t, proxy, h, 200, id[:12])
			hosts, ids = append(hosts, h), append(ids, id)
		}
		b := dockertest.Run(t, hello(first)...)
		waitReplicas(t, "http://"+proxy, first, a, b)
		dockertest.Docker(t, "restart", "-t", "1", ids[0])
		waitAnswer(t, proxy, hosts[0], 200, ids[0][:12])
		dockertest.Docker(t, "rm", "-f", ids[1])
		waitAnswer(t, proxy, hosts[1], 404, "no route for this host")
		waitAnswer(t, proxy, hosts[2]+".", 200, ids[2][:12])
		for _, h := range []string{"never.test", "NEVER.test.", "127.0.0.1"} {
			waitAnswer(t, proxy, h, 404, "no route for this host")
		}
		if got := c.Loads() - loads; got != 0 {
			t.Fatalf("plain host churn: %d Caddy config loads, want 0\n%s", got, c.Log())
		}

		// A host with a path is written: one load.
		withPath := dockertest.Unique("path") + ".test"
		p := dockertest.Run(t, hello(withPath, "-e", "VIRTUAL_PATH=/api")...)
		eventually(t, 10*time.Second, func() (bool, string) {
			s, body, err := caddytest.Get(proxy, withPath, "/api")
			return err == nil && s == 200 && strings.Contains(body, p[:12]), fmt.Sprintf("%s/api: %d %q %v", withPath, s, body, err)
		})
		if got := c.Loads() - loads; got != 1 {
			t.Errorf("a host with a path: %d loads, want 1", got)
		}
		// Its other paths are nobody's.
		if s, _, _ := caddytest.GetAnswered(proxy, withPath, "/other"); s != 404 {
			t.Errorf("%s/other answers %d, want 404", withPath, s)
		}
	})
}

// churnCycles is how many hosts TestConnectionsSurviveHostChurn adds and
// removes: DOCKROUTE_CHURN_CYCLES, 20 by default (a cycle takes about half
// a second; the 1,000 take 9 minutes per Caddy, and were measured
// so: docs/performance.md).
func churnCycles(t *testing.T) int {
	if v := os.Getenv("DOCKROUTE_CHURN_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("DOCKROUTE_CHURN_CYCLES=%q: want a positive number", v)
		}
		return n
	}
	return 20
}

// wsEcho is a backend that answers GET / with its name and echoes each
// WebSocket message on /ws.
func wsEcho(t *testing.T, name string) string {
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) }))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// dialWS opens a WebSocket to host's /ws through the proxy at addr.
func dialWS(t *testing.T, addr, host string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws://"+host+"/ws", "http://"+host)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		conn.Close()
		t.Fatalf("websocket to %s: %v", host, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// echo sends msg on ws and reads it back.
func echo(ws *websocket.Conn, msg string) error {
	ws.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := ws.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(ws, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echoed %q, want %q", buf, msg)
	}
	return nil
}

// TestConnectionsSurviveHostChurn: while other hosts are added and removed
// (churnCycles times, through the routes file: no containers, so cycles
// are quick), a WebSocket to a stable host stays open and a request loop
// to it fails nothing, on both Caddys, because no cycle loads Caddy's
// config. With every host written (--caddy-dns-hosts=false) each cycle is
// a load, and Caddy closes upgraded connections with the config that
// proxied them: the WebSocket dies at the first cycle (checked, so that
// the test shows what it guards).
func TestConnectionsSurviveHostChurn(t *testing.T) {
	for _, mode := range []struct {
		name    string
		args    []string
		survive bool
	}{{"looked-up", nil, true}, {"written", []string{"--caddy-dns-hosts=false"}, false}} {
		t.Run(mode.name, func(t *testing.T) {
			caddytest.Each(t, func(t *testing.T, bin string) {
				dir := t.TempDir()
				routes := filepath.Join(dir, "routes.yaml")
				stable, churned := wsEcho(t, "stable"), wsEcho(t, "churned")
				write := func(extra string) {
					body := fmt.Sprintf("routes:\n  stable.test: %s\n", stable)
					if extra != "" {
						body += fmt.Sprintf("  %s: %s\n", extra, churned)
					}
					if err := os.WriteFile(routes+".tmp", []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(routes+".tmp", routes); err != nil {
						t.Fatal(err)
					}
				}
				write("")
				c := caddytest.Start(t, bin, caddytest.UserConfig(caddytest.FreePort(t)))
				proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
				startCaddyDaemon(t, c, proxy, append([]string{"--routes-file", routes, "--coalesce-quiet", "5ms"}, mode.args...)...)
				waitAnswer(t, proxy, "stable.test", 200, "stable")
				ws := dialWS(t, proxy, "stable.test")
				if err := echo(ws, "first"); err != nil {
					t.Fatal(err)
				}
				loads := c.Loads()
				stop := make(chan struct{})
				res := loop("http://"+proxy, "stable.test", stop)
				cycles := churnCycles(t)
				if !mode.survive {
					cycles = 1
				}
				var wsErr error
				for i := range cycles {
					host := fmt.Sprintf("churn%d.test", i)
					write(host)
					waitAnswer(t, proxy, host, 200, "churned")
					write("")
					waitAnswer(t, proxy, host, 404, "")
					if wsErr = echo(ws, fmt.Sprintf("cycle %d", i)); wsErr != nil {
						break
					}
				}
				close(stop)
				res.wait()
				t.Logf("%s %s: %d cycles, %d Caddy loads, websocket: %v; %d requests to the stable host, %d failed", mode.name, bin, cycles, c.Loads()-loads, wsErr, res.sent, res.failed)
				if mode.survive && res.failed > 0 {
					t.Errorf("%d of %d requests to the stable host failed; first: %s", res.failed, res.sent, strings.Join(res.failures, "; "))
				}
				switch {
				case mode.survive && (wsErr != nil || c.Loads() != loads):
					t.Errorf("host churn loaded Caddy's config %d times; the websocket: %v", c.Loads()-loads, wsErr)
				case !mode.survive && wsErr == nil:
					t.Errorf("with every host written, the websocket survived a load (%d loads): this test no longer shows what it guards", c.Loads()-loads)
				}
			})
		})
	}
}

// BenchmarkCaddyNewHost measures a new plain host's way into the current
// Caddy beside 1,000 and 10,000 others (all routes-file hosts on one
// backend, so no containers are needed): from the routes file renamed
// into place to the host served, p50 and p99 over ten new hosts, and
// Caddy's CPU per new host, with plain hosts looked up (the default) and
// with every host written (--caddy-dns off: each new host a reload).
func BenchmarkCaddyNewHost(b *testing.B) {
	bins := caddytest.Binaries(b)
	bin := bins[len(bins)-1]
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "app") }))
	defer backend.Close()
	for _, n := range []int{1000, 10000} {
		for _, mode := range []struct {
			name string
			args []string
		}{{"looked-up", nil}, {"written", []string{"--caddy-dns", "off"}}} {
			b.Run(fmt.Sprintf("routes=%d/%s", n, mode.name), func(b *testing.B) {
				routes := filepath.Join(b.TempDir(), "routes.yaml")
				var base strings.Builder
				base.WriteString("routes:\n")
				for i := range n {
					fmt.Fprintf(&base, "  h%05d.test: %s\n", i, backend.URL)
				}
				write := func(extra ...string) {
					body := base.String()
					for _, h := range extra {
						body += fmt.Sprintf("  %s: %s\n", h, backend.URL)
					}
					os.WriteFile(routes+".tmp", []byte(body), 0o644)
					os.Rename(routes+".tmp", routes)
				}
				write()
				c := caddytest.Start(b, bin, caddytest.UserConfig(caddytest.FreePort(b)))
				proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))
				startDaemon(b, nil, append([]string{"--output", "caddy", "--caddy-admin", c.Admin, "--caddy-listen", proxy, "--routes-file", routes}, mode.args...)...)
				eventually(b, 60*time.Second, func() (bool, string) {
					s, _, err := caddytest.Get(proxy, "h00000.test", "/")
					return err == nil && s == 200, "the first host is not served"
				})
				var took []time.Duration
				var cpu time.Duration
				var added []string
				for b.Loop() {
					for range 10 {
						time.Sleep(300 * time.Millisecond) // past the last change's publish
						host := fmt.Sprintf("new%d.test", len(added))
						added = append(added, host)
						before := cpuTime(b, c.Pid())
						start := time.Now()
						write(added...)
						for deadline := start.Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
							if s, _, err := caddytest.Get(proxy, host, "/"); err == nil && s == 200 {
								break
							}
							if time.Now().After(deadline) {
								b.Fatalf("%s not served within 60 s", host)
							}
						}
						took = append(took, time.Since(start))
						time.Sleep(3 * time.Second) // Caddy's work for the change done (a reload at 10,000 routes: ~1.6 s)
						cpu += cpuTime(b, c.Pid()) - before
					}
				}
				reportPercentiles(b, "served", took)
				b.ReportMetric(float64(cpu.Milliseconds())/float64(len(took)), "caddy-cpu-ms/host")
			})
		}
	}
}

// BenchmarkBusyPlainHosts measures requests spread over many busy plain
// hosts, looked up and written: Caddy caches at most 100 SRV names (both
// versions), so past 100 busy hosts most requests wait for a lookup, each
// under one lock for all names. Eight clients each ask every host in turn
// for 3 s, through kept-alive connections; the figures are requests per
// second and the latency of each request.
func BenchmarkBusyPlainHosts(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "app") }))
	defer backend.Close()
	for _, bin := range caddytest.Binaries(b) {
		for _, n := range []int{50, 150, 1000} {
			for _, mode := range []struct {
				name string
				args []string
			}{{"looked-up", nil}, {"written", []string{"--caddy-dns-hosts=false"}}} {
				b.Run(fmt.Sprintf("%s/hosts=%d/%s", filepath.Base(bin), n, mode.name), func(b *testing.B) {
					routes := filepath.Join(b.TempDir(), "routes.yaml")
					var body strings.Builder
					body.WriteString("routes:\n")
					for i := range n {
						fmt.Fprintf(&body, "  h%05d.test: %s\n", i, backend.URL)
					}
					os.WriteFile(routes, []byte(body.String()), 0o644)
					c := caddytest.Start(b, bin, caddytest.UserConfig(caddytest.FreePort(b)))
					proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))
					startDaemon(b, nil, append([]string{"--output", "caddy", "--caddy-admin", c.Admin, "--caddy-listen", proxy, "--routes-file", routes}, mode.args...)...)
					eventually(b, 60*time.Second, func() (bool, string) {
						s, _, err := caddytest.Get(proxy, fmt.Sprintf("h%05d.test", n-1), "/")
						return err == nil && s == 200, "the last host is not served"
					})
					var took []time.Duration
					var asked, failed int
					for b.Loop() {
						t, a, f := spreadLoad(proxy, n, 8, 3*time.Second)
						took, asked, failed = append(took, t...), asked+a, failed+f
					}
					if failed > 0 {
						b.Errorf("%d of %d requests failed", failed, asked)
					}
					b.ReportMetric(float64(asked)/(3*float64(b.N)), "req/s")
					reportPercentiles(b, "request", took)
				})
			}
		}
	}
}

// spreadLoad has clients ask hosts h00000.test … through the proxy at
// addr in turn, each from its own offset, for d; it returns each
// request's latency, and how many were asked and failed (not 200).
func spreadLoad(addr string, hosts, clients int, d time.Duration) (took []time.Duration, asked, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			var mine []time.Duration
			bad := 0
			for i := c * hosts / clients; time.Now().Before(end); i++ {
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				req.Host = fmt.Sprintf("h%05d.test", i%hosts)
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mine = append(mine, time.Since(start))
				if err != nil || resp.StatusCode != 200 {
					bad++
				}
			}
			mu.Lock()
			took, asked, failed = append(took, mine...), asked+len(mine), failed+bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return took, asked, failed
}

// TestHTTPSOnDemand: with --caddy-tls, a plain host, which is not in
// Caddy's config, gets a certificate on its first TLS request, without a
// config load, from the issuer of the user's own catch-all policy (Caddy's
// local CA here: no ACME CA is reachable); a host nothing routes gets
// none (dockroute refuses Caddy's ask); the user's own site still gets its
// certificate as before, not on demand; plain HTTP redirects to HTTPS.
func TestHTTPSOnDemand(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		httpPort, httpsPort, userPort := caddytest.FreePort(t), caddytest.FreePort(t), caddytest.FreePort(t)
		userHost := dockertest.Unique("user") + ".test"
		c := caddytest.Start(t, bin, map[string]any{"apps": map[string]any{
			"http": map[string]any{"http_port": httpPort, "https_port": httpsPort, "servers": map[string]any{
				"user": map[string]any{
					"listen": []string{fmt.Sprintf(":%d", userPort)},
					"routes": []any{map[string]any{
						"match":  []any{map[string]any{"host": []string{userHost}}},
						"handle": []any{map[string]any{"handler": "static_response", "body": "user says hi"}},
					}},
				},
			}},
			// The user's choices, not dockroute's: certificates from
			// Caddy's local CA, whose root is not installed on this
			// machine.
			"tls": map[string]any{"automation": map[string]any{"policies": []any{map[string]any{"issuers": []any{map[string]any{"module": "internal"}}}}}},
			"pki": map[string]any{"certificate_authorities": map[string]any{"local": map[string]any{"install_trust": false}}},
		}})
		proxy := fmt.Sprintf("127.0.0.1:%d", httpsPort)
		d := startCaddyDaemon(t, c, fmt.Sprintf(":%d", httpsPort), "--caddy-tls")
		first := dockertest.Unique("https") + ".test"
		a := dockertest.Run(t, hello(first)...)
		waitHTTPS(t, proxy, first, a[:12])
		loads := c.Loads()

		host := dockertest.Unique("https") + ".test"
		id := dockertest.Run(t, hello(host)...)
		cert := waitHTTPS(t, proxy, host, id[:12])
		if !slices.Equal(cert.DNSNames, []string{host}) || !strings.Contains(cert.Issuer.CommonName, "Caddy Local Authority") {
			t.Errorf("%s's certificate: names %v, issuer %q; want its own, from Caddy's local CA", host, cert.DNSNames, cert.Issuer.CommonName)
		}
		if got := c.Loads() - loads; got != 0 {
			t.Errorf("a new plain host with HTTPS: %d Caddy config loads, want 0", got)
		}
		if !strings.Contains(d.log.String(), "approved caddy's certificate for a host") {
			t.Errorf("dockroute's log does not say it approved %s:\n%s", host, d.log)
		}

		// A name nobody routes gets no certificate.
		nobody := dockertest.Unique("nobody") + ".test"
		if _, _, _, err := httpsGet(proxy, nobody); err == nil || !strings.Contains(err.Error(), "tls") {
			t.Errorf("a host nothing routes: TLS answered (%v), want no certificate", err)
		}
		// The user's own site still gets its certificate, on its port,
		// under a policy of its own: as before, not on demand.
		if s, body, _, err := httpsGet(fmt.Sprintf("127.0.0.1:%d", userPort), userHost); err != nil || s != 200 || body != "user says hi" {
			t.Errorf("the user's own site: %d %q %v", s, body, err)
		}
		if raw, err := c.Config("/id/dockroute-caddy-names"); err != nil || !strings.Contains(string(raw), `"subjects":["`+userHost+`"]`) || strings.Contains(string(raw), "on_demand") {
			t.Errorf("no policy for the user's own site's name, as the user's catch-all has it: %s %v", raw, err)
		}
		// Plain HTTP redirects to HTTPS.
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/x", httpPort), nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://"+host) {
			t.Errorf("plain HTTP answered %d Location %q, want a redirect to https://%s", resp.StatusCode, loc, host)
		}
	})
}

// waitHTTPS polls host over HTTPS (its name in the TLS handshake) through
// the proxy at addr until it answers 200 with body, and returns the
// certificate it was served.
func waitHTTPS(t *testing.T, addr, host, body string) *x509.Certificate {
	t.Helper()
	var cert *x509.Certificate
	eventually(t, 20*time.Second, func() (bool, string) {
		s, b, c, err := httpsGet(addr, host)
		cert = c
		return err == nil && s == 200 && strings.Contains(b, body), fmt.Sprintf("https://%s via %s: %d %q %v", host, addr, s, b, err)
	})
	return cert
}

// httpsGet asks for https://host/ at addr, without verifying the
// certificate (Caddy's local CA is not trusted here), and returns it.
func httpsGet(addr, host string) (int, string, *x509.Certificate, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + host + "/")
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var cert *x509.Certificate
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		cert = resp.TLS.PeerCertificates[0]
	}
	return resp.StatusCode, string(b), cert, nil
}
