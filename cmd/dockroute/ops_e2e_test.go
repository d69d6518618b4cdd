//go:build e2e

package main

// End-to-end tests of running dockroute in production: config file and its
// live reload, the static routes file, self-healing output, metrics and
// /healthz, least privilege through an allow-list socket proxy, SIGHUP,
// the image, and the compose stacks.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// replaceFile writes data the way editors and Kubernetes do: a new file
// renamed over the old one.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (d *proc) waitFileContains(t *testing.T, substr string, present bool) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(d.file())
		return strings.Contains(string(data), substr) == present, fmt.Sprintf("published file: %q present=%v never reached:\n%s", substr, present, data)
	})
}

// TestConfigReload edits the config file under a running dockroute: a
// rename-over write and an in-place write are applied live; an invalid
// edit is refused and the running config stays; a setting that needs a
// restart is named, not applied.
func TestConfigReload(t *testing.T) {
	dockertest.Require(t)
	cfgPath := filepath.Join(t.TempDir(), "dockroute.yaml")
	writeFile(t, cfgPath, "log-level: info\n")
	d := startDaemon(t, nil, "--config", cfgPath)
	host, _ := d.routedHello(t, "reload")

	replaceFile(t, cfgPath, "traefik-entrypoints: websecure\n")
	d.waitFileContains(t, "entryPoints: [\"websecure\"]", true)

	replaceFile(t, cfgPath, "traefik-entrypoints: web\nbogus: 1\n")
	d.waitLog(t, `config file not reloaded; keeping the running config`)
	if !strings.Contains(d.log.String(), `line 2: unknown key \"bogus\"`) {
		t.Errorf("the refusal does not name the key and line:\n%s", d.log)
	}
	time.Sleep(300 * time.Millisecond)
	d.waitFileContains(t, "entryPoints: [\"websecure\"]", true)

	// An in-place write, as `echo >>` or a plain editor save does.
	if err := os.WriteFile(cfgPath, []byte("traefik-entrypoints: web\ntraefik-file: other.yml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitFileContains(t, "entryPoints: [\"web\"]", true)
	d.waitLog(t, "config changes that need a restart were not applied")
	if _, err := os.Stat(filepath.Join(d.dir, "other.yml")); err == nil {
		t.Fatal("a restart-only setting was applied live")
	}
	traefiktest.Check(t, d.dir, host)
}

// TestRoutesFile serves static routes beside containers, reloads the file
// on a rename-over write, keeps the old routes on a broken edit, and lets a
// static route win over a container claiming the same host.
func TestRoutesFile(t *testing.T) {
	dockertest.Require(t)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	shared, legacy := dockertest.Unique("shared")+".test", dockertest.Unique("legacy")+".test"
	writeFile(t, routes, fmt.Sprintf("routes:\n  %s: [http://127.0.0.1:9001]\n", legacy))
	d := startDaemon(t, nil, "--routes-file", routes)
	d.waitOracle(t, legacy+"/", traefik.Name(legacy, ""), "http://127.0.0.1:9001")

	id := dockertest.Run(t, hello(shared)...)
	d.waitServers(t, shared, url(t, id, 8080))

	replaceFile(t, routes, fmt.Sprintf("routes:\n  %s: [http://127.0.0.1:9001, http://backend.internal:9002]\n  %s: http://127.0.0.1:9003\n  bad_entry.test: http://127.0.0.1:1\n", legacy, shared))
	d.waitOracle(t, legacy+"/", traefik.Name(legacy, ""), "http://127.0.0.1:9001", "http://backend.internal:9002")
	d.waitOracle(t, shared+"/", traefik.Name(shared, ""), "http://127.0.0.1:9003")
	d.waitLog(t, "routes file entry skipped")
	out, err := exec.Command(binary, "explain", "--routes-file", routes, id).Output()
	if err != nil || !strings.Contains(string(out), shared+" is routed by the operator's routes file") {
		t.Fatalf("explain does not show the conflict: %v\n%s", err, out)
	}

	replaceFile(t, routes, "routes: [\n")
	d.waitLog(t, "routes file not reloaded")
	time.Sleep(300 * time.Millisecond)
	d.waitOracle(t, shared+"/", traefik.Name(shared, ""), "http://127.0.0.1:9003")

	replaceFile(t, routes, "routes: {}\n")
	d.waitServers(t, shared, url(t, id, 8080))
	d.waitServers(t, legacy)
}

// TestOutputSelfHeals deletes and then edits the published file: dockroute
// rewrites it within a second.
func TestOutputSelfHeals(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	host, _ := d.routedHello(t, "heal")
	want, _ := os.ReadFile(d.file())

	for _, damage := range []func(){
		func() { os.Remove(d.file()) },
		func() { writeFile(t, d.file(), "http: {broken\n") },
		func() { replaceFile(t, d.file(), "# someone else's file\n") },
	} {
		damage()
		start := time.Now()
		for {
			got, _ := os.ReadFile(d.file())
			if string(got) == string(want) {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("not rewritten within a second; the file holds:\n%s", got)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("rewritten after %v", time.Since(start).Round(time.Millisecond))
	}
	traefiktest.Check(t, d.dir, host)
}

func scrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	return fams
}

// value returns a metric's value for the given label (name=value), or -1.
func value(fams map[string]*dto.MetricFamily, name, label string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		match := label == ""
		for _, l := range m.Label {
			if l.GetName()+"="+l.GetValue() == label {
				match = true
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func healthz(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitHealthz(t *testing.T, addr string, status int, body string) {
	t.Helper()
	eventually(t, 15*time.Second, func() (bool, string) {
		s, b := healthz(addr)
		return s == status && strings.Contains(b, body), fmt.Sprintf("/healthz answers %d %q, want %d %q", s, b, status, body)
	})
}

// TestMetricsAndHealthz scrapes /metrics after real container events and
// parses it with Prometheus' own text parser; /healthz goes 503 when Docker
// goes away (the socket proxy stops) and back to 200 when it returns.
func TestMetricsAndHealthz(t *testing.T) {
	dockertest.Require(t)
	proxy := dockertest.NewProxy(t)
	proxy.Start(t)
	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemon(t, []string{"DOCKER_HOST=" + proxy.Host()}, "--metrics-addr", addr)
	waitHealthz(t, addr, 200, "ok")

	good := dockertest.Unique("metrics") + ".test"
	id := dockertest.Run(t, hello(good)...)
	dockertest.Run(t, hello(dockertest.Unique("noport")+".test", "-e", "PORT=9999")...)
	dockertest.Run(t, dockertest.HelloImage) // not opted in
	d.waitServers(t, good, url(t, id, 8080))

	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fams = scrape(t, addr)
		if value(fams, "dockroute_containers", "state=refused") == 1 || time.Now().After(deadline) {
			break
		}
	}
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"dockroute_containers", "state=routed", 1},
		{"dockroute_containers", "state=refused", 1},
		{"dockroute_containers", "state=ignored", 1},
		{"dockroute_containers_refused", "reason=port_not_exposed", 1},
		{"dockroute_routes", "", 1},
		{"dockroute_docker_connected", "", 1},
		{"dockroute_docker_reconnects_total", "", 0},
		{"dockroute_caddy_push_errors_total", "", 0},
	} {
		if got := value(fams, c.name, c.label); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
		}
	}
	if w := value(fams, "dockroute_publishes_total", "result=written"); w < 2 {
		t.Errorf("publishes written = %v, want at least 2 (start-up and the new route)", w)
	}
	if n := value(fams, "dockroute_publish_duration_seconds", ""); n < 2 {
		t.Errorf("publish latency histogram has %v samples", n)
	}
	// The new route's publish carried a Docker change: its latency from
	// the event's arrival was observed.
	if n := value(fams, "dockroute_docker_change_publish_seconds", ""); n < 1 {
		t.Errorf("change → publish histogram has %v samples, want at least 1", n)
	} else if h := fams["dockroute_docker_change_publish_seconds"].Metric[0].Histogram; h.GetSampleSum()/n <= 0 || h.GetSampleSum()/n > 5 {
		t.Errorf("change → publish took %.3f s on average, want a plausible latency (the quiet window is 0.1 s)", h.GetSampleSum()/n)
	}

	proxy.Stop()
	waitHealthz(t, addr, 503, "docker is unreachable")
	if v := value(scrape(t, addr), "dockroute_docker_connected", ""); v != 0 {
		t.Errorf("docker_connected = %v while Docker is away", v)
	}
	proxy.Start(t)
	waitHealthz(t, addr, 200, "ok")
	if v := value(scrape(t, addr), "dockroute_docker_reconnects_total", ""); v < 1 {
		t.Errorf("reconnects = %v after Docker came back", v)
	}
}

// leastPrivilege is the whole API surface dockroute needs, as a socket
// proxy would allow it: GET on /_ping, /version, /events, /containers/json
// and /containers/{id}/json (with or without a /vX.Y prefix).
var leastPrivilege = regexp.MustCompile(`^(/v[0-9.]+)?/(_ping|version|info|events|containers/json|containers/[^/]+/json|services|tasks)$`)

// TestLeastPrivilege runs dockroute through an allow-list proxy that
// refuses everything else, and checks that it routes as usual and that no
// refused request was one it needed.
func TestLeastPrivilege(t *testing.T) {
	dockertest.Require(t)
	proxy := dockertest.NewProxy(t)
	var mu sync.Mutex
	var refused []string
	proxy.Allow = func(r *http.Request) bool {
		ok := r.Method == http.MethodGet && leastPrivilege.MatchString(r.URL.Path)
		if !ok {
			mu.Lock()
			refused = append(refused, r.Method+" "+r.URL.Path)
			mu.Unlock()
		}
		return ok
	}
	proxy.Start(t)
	d := startDaemon(t, []string{"DOCKER_HOST=" + proxy.Host()})
	host, id := d.routedHello(t, "leastpriv")
	dockertest.Docker(t, "stop", "-t", "1", id)
	d.waitServers(t, host)

	mu.Lock()
	defer mu.Unlock()
	if len(refused) == 0 {
		t.Fatal("the proxy refused nothing, not even the client's HEAD /_ping: the allow-list is not in effect")
	}
	for _, r := range refused {
		// The client tries HEAD /_ping first and falls back to GET.
		if !strings.HasPrefix(r, "HEAD ") || !strings.HasSuffix(r, "/_ping") {
			t.Errorf("dockroute needed a request outside the allow-list: %s", r)
		}
	}
	if strings.Contains(d.log.String(), "level=ERROR") {
		t.Errorf("errors through the allow-list proxy:\n%s", d.log)
	}
}

// TestSIGHUPResyncs hides Docker's events (the proxy holds the event stream
// open and silent; reads of past events pass) so only a resync can see a
// new container: SIGHUP brings it.
func TestSIGHUPResyncs(t *testing.T) {
	dockertest.Require(t)
	proxy := dockertest.NewProxy(t)
	proxy.Hook = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/events") || r.URL.Query().Get("until") != "" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	}
	proxy.Start(t)
	d := startDaemon(t, []string{"DOCKER_HOST=" + proxy.Host()}, "--resync", "1h")
	d.waitPublished(t)
	host := dockertest.Unique("hup") + ".test"
	id := dockertest.Run(t, hello(host)...)
	time.Sleep(time.Second)
	if _, ok := servers(t, d.file())[host]; ok {
		t.Fatal("routed without events or resync: the test cannot show SIGHUP's effect")
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitServers(t, host, url(t, id, 8080))
	d.waitLog(t, "SIGHUP: full resync")
}

// TestImage runs the image `make image` built against the real engine,
// with the socket mounted read-only. It runs as an unprivileged user:
// without the socket's group it says what to do; with it, it routes a
// hello container into a directory that user owns.
func TestImage(t *testing.T) {
	dockertest.Require(t)
	const image = "dockroute/dockroute:dev"
	if err := exec.Command("docker", "image", "inspect", image).Run(); err != nil {
		t.Fatalf("image %s is missing: run `make image` (make test builds it)", image)
	}
	if user := dockertest.Docker(t, "image", "inspect", "-f", "{{.Config.User}}", image); strings.TrimSpace(user) != "65532:65532" {
		t.Errorf("the image runs as %q, want the unprivileged 65532:65532", user)
	}
	var sock syscall.Stat_t
	if err := syscall.Stat("/var/run/docker.sock", &sock); err != nil {
		t.Fatal(err)
	}
	if sock.Gid != 0 {
		denied := dockertest.Run(t, "-v", "/var/run/docker.sock:/var/run/docker.sock:ro", image)
		eventually(t, 15*time.Second, func() (bool, string) {
			out, _ := exec.Command("docker", "logs", denied).CombinedOutput()
			return strings.Contains(string(out), "give it the socket's group, e.g. docker run --group-add"), "the log of the image without the socket's group:\n" + string(out)
		})
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	dockertest.Run(t, "--group-add", strconv.Itoa(int(sock.Gid)), "-v", "/var/run/docker.sock:/var/run/docker.sock:ro", "-v", dir+":/dynamic", image)
	host := dockertest.Unique("image") + ".test"
	id := dockertest.Run(t, hello(host)...)
	path := filepath.Join(dir, "dockroute.yml")
	want := url(t, id, 8080)
	eventually(t, 15*time.Second, func() (bool, string) {
		return slices.Equal(servers(t, path)[host], []string{want}), "the image did not route " + host
	})
	traefiktest.Check(t, path, host)
}

// compose returns the Compose command: the v2 plugin where present, else
// docker-compose (v1, which .ci/run installs from Debian).
func compose(t *testing.T) []string {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("neither `docker compose` nor docker-compose is installed (.ci/run installs docker-compose)")
	}
	return []string{"docker-compose"}
}

// TestComposeFiles validates both stacks with Compose: only dockroute
// mounts the socket, read-only, and no network name is written in them.
func TestComposeFiles(t *testing.T) {
	for _, stack := range []string{"traefik", "caddy", "traefik-labels"} {
		c := compose(t)
		cmd := exec.Command(c[0], append(c[1:], "config")...)
		cmd.Dir = filepath.Join("..", "..", "compose", stack)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: compose config: %v\n%s", stack, err, out)
		}
		cfg := string(out)
		if n := strings.Count(cfg, "/var/run/docker.sock"); n != 2 || !strings.Contains(cfg, "docker.sock:ro") && !strings.Contains(cfg, "read_only: true") {
			t.Errorf("%s: the socket must be mounted once, read-only:\n%s", stack, cfg)
		}
		if strings.Contains(cfg, "name: dockroute") {
			t.Errorf("%s: a fixed network name makes copies of the stack collide:\n%s", stack, cfg)
		}
	}
}

// stack is a copy of a compose stack, up under its own project name.
type stack struct {
	t       *testing.T
	dir     string
	project string
	port    int
}

// upStack copies compose/NAME to a directory of its own (as a user copying
// the stack would), and brings it up with HTTP_PORT set to a free port.
// The stand-in proxy images come from `make standins`.
func upStack(t *testing.T, name string) *stack {
	t.Helper()
	s := &stack{t: t, dir: filepath.Join(t.TempDir(), name), project: strings.ReplaceAll(dockertest.Unique("dr"+name), "-", ""), port: caddytest.FreePort(t)}
	os.MkdirAll(s.dir, 0o755)
	for _, f := range []string{"docker-compose.yml", "caddy.json", "app.yml", ".env"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "compose", name, f)); err == nil {
			// The copy lives elsewhere: build contexts point back here.
			data = []byte(strings.ReplaceAll(string(data), "../..", mustAbs(t, "../..")))
			writeFile(t, filepath.Join(s.dir, f), string(data))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.run("logs", "--no-color")
			t.Logf("%s logs:\n%s", s.project, out)
		}
		s.run("down", "-v", "--remove-orphans")
	})
	if out, err := s.run("up", "-d"); err != nil {
		t.Fatalf("%s: up: %v\n%s", s.project, err, out)
	}
	return s
}

