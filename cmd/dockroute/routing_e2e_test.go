//go:build e2e

package main

// End-to-end tests of the routing features: labels, paths and stripping,
// several ports per container, health-aware routing, draining on stop, TLS
// and redirects — through Traefik's own router (the oracle) and a real Caddy.

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// waitOracle polls until Traefik routes req (host/path) to router with
// exactly servers (router "" for a 404).
func (d *proc) waitOracle(t testing.TB, req, router string, servers ...string) {
	t.Helper()
	d.waitPublished(t)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := traefiktest.Check(t, d.dir, req)[req]
		return got.Router == router && (router == "" || slices.Equal(got.Servers, servers)),
			fmt.Sprintf("Traefik routes %s to %+v, want router %q servers %v", req, got, router, servers)
	})
}

func explainOut(t *testing.T, ids ...string) string {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"explain"}, ids...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	return string(out)
}

// caddies starts every Caddy under test, each with a dockroute pushing to
// it, and returns their proxy addresses.
func caddies(t *testing.T) []string {
	var proxies []string
	for _, bin := range caddytest.Binaries(t) {
		c := caddytest.Start(t, bin, nil)
		proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, proxy)
		waitAnswer(t, proxy, "nothing.test", 404, "no route") // first push done
		proxies = append(proxies, proxy)
	}
	return proxies
}

