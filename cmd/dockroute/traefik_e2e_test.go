//go:build e2e

package main

// End-to-end tests through a real Traefik (v3.7.13, built by `make
// traefik`): dockroute writes the file-provider directory Traefik watches,
// and requests go through Traefik's entrypoints to real containers.

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// startTraefik runs a real Traefik and a dockroute writing its directory.
func startTraefik(t *testing.T, args ...string) (*proc, *traefiktest.Traefik) {
	t.Helper()
	tr := traefiktest.Start(t, t.TempDir()+"/dynamic")
	d := startDaemonDir(t, tr.Dir, nil, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("traefik log:\n%s", tr.Log())
		}
	})
	return d, tr
}

// through sends a request with Host host to addr (scheme://host:port) and
// returns the status, body and Location header. TLS is accepted whatever
// the certificate (Traefik's default one is self-signed); SNI is host.
func through(addr, host, path string) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodGet, addr+path, nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Host = host
	c := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}},
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("Location"), nil
}

// waitThrough polls until host+path answers status with a body containing
// body.
func waitThrough(t *testing.T, addr, host, path string, status int, body string) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		s, b, _, err := through(addr, host, path)
		return err == nil && s == status && strings.Contains(b, body), fmt.Sprintf("%s%s via %s: %d %q %v, want %d %q", host, path, addr, s, b, err, status, body)
	})
}

// waitReplicas polls until requests for host reach exactly the containers
// ids (by the hostname hello prints), or none (404) when ids is empty.
func waitReplicas(t *testing.T, addr, host string, ids ...string) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		seen := map[string]bool{}
		for range 4 * max(len(ids), 1) {
			s, b, _, err := through(addr, host, "/")
			switch {
			case err != nil:
				return false, err.Error()
			case s == 404 && len(ids) == 0:
				return true, ""
			case s != 200:
				return false, fmt.Sprintf("%s answered %d %q", host, s, b)
			}
			seen[strings.Fields(strings.TrimPrefix(b, "hello from "))[0]] = true
		}
		for _, id := range ids {
			if !seen[id[:12]] {
				return false, fmt.Sprintf("%s reaches %v, want %d replicas", host, seen, len(ids))
			}
		}
		return len(seen) == len(ids), fmt.Sprintf("%s reaches %v, want %d replicas", host, seen, len(ids))
	})
}

// TestTraefikLifecycle drives a host's containers through their lifecycle
// and checks, through Traefik, which replicas serve it at each step.
func TestTraefikLifecycle(t *testing.T) {
	dockertest.Require(t)
	_, tr := startTraefik(t)
	web := "http://" + tr.Web
	host := dockertest.Unique("tlife") + ".test"

	a := dockertest.Run(t, hello(host)...)
	waitReplicas(t, web, host, a)
	b := dockertest.Run(t, hello(host)...)
	waitReplicas(t, web, host, a, b)

	dockertest.Docker(t, "pause", a)
	waitReplicas(t, web, host, b)
	dockertest.Docker(t, "unpause", a)
	waitReplicas(t, web, host, a, b)

	dockertest.Docker(t, "stop", "-t", "1", a)
	waitReplicas(t, web, host, b)
	dockertest.Docker(t, "start", a)
	waitReplicas(t, web, host, a, b)

	dockertest.Docker(t, "kill", b)
	waitReplicas(t, web, host, a)
	dockertest.Docker(t, "rm", "-f", a)
	waitReplicas(t, web, host)
}

// TestTraefikRouting: paths and strip, several ports of one container,
// and health, through Traefik.
func TestTraefikRouting(t *testing.T) {
	dockertest.Require(t)
	_, tr := startTraefik(t)
	web := "http://" + tr.Web
	host := dockertest.Unique("troute") + ".test"
	other := dockertest.Unique("tport") + ".test"

	root := dockertest.Run(t, hello(host, "-e", "LISTEN=8080,9090", "--expose", "9090", "-e", "VIRTUALHOST="+host+", "+other+":9090")...)
	api := dockertest.Run(t, hello(host+"/api", "-e", "VIRTUAL_PATH_STRIP=true")...)
	for path, want := range map[string]string{
		"/":      root[:12] + " port 8080 host " + host + " path /",
		"/apix":  root[:12] + " port 8080 host " + host + " path /apix",
		"/api":   api[:12] + " port 8080 host " + host + " path /",
		"/api/x": api[:12] + " port 8080 host " + host + " path /x",
	} {
		waitThrough(t, web, host, path, 200, want)
	}
	waitThrough(t, web, other, "/", 200, root[:12]+" port 9090")

	healthHost := dockertest.Unique("thealth") + ".test"
	h := dockertest.Run(t, "-e", "VIRTUALHOST="+healthHost, "-e", "PORT=8080", "-e", "HEALTHY_AFTER=2s", dockertest.HelloHealthImage)
	if s, _, _, _ := through(web, healthHost, "/"); s != 404 {
		t.Fatalf("a container whose healthcheck is starting answers %d through Traefik", s)
	}
	waitThrough(t, web, healthHost, "/", 200, h[:12])
	dockertest.Docker(t, "exec", h, "/hello", "unhealthy")
	waitThrough(t, web, healthHost, "/", 404, "")
}