func (s *stack) run(args ...string) (string, error) {
	c := compose(s.t)
	cmd := exec.Command(c[0], append(append(c[1:], "-p", s.project), args...)...)
	cmd.Dir = s.dir
	var sock syscall.Stat_t
	syscall.Stat("/var/run/docker.sock", &sock)
	cmd.Env = append(os.Environ(), fmt.Sprintf("HTTP_PORT=%d", s.port), fmt.Sprintf("DOCKER_GID=%d", sock.Gid))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apiUnreachable checks that a tenant on the stack's network cannot reach
// Traefik's API: the host, which reaches the network's addresses as any
// container on it does, dials Traefik's address there.
func (s *stack) apiUnreachable(t *testing.T) {
	t.Helper()
	id, err := s.run("ps", "-q", "traefik")
	if err != nil || strings.TrimSpace(id) == "" {
		t.Fatalf("no traefik container: %v %s", err, id)
	}
	ip := strings.TrimSpace(dockertest.Docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", strings.TrimSpace(id)))
	if conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "8080"), time.Second); err == nil {
		conn.Close()
		t.Errorf("%s: Traefik's API answers at %s:8080, on the network tenants join", s.project, ip)
	}
}

func (s *stack) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestComposeStacksRun brings up two copies of the Traefik stack at once
// and the Caddy stack, with the stand-in proxy images: each routes its own
// hello and an app a user starts on its network, never the other copy's;
// the Caddy stack's explain recipe gives the daemon's answer; and down
// works once the user's app is removed, as the README says.
func TestComposeStacksRun(t *testing.T) {
	dockertest.Require(t)
	for _, img := range []string{"traefik:v3", "caddy:2"} {
		if exec.Command("docker", "image", "inspect", img).Run() != nil {
			t.Fatalf("image %s is missing: run `make standins` (make test builds them)", img)
		}
	}
	a, b, c := upStack(t, "traefik"), upStack(t, "traefik"), upStack(t, "caddy")
	for _, s := range []*stack{a, b, c} {
		waitAnswer(t, s.addr(), "hello.localhost", 200, "hello from")
		if s != c {
			s.apiUnreachable(t)
		}
		app := dockertest.Unique("app") + ".localhost"
		id := dockertest.Run(t, "--network", s.project+"_routed", "-e", "VIRTUALHOST="+app, "-e", "PORT=8080", dockertest.HelloImage)
		waitAnswer(t, s.addr(), app, 200, "hello from "+id[:12])
		for _, other := range []*stack{a, b, c} {
			if other != s {
				if status, body, err := caddytest.GetAnswered(other.addr(), app, "/"); status != 404 {
					t.Errorf("%s answers %d %q %v for %s, an app on %s's network; want 404 (not routed)", other.project, status, body, err, app, s.project)
				}
			}
		}
		if s == c {
			// A second replica comes by lookup (--caddy-dns): Caddy's
			// admin API is not written to.
			logs, _ := s.run("logs", "caddy")
			writes := strings.Count(logs, `"method":"PATCH"`)
			id2 := dockertest.Run(t, "--network", s.project+"_routed", "-e", "VIRTUALHOST="+app, "-e", "PORT=8080", dockertest.HelloImage)
			waitReplicas(t, "http://"+s.addr(), app, id, id2)
			if logs, _ = s.run("logs", "caddy"); strings.Count(logs, `"method":"PATCH"`) != writes {
				t.Errorf("a second replica in the Caddy stack wrote Caddy's config:\n%s", logs)
			}
			dockertest.Docker(t, "rm", "-f", id2)
			out, err := s.run("exec", "-T", "dockroute", "/dockroute", "explain")
			if err != nil || !strings.Contains(out, "answered by the running dockroute") || !strings.Contains(lineFor(out, id[:12]), ": routed") {
				t.Errorf("the Caddy stack's explain recipe: %v\n%s", err, out)
			}
		}
		dockertest.Docker(t, "rm", "-f", id)
	}
	if out, err := a.run("down"); err != nil {
		t.Fatalf("down after removing the user's app: %v\n%s", err, out)
	}
}