func TestLabelsBeatEnv(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	proxies := caddies(t)
	envHost, labelHost := dockertest.Unique("env")+".test", dockertest.Unique("label")+".test"
	id := dockertest.Run(t, "-e", "VIRTUALHOST="+envHost, "-e", "PORT=9999",
		"--label", "dockroute.host="+labelHost, "--label", "dockroute.port=8080", dockertest.HelloImage)
	d.waitServers(t, labelHost, url(t, id, 8080))
	d.waitServers(t, envHost)
	for _, p := range proxies {
		waitAnswer(t, p, labelHost, 200, "hello from "+id[:12])
		waitAnswer(t, p, envHost, 404, "no route")
	}
	out := explainOut(t, id)
	for _, want := range []string{
		fmt.Sprintf(`label dockroute.host=%q overrides VIRTUALHOST=%q`, labelHost, envHost),
		`label dockroute.port="8080" overrides PORT="9999"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
}

func TestSeveralPorts(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	a, b := dockertest.Unique("porta")+".test", dockertest.Unique("portb")+".test"
	id := dockertest.Run(t, "-e", "LISTEN=8080,9090", "--expose", "9090", "-e", "VIRTUALHOST="+a+":8080, "+b+":9090", dockertest.HelloImage)
	d.waitServers(t, a, url(t, id, 8080))
	d.waitServers(t, b, url(t, id, 9090))
	if body := get(t, url(t, id, 9090), b); !strings.Contains(body, "port 9090") {
		t.Fatalf("port 9090 answered %q", body)
	}

	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.Start(t, bin, nil)
		proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, proxy)
		waitAnswer(t, proxy, a, 200, "port 8080")
		waitAnswer(t, proxy, b, 200, "port 9090")
	})
}

// TestPathsAndStrip routes one host to three containers by path prefix:
// the longest prefix wins, prefixes match whole segments, and /api is
// stripped on its way to the api container — in Traefik and in Caddy.
func TestPathsAndStrip(t *testing.T) {
	dockertest.Require(t)
	host := dockertest.Unique("paths") + ".test"
	root := dockertest.Run(t, hello(host)...)
	api := dockertest.Run(t, hello(host+"/api", "-e", "VIRTUAL_PATH_STRIP=true")...)
	v2 := dockertest.Run(t, "--label", "dockroute.host="+host, "--label", "dockroute.path=/api/v2", "--label", "dockroute.port=8080", dockertest.HelloImage)

	d := startDaemon(t, nil)
	d.waitOracle(t, host+"/api/v2/x", traefik.Name(host, "/api/v2"), url(t, v2, 8080))
	d.waitOracle(t, host+"/api/x", traefik.Name(host, "/api"), url(t, api, 8080))
	d.waitOracle(t, host+"/api", traefik.Name(host, "/api"), url(t, api, 8080))
	d.waitOracle(t, host+"/apix", traefik.Name(host, ""), url(t, root, 8080))
	d.waitOracle(t, host+"/", traefik.Name(host, ""), url(t, root, 8080))
	routers := traefiktest.Routers(t, d.dir)
	if mw := routers[traefik.Name(host, "/api")].Middlewares; len(mw) != 1 {
		t.Fatalf("the /api router has middlewares %v, want the strip middleware", mw)
	}
	if mw := routers[traefik.Name(host, "/api/v2")].Middlewares; len(mw) != 0 {
		t.Fatalf("the /api/v2 router strips: %v", mw)
	}

	caddytest.Each(t, func(t *testing.T, bin string) {
		c := caddytest.Start(t, bin, nil)
		proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
		startCaddyDaemon(t, c, proxy)
		waitAnswer(t, proxy, host, 200, "hello from "+root[:12])
		for path, want := range map[string]string{
			"/api/x":    api[:12] + " port 8080 host " + host + " path /x",
			"/api":      api[:12] + " port 8080 host " + host + " path /",
			"/api/v2/y": v2[:12] + " port 8080 host " + host + " path /api/v2/y",
			"/apix":     root[:12] + " port 8080 host " + host + " path /apix",
			"/":         root[:12] + " port 8080 host " + host + " path /",
		} {
			status, body, err := caddytest.GetAnswered(proxy, host, path)
			if err != nil || status != 200 || !strings.Contains(body, want) {
				t.Errorf("GET %s%s via Caddy: %d %q %v, want %q", host, path, status, body, err, want)
			}
		}
	})
}

func TestHealthAwareRouting(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	proxies := caddies(t)
	host := dockertest.Unique("health") + ".test"
	id := dockertest.Run(t, "-e", "VIRTUALHOST="+host, "-e", "PORT=8080", "-e", "HEALTHY_AFTER=3s", dockertest.HelloHealthImage)

	// While the healthcheck is starting the container is not routed, and
	// explain says why.
	if h := dockertest.Docker(t, "inspect", "-f", "{{.State.Health.Status}}", id); h != "starting" {
		t.Fatalf("health %q right after start, want starting", h)
	}
	if out := explainOut(t, id); !strings.Contains(out, "healthcheck is still starting") {
		t.Fatalf("explain while starting:\n%s", out)
	}
	if _, ok := servers(t, d.file())[host]; ok {
		t.Fatal("routed while its healthcheck is starting")
	}
	for _, p := range proxies {
		if status, _, _ := caddytest.GetAnswered(p, host, "/"); status != 404 {
			t.Fatalf("Caddy at %s answers %d while the healthcheck is starting", p, status)
		}
	}
	d.waitServers(t, host, url(t, id, 8080))
	for _, p := range proxies {
		waitAnswer(t, p, host, 200, "hello from "+id[:12])
	}
	if h := dockertest.Docker(t, "inspect", "-f", "{{.State.Health.Status}}", id); h != "healthy" {
		t.Fatalf("routed while health is %q", h)
	}

	dockertest.Docker(t, "exec", id, "/hello", "unhealthy")
	d.waitServers(t, host)
	for _, p := range proxies {
		waitAnswer(t, p, host, 404, "no route")
	}
	if out := explainOut(t, id); !strings.Contains(out, "healthcheck says unhealthy") {
		t.Fatalf("explain when unhealthy:\n%s", out)
	}
	dockertest.Docker(t, "exec", id, "/hello", "healthy")
	d.waitServers(t, host, url(t, id, 8080))
}

// TestHealthIgnored routes a starting container at once with --health=ignore.
func TestHealthIgnored(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil, "--health", "ignore")
	host := dockertest.Unique("nohealth") + ".test"
	id := dockertest.Run(t, "-e", "VIRTUALHOST="+host, "-e", "PORT=8080", "-e", "HEALTHY_AFTER=1h", dockertest.HelloHealthImage)
	d.waitServers(t, host, url(t, id, 8080))
}

// TestDrainUnderLoad stops one of two replicas behind Caddy while a steady
// request loop runs on loopback: the replica is unrouted when its stop
// begins and keeps serving through its drain period, so no request fails.
func TestDrainUnderLoad(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		stopUnderLoad(t, bin, nil, "-e", "DRAIN=2s")
	})
}

// TestAbruptStopUnderLoad is TestDrainUnderLoad with an app that exits the
// moment it gets SIGTERM, dropping what it has in flight: Caddy must retry
// whatever the stopping replica failed on the other one.
func TestAbruptStopUnderLoad(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		stopUnderLoad(t, bin, nil, "-e", "ABRUPT=1")
	})
}

// stopUnderLoad runs two replicas (hello with extra arguments) behind
// Caddy (dockroute with the daemon arguments), puts a bounded request loop
// on them through Caddy on loopback, stops one, and fails the test if any
// request failed.
func stopUnderLoad(t *testing.T, bin string, daemon []string, extra ...string) {
	c := caddytest.Start(t, bin, nil)
	proxy := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startCaddyDaemon(t, c, proxy, daemon...)
	host := dockertest.Unique("stop") + ".test"
	a := dockertest.Run(t, hello(host, extra...)...)
	b := dockertest.Run(t, hello(host, extra...)...)
	waitReplicas(t, "http://"+proxy, host, a, b)

	// The load: sequential requests on two connections, bounded in count
	// and time, until told to stop.
	var total, failed, afterStop atomic.Int64
	var stopped atomic.Bool
	var failures sync.Map
	done := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for range 2 {
		wg.Go(func() {
			for total.Load() < 100000 && time.Now().Before(deadline) {
				select {
				case <-done:
					return
				default:
				}
				status, body, err := caddytest.Get(proxy, host, "/")
				total.Add(1)
				if err != nil || status != 200 {
					failed.Add(1)
					failures.Store(fmt.Sprintf("%s %d %q %v", time.Now().Format("15:04:05.000"), status, body, err), true)
				}
				if stopped.Load() && strings.Contains(body, b[:12]) {
					afterStop.Add(1)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	t.Logf("docker stop at %s", start.Format("15:04:05.000"))
	dockertest.Docker(t, "stop", "-t", "5", a)
	stopped.Store(true)
	t.Logf("docker stop took %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(done)
	wg.Wait()
	t.Logf("STOP %s %v: %d requests, %d failed, %d served by the other replica after the stop", bin, extra, total.Load(), failed.Load(), afterStop.Load())
	abruptReload := slices.Contains(extra, "ABRUPT=1") && !slices.Contains(daemon, "--caddy-dns")
	if failed.Load() == 1 && abruptReload && caddyReloadRace(c.Log(), &failures) {
		// Measured on this machine: in about 1 stop of 10 on 2.6.2, with
		// the code before issue 13's work as with this; on 2.11.9 once in
		// CI (2026-12-02), the same code path.
		t.Logf("one request met Caddy's reload race (its retry cancelled as its config was replaced); --caddy-dns avoids the reload")
		failed.Store(0)
	}
	if failed.Load() > 0 {
		failures.Range(func(k, _ any) bool { t.Errorf("failure: %s", k); return true })
		t.Fatalf("%d of %d requests failed while a replica stopped\n%s\ncaddy:\n%s", failed.Load(), total.Load(), d.log, c.Log())
	}
	if total.Load() < 100 || afterStop.Load() == 0 {
		t.Fatalf("the load was too small to show anything: %d requests, %d after the stop", total.Load(), afterStop.Load())
	}
}

// caddyReloadRace tells whether the one failed request is what Caddy
// does, now and then, to a request whose upstream just died when
// dockroute's publish replaces its config: the request was dialling the
// dead replica (its address gone, so the dial waits out dial_timeout)
// when the load landed, and its retry on the live replica waits
// try_interval on the outgoing config's context, which the load has
// cancelled (reverseproxy.go, LoadBalancing.tryAgain, selects on
// h.ctx.Done() in 2.6.2 and 2.11.9 alike). The request fails with the
// error it had: 502 for the dial timing out, 503 "no upstreams
// available" when none was left untried. dockroute cannot avoid it but by
// not reloading (--caddy-dns, whose TestStopUnderLoadByLookup accepts no
// failure), so this test accepts that one failure when Caddy's log holds
// exactly one failed request and the client saw a proxy error.
func caddyReloadRace(caddyLog string, failures *sync.Map) bool {
	proxyError := true
	failures.Range(func(k, _ any) bool {
		proxyError = proxyError && (strings.Contains(k.(string), " 502 ") || strings.Contains(k.(string), " 503 "))
		return true
	})
	return proxyError && strings.Count(caddyLog, `"logger":"http.log.error"`) == 1
}

// TestTraefikTLSAndRedirect checks the global TLS flags and a container
// opting out with labels, as Traefik loads them.
func TestTraefikTLSAndRedirect(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil, "--traefik-entrypoints", "websecure", "--traefik-certresolver", "le", "--traefik-redirect", "web")
	secure, plain := dockertest.Unique("secure")+".test", dockertest.Unique("plain")+".test"
	dockertest.Run(t, hello(secure)...)
	dockertest.Run(t, hello(plain, "--label", "dockroute.tls=false", "--label", "dockroute.entrypoints=web")...)
	eventually(t, 10*time.Second, func() (bool, string) {
		s := servers(t, d.file())
		return len(s[secure]) > 0 && len(s[plain]) > 0, "containers not routed"
	})
	routers := traefiktest.Routers(t, d.dir)
	r := routers[traefik.Name(secure, "")]
	if !slices.Equal(r.EntryPoints, []string{"websecure"}) {
		t.Errorf("secure router entrypoints %v", r.EntryPoints)
	}
	red, ok := routers["dockroute.redirect-"+strings.ReplaceAll(secure, ".", "_")]
	if !ok || !slices.Equal(red.EntryPoints, []string{"web"}) || !slices.Equal(red.Middlewares, []string{"dockroute-redirect-https"}) {
		t.Errorf("redirect router %+v (present %v)", red, ok)
	}
	if p := routers[traefik.Name(plain, "")]; !slices.Equal(p.EntryPoints, []string{"web"}) {
		t.Errorf("plain router entrypoints %v", p.EntryPoints)
	}
	if _, ok := routers["dockroute.redirect-"+strings.ReplaceAll(plain, ".", "_")]; ok {
		t.Error("the dockroute.tls=false container got a redirect")
	}
	body := string(mustRead(t, d.file()))
	if !strings.Contains(body, `certResolver: "le"`) {
		t.Errorf("no certResolver in:\n%s", body)
	}
}

// TestCaddyTLSAndRedirect turns automatic HTTPS on: Caddy serves a host
// with settings (written into its config) and a plain one (looked up,
// its certificate on demand) over HTTPS with certificates from its local
// CA (.localhost names need no ACME), and redirects plain HTTP to HTTPS.
func TestCaddyTLSAndRedirect(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		httpPort, httpsPort := caddytest.FreePort(t), caddytest.FreePort(t)
		c := caddytest.Start(t, bin, map[string]any{"apps": map[string]any{
			"http": map[string]any{"http_port": httpPort, "https_port": httpsPort},
			// The user's choice, not dockroute's: keep the test from
			// installing a root certificate on this machine.
			"pki": map[string]any{"certificate_authorities": map[string]any{"local": map[string]any{"install_trust": false}}},
		}})
		startCaddyDaemon(t, c, fmt.Sprintf(":%d", httpsPort), "--caddy-tls")
		host := dockertest.Unique("tls") + ".localhost"
		id := dockertest.Run(t, hello(host, "--label", "dockroute.middlewares=hsts")...)

		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true},
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		var last string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/", httpsPort), nil)
			req.Host = host
			resp, err := client.Do(req)
			if err == nil {
				b := make([]byte, 200)
				n, _ := resp.Body.Read(b)
				resp.Body.Close()
				last = fmt.Sprintf("%d %q", resp.StatusCode, b[:n])
				if resp.StatusCode == 200 && strings.Contains(last, id[:12]) {
					if sts := resp.Header.Get("Strict-Transport-Security"); sts != "max-age=31536000; includeSubDomains" {
						t.Errorf("the hsts set over HTTPS: Strict-Transport-Security %q", sts)
					}
					break
				}
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				t.Fatalf("HTTPS via Caddy: %s\n%s", last, c.Log())
			}
		}
		// A plain host, which Caddy looks up: a local name, so its
		// certificate comes from Caddy's local CA on demand too.
		plain := dockertest.Unique("tls-plain") + ".localhost"
		p := dockertest.Run(t, hello(plain)...)
		if cert := waitHTTPS(t, fmt.Sprintf("127.0.0.1:%d", httpsPort), plain, p[:12]); !strings.Contains(cert.Issuer.CommonName, "Caddy Local Authority") {
			t.Errorf("%s's certificate is issued by %q, want Caddy's local CA", plain, cert.Issuer.CommonName)
		}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/x", httpPort), nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://"+host) {
			t.Fatalf("plain HTTP answered %d Location %q, want a redirect to https://%s", resp.StatusCode, loc, host)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFirstClaimantDecidesEdge: a container started later cannot turn a
// TLS host into plain HTTP by claiming it with dockroute.tls=false, even
// when its name sorts first: its route is refused with a reason naming the
// first claimant, in the log and in explain, and the host stays TLS with
// only the first claimant's server.
func TestFirstClaimantDecidesEdge(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	host := dockertest.Unique("claim") + ".test"
	firstName := dockertest.Unique("zz-first")
	first := dockertest.Run(t, append([]string{"--name", firstName, "--label", "dockroute.tls=true"}, hello(host)...)...)
	d.waitServers(t, host, url(t, first, 8080))
	late := dockertest.Run(t, append([]string{"--name", dockertest.Unique("aa-late"), "--label", "dockroute.tls=false"}, hello(host)...)...)
	d.waitLog(t, "route refused")
	d.waitServers(t, host, url(t, first, 8080))
	var cfg struct {
		HTTP struct {
			Routers map[string]struct{ TLS *struct{} }
		}
	}
	if err := yaml.Unmarshal(mustRead(t, d.file()), &cfg); err != nil || cfg.HTTP.Routers[traefik.Name(host, "")].TLS == nil {
		t.Fatalf("the host lost its TLS (%v):\n%s", err, mustRead(t, d.file()))
	}
	out := explainOut(t, late)
	want := "NOT routed: " + host + ": " + host + " is already routed with TLS on by container " + firstName + ", which holds it"
	if !strings.Contains(out, want) {
		t.Fatalf("explain says:\n%s\nwant a line containing %q", out, want)
	}
	if !strings.Contains(d.log.String(), firstName+", which holds it") {
		t.Fatalf("the daemon's log does not name the claimant:\n%s", d.log)
	}
}

// TestMigrants: an nginx-proxy container (VIRTUAL_HOST, no port, one
// exposed port) is routed at that port, and explain says which rule chose
// it; settings of other tools are named once in the log and in explain,
// with what to use instead.
func TestMigrants(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	host := dockertest.Unique("nginxproxy") + ".test"
	id := dockertest.Run(t, "-e", "VIRTUAL_HOST="+host, "-e", "LETSENCRYPT_HOST="+host, "--label", "traefik.enable=true", dockertest.HelloImage)
	d.waitServers(t, host, url(t, id, 8080))
	out := explainOut(t, id)
	for _, want := range []string{"chosen: " + host + ": port 8080, the only port the container exposes", "LETSENCRYPT_HOST: the proxy gets certificates", "traefik.* labels"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	dockertest.Docker(t, "pause", id)
	d.waitServers(t, host)
	dockertest.Docker(t, "unpause", id)
	d.waitServers(t, host, url(t, id, 8080))
	if n := strings.Count(d.log.String(), "settings dockroute does not act on"); n != 1 {
		t.Errorf("the foreign settings were logged %d times, want once:\n%s", n, d.log)
	}
}

// TestExplainSaysNothingListens: an app that listens on another port than
// the one routed is routed (Docker cannot tell), and explain says that
// nothing listens there; a working one gets no such note.
func TestExplainSaysNothingListens(t *testing.T) {
	dockertest.Require(t)
	deaf := dockertest.Run(t, hello(dockertest.Unique("deaf")+".test", "-e", "LISTEN=9000")...)
	fine := dockertest.Run(t, hello(dockertest.Unique("fine")+".test")...)
	out := explainOut(t, deaf, fine)
	if want := "NOTHING LISTENS on " + dockertest.IP(t, deaf, "bridge") + ":8080"; !strings.Contains(lineFor(out, deaf[:12])+out, want) {
		t.Errorf("explain lacks %q:\n%s", want, out)
	}
	if strings.Count(out, "NOTHING LISTENS") != 1 {
		t.Errorf("explain of one deaf and one working app:\n%s", out)
	}
}