// TestTraefikTLS: with --traefik-tls and --traefik-redirect web, a host is
// served over HTTPS with Traefik's default certificate on websecure, and
// plain HTTP on web redirects there permanently.
func TestTraefikTLS(t *testing.T) {
	dockertest.Require(t)
	_, tr := startTraefik(t, "--traefik-tls", "--traefik-entrypoints", "websecure", "--traefik-redirect", "web")
	host := dockertest.Unique("ttls") + ".test"
	id := dockertest.Run(t, hello(host, "--label", "dockroute.middlewares=hsts")...)
	waitThrough(t, "https://"+tr.WebSecure, host, "/", 200, "hello from "+id[:12])
	if sts := hstsHeader(t, "https://"+tr.WebSecure, host); sts != "max-age=31536000; includeSubDomains" {
		t.Errorf("the hsts set over HTTPS: Strict-Transport-Security %q", sts)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		s, _, loc, err := through("http://"+tr.Web, host, "/x?y=1")
		return err == nil && (s == 301 || s == 308) && loc == "https://"+host+"/x?y=1", fmt.Sprintf("plain HTTP answered %d Location %q %v", s, loc, err)
	})
}

// TestDelivery: with --traefik-api, dockroute confirms through Traefik's API
// that Traefik runs every router it wrote, and says so in /metrics and
// explain; a dockroute writing where Traefik does not look (the silent
// failure of a bind-mounted file Traefik never sees change) turns /healthz
// 503 "not delivered" once Traefik had its grace. The Caddy output says
// the same words from Caddy's admin API.
func TestDelivery(t *testing.T) {
	dockertest.Require(t)
	tr := traefiktest.Start(t, t.TempDir()+"/dynamic")
	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemonDir(t, tr.Dir, nil, "--traefik-api", tr.API, "--metrics-addr", addr)
	host, id := d.routedHello(t, "delivered")
	eventually(t, 10*time.Second, func() (bool, string) {
		v := value(scrape(t, addr), "dockroute_delivered", "")
		return v == 1, fmt.Sprintf("dockroute_delivered = %v", v)
	})
	out, err := exec.Command(binary, "explain", "--traefik-api", tr.API, id).CombinedOutput()
	if want := "(delivered: Traefik runs " + traefik.Name(host, "") + "@file)"; err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("explain: %v\n%s\nwant %q", err, out, want)
	}

	// Written where Traefik does not look: the container's router is
	// there (the first dockroute wrote it), the static route's is not.
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	lost := dockertest.Unique("lost") + ".test"
	writeFile(t, routes, "routes:\n  "+lost+": http://127.0.0.1:9\n")
	addr2 := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d2 := startDaemon(t, nil, "--traefik-api", tr.API, "--metrics-addr", addr2, "--routes-file", routes)
	d2.waitPublished(t)
	waitHealthzWithin(t, 15*time.Second, addr2, 503, "not delivered: the proxy does not run 1 of the 2 routes dockroute published ("+traefik.Name(lost, "")+"@file: not loaded)")
	if v := value(scrape(t, addr2), "dockroute_undelivered_routes", ""); v != 1 {
		t.Fatalf("dockroute_undelivered_routes = %v, want 1", v)
	}
	d2.waitLog(t, "not delivered")

	// The Caddy output, in the same words.
	c := caddytest.Start(t, caddytest.Binaries(t)[0], nil)
	listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	startCaddyDaemon(t, c, listen)
	waitAnswer(t, listen, host, 200, id[:12])
	out, err = exec.Command(binary, "explain", "--output", "caddy", "--caddy-admin", c.Admin, id).CombinedOutput()
	if want := "(delivered: Caddy's server dockroute runs this route)"; err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("explain for caddy: %v\n%s\nwant %q", err, out, want)
	}
}

// hstsHeader is the Strict-Transport-Security header of host's "/" at
// addr (scheme://host:port).
func hstsHeader(t *testing.T, addr, host string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, addr+"/", nil)
	req.Host = host
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Strict-Transport-Security")
}