// TestExplainAsksTheDaemon: with --metrics-addr, explain gives the running
// daemon's answer, with the daemon's settings (here --health ignore, which
// routes a container whose healthcheck is still starting), and says so;
// without, it computes locally, with its own settings, and says so. A name
// that is no container makes it exit 1 either way.
func TestExplainAsksTheDaemon(t *testing.T) {
	dockertest.Require(t)
	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemon(t, nil, "--metrics-addr", addr, "--health", "ignore")
	host := dockertest.Unique("askd") + ".test"
	id := dockertest.Run(t, "-e", "VIRTUALHOST="+host, "-e", "PORT=8080", "-e", "HEALTHY_AFTER=1h", dockertest.HelloHealthImage)
	d.waitServers(t, host, url(t, id, 8080))

	explainWith := func(args ...string) (int, string, string) {
		cmd := exec.Command(binary, append([]string{"explain"}, args...)...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, out.String(), errOut.String()
	}
	code, out, note := explainWith("--metrics-addr", addr, id)
	if code != 0 || !strings.Contains(lineFor(out, id[:12]), ": routed") || !strings.Contains(note, "answered by the running dockroute at "+addr) {
		t.Fatalf("explain via the daemon: exit %d\n%s%s", code, out, note)
	}
	code, out, note = explainWith(id)
	if code != 0 || !strings.Contains(out, "healthcheck is still starting") || !strings.Contains(note, "computed here") {
		t.Fatalf("explain computed locally: exit %d\n%s%s", code, out, note)
	}
	for _, args := range [][]string{{"--metrics-addr", addr, "no-such-container-x"}, {"no-such-container-x"}} {
		if code, out, _ := explainWith(args...); code != 1 || !strings.Contains(out, "no such container") {
			t.Errorf("explain %v: exit %d, %q; want exit 1 saying no such container", args, code, out)
		}
	}
}

// TestComposeTraefikLabels brings up the migration stack: an app whose
// compose file was written for Traefik's Docker provider, unchanged, is
// routed through Traefik by dockroute (--traefik-labels), as is an app a
// user starts with such labels; one that defines a middleware in labels
// is refused, and explain says why.
func TestComposeTraefikLabels(t *testing.T) {
	dockertest.Require(t)
	if exec.Command("docker", "image", "inspect", "traefik:v3").Run() != nil {
		t.Fatal("image traefik:v3 is missing: run `make standins` (make test builds them)")
	}
	s := upStack(t, "traefik-labels")
	waitAnswer(t, s.addr(), "whoami.localhost", 200, "hello from")
	waitAnswer(t, s.addr(), "www.whoami.localhost", 200, "hello from")
	app := dockertest.Unique("lapp") + ".localhost"
	id := dockertest.Run(t, "--network", s.project+"_default",
		"--label", "traefik.enable=true",
		"--label", "traefik.http.routers.lapp.rule=Host(`"+app+"`) && PathPrefix(`/api`)",
		"--label", "traefik.http.services.lapp.loadbalancer.server.port=8080",
		dockertest.HelloImage)
	eventually(t, 15*time.Second, func() (bool, string) {
		status, body, err := caddytest.Get(s.addr(), app, "/api/x")
		return status == 200 && strings.Contains(body, "hello from "+id[:12]) && strings.Contains(body, "path /api/x"), fmt.Sprintf("%d %q %v", status, body, err)
	})
	if status, _, _ := caddytest.GetAnswered(s.addr(), app, "/"); status != 404 {
		t.Errorf("%s/ answers %d, want 404 (only /api is routed)", app, status)
	}
	bad := dockertest.Run(t, "--network", s.project+"_default",
		"--label", "traefik.enable=true",
		"--label", "traefik.http.routers.bad.rule=Host(`bad.localhost`)",
		"--label", "traefik.http.middlewares.strip.stripprefix.prefixes=/x",
		dockertest.HelloImage)
	eventually(t, 15*time.Second, func() (bool, string) {
		out, err := s.run("exec", "-T", "dockroute", "/dockroute", "explain", bad[:12])
		return strings.Contains(out, "traefik.http.middlewares.strip.stripprefix.prefixes is not read"), fmt.Sprintf("explain: %v\n%s", err, out)
	})
}
