//go:build e2e

package main

// Faults a real engine can show safely: signals a container survives, a
// socket proxy refusing or freezing the API, a full disk, directories
// re-created under dockroute's watches. Faults a real engine cannot safely
// be made to show (a restart, a frozen dockerd) are in provider/docker's
// fault-injection tests against a fake engine.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik"
)

// TestSurvivedStopSignal sends SIGTERM to an app that ignores it: dockroute
// drains it at once, and routes it again once it is still running after its
// stop timeout (1 s here) plus the slack; explain agrees at each step.
func TestSurvivedStopSignal(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	host := dockertest.Unique("survivor") + ".test"
	id := dockertest.Run(t, hello(host, "-e", "IGNORE=TERM", "--stop-timeout", "1")...)
	d.waitServers(t, host, url(t, id, 8080))

	dockertest.Docker(t, "kill", "-s", "TERM", id)
	killed := time.Now()
	d.waitServers(t, host)
	if line := lineFor(explainOut(t, id), id[:12]); !strings.Contains(line, "stopping") {
		t.Fatalf("while draining, explain says %q", line)
	}
	d.waitServers(t, host, url(t, id, 8080))
	took := time.Since(killed)
	if took < 2500*time.Millisecond {
		t.Fatalf("routed again %v after SIGTERM, before its 1 s stop timeout plus 2 s slack ran out", took)
	}
	if line := lineFor(explainOut(t, id), id[:12]); !strings.Contains(line, "routed") || strings.Contains(line, "NOT") {
		t.Fatalf("dockroute routes the survivor again, but explain says %q", line)
	}
	t.Logf("routed again %v after the signal it survived", took)
}

// TestRefusedEventsBackOff runs dockroute through a socket proxy that
// refuses /events: it must retry with backoff, not spin (it did 30 resyncs
// and logged 30 warnings in 3 s), and say why /healthz is unhealthy.
func TestRefusedEventsBackOff(t *testing.T) {
	dockertest.Require(t)
	proxy := dockertest.NewProxy(t)
	proxy.Allow = func(r *http.Request) bool { return !strings.HasSuffix(r.URL.Path, "/events") }
	proxy.Start(t)
	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemon(t, []string{"DOCKER_HOST=" + proxy.Host()}, "--metrics-addr", addr)
	time.Sleep(3 * time.Second)
	// Backoff allows attempts at 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s. Only
	// the attempts count: the engine may run other tests' containers, each
	// with a warning of its own.
	n := strings.Count(d.log.String(), "docker event stream lost")
	if n == 0 || n > 6 {
		t.Fatalf("%d warnings in 3 s, want 1 to 6:\n%s", n, d.log)
	}
	t.Logf("%d attempts and warnings in 3 s", n)
	if code, body := healthz(addr); code != 503 {
		t.Fatalf("/healthz answers %d %q while /events is refused", code, body)
	}
}

// TestOutageConvergesFast cuts Docker off for 7 s (long enough for a
// backoff to have grown), starts a container meanwhile, and measures how
// long after Docker answers again it is routed: at most 2 s.
func TestOutageConvergesFast(t *testing.T) {
	dockertest.Require(t)
	proxy := dockertest.NewProxy(t)
	proxy.Start(t)
	d := startDaemon(t, []string{"DOCKER_HOST=" + proxy.Host()}, "--resync", "1h")
	d.waitPublished(t)

	proxy.Stop()
	host := dockertest.Unique("outage") + ".test"
	id := dockertest.Run(t, hello(host)...)
	time.Sleep(7 * time.Second)
	proxy.Start(t)
	back := time.Now()
	want := []string{url(t, id, 8080)}
	eventually(t, 2*time.Second, func() (bool, string) {
		got := servers(t, d.file())[host]
		return len(got) == 1 && got[0] == want[0], fmt.Sprintf("%s: servers %v, want %v", host, got, want)
	})
	t.Logf("routed %v after Docker answered again", time.Since(back))
}

// TestFrozenEngine freezes the Docker API (as SIGSTOP on dockerd would:
// connections stay open, nothing is answered): /healthz must turn 503 and
// dockroute_docker_connected 0 within 15 s, the published file must stay,
// and both must recover at once when it thaws.
func TestFrozenEngine(t *testing.T) {
	dockertest.Require(t)
	proxy := dockertest.NewProxy(t)
	proxy.Start(t)
	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemon(t, []string{"DOCKER_HOST=" + proxy.Host()}, "--metrics-addr", addr, "--pprof")
	host, id := d.routedHello(t, "frozen")
	before := mustRead(t, d.file())

	proxy.Freeze()
	frozen := time.Now()
	waitHealthzWithin(t, 15*time.Second, addr, 503, "docker is unreachable")
	t.Logf("frozen engine noticed after %v", time.Since(frozen))
	if v := value(scrape(t, addr), "dockroute_docker_connected", ""); v != 0 {
		t.Fatalf("docker_connected = %v while the engine is frozen", v)
	}
	// What an operator looks at while it is stuck: the process's own
	// metrics, and its goroutines (--pprof).
	fams := scrape(t, addr)
	if value(fams, "go_goroutines", "") <= 0 || value(fams, "process_resident_memory_bytes", "") <= 0 {
		t.Fatal("/metrics has no Go or process collectors (go_goroutines, process_resident_memory_bytes)")
	}
	if resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("--pprof: /debug/pprof/goroutine: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if after := mustRead(t, d.file()); !bytes.Equal(before, after) {
		t.Fatalf("the published file changed while the engine was frozen:\n%s", after)
	}
	proxy.Thaw()
	thawed := time.Now()
	waitHealthzWithin(t, 2*time.Second, addr, 200, "ok")
	t.Logf("healthy again %v after the thaw", time.Since(thawed))
	d.waitServers(t, host, url(t, id, 8080))
}

func waitHealthzWithin(t *testing.T, timeout time.Duration, addr string, status int, body string) {
	t.Helper()
	eventually(t, timeout, func() (bool, string) {
		code, got := healthz(addr)
		return code == status && strings.Contains(got, body), fmt.Sprintf("/healthz answers %d %q, want %d %q", code, got, status, body)
	})
}

// tmpfs mounts a small tmpfs (a disk that fills up) for the test. It needs
// root, as CI has.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("this test mounts a small tmpfs to fill it up and needs root: mount: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the file system is full, and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestFullDisk fills the output's file system: publishing fails, and must
// be retried with backoff (it was retried 94 times in 20 s, woken by its own
// temporary files), keep the old file whole, turn /healthz 503 with the
// reason, and recover within a second or so of space returning.
func TestFullDisk(t *testing.T) {
	dockertest.Require(t)
	dir := tmpfs(t, "128k")
	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemonDir(t, dir, nil, "--metrics-addr", addr)
	hostA, a := d.routedHello(t, "disk")
	before := mustRead(t, d.file())
	errorsBefore := value(scrape(t, addr), "dockroute_publishes_total", "result=error")

	filler := fill(t, dir)
	hostB := dockertest.Unique("diskb") + ".test"
	b := dockertest.Run(t, hello(hostB)...)
	waitHealthzWithin(t, 5*time.Second, addr, 503, "publishing fails")
	time.Sleep(4 * time.Second)
	tries := value(scrape(t, addr), "dockroute_publishes_total", "result=error") - errorsBefore
	// 0.25 + 0.5 + 1 + 1 + 1 + 1 s of backoff: at most 7 tries in 5 s.
	if tries < 2 || tries > 7 {
		t.Fatalf("%v failed publishes in about 5 s on a full disk; want a few, backing off", tries)
	}
	if after := mustRead(t, d.file()); !bytes.Equal(before, after) {
		t.Fatalf("the published file changed on a full disk:\n%s", after)
	}
	// The file, the filler and the (empty) directory of temporary files.
	entries, _ := os.ReadDir(dir)
	temps, _ := os.ReadDir(filepath.Join(dir, traefik.TempDir))
	if len(entries) != 3 || len(temps) != 0 {
		t.Fatalf("litter on the full disk: %v, in %s: %v", entries, traefik.TempDir, temps)
	}

	os.Remove(filler)
	freed := time.Now()
	d.waitServers(t, hostB, url(t, b, 8080))
	took := time.Since(freed)
	if took > 1500*time.Millisecond {
		t.Fatalf("published %v after space returned; want about a second at most", took)
	}
	t.Logf("%v failed publishes in ~5 s; published %v after space returned", tries, took)
	waitHealthzWithin(t, 2*time.Second, addr, 200, "ok")
	d.waitServers(t, hostA, url(t, a, 8080))
}

// TestRevertedRoutesFileFits: a routes file of 3,000 routes makes the
// Traefik file too big for its disk; once the operator reverts it, the
// next publish fits. Before, the 3,000 routes were kept as 503s for
// --unavailable-grace and kept the file too big until the grace ended.
func TestRevertedRoutesFileFits(t *testing.T) {
	dockertest.Require(t)
	dir := tmpfs(t, "256k")
	routes := filepath.Join(t.TempDir(), "routes.yml")
	writeFile(t, routes, "routes:\n  small.test: http://127.0.0.1:9001\n")
	d := startDaemonDir(t, dir, nil, "--routes-file", routes, "--unavailable-grace", "5m")
	d.waitOracle(t, "small.test/", traefik.Name("small.test", ""), "http://127.0.0.1:9001")
	var big strings.Builder
	big.WriteString("routes:\n")
	for i := range 3000 {
		fmt.Fprintf(&big, "  bulk-%04d-with-a-longish-name.test: http://127.0.0.1:9001\n", i)
	}
	writeFileAtomic(t, routes, big.String())
	d.waitLog(t, "no space left on device")
	writeFileAtomic(t, routes, "routes:\n  small.test: http://127.0.0.1:9002\n")
	d.waitOracle(t, "small.test/", traefik.Name("small.test", ""), "http://127.0.0.1:9002")
	d.waitLog(t, "dropping the routes kept as 503")
}

// TestWatchesSurviveRecreatedDirectories re-creates the output directory,
// the routes file's and the config file's (rm -rf dir && mkdir dir): each
// watch must follow, and the log must say so. Before, nothing was seen and
// nothing logged.
func TestWatchesSurviveRecreatedDirectories(t *testing.T) {
	dockertest.Require(t)
	base := t.TempDir()
	confDir, routesDir := filepath.Join(base, "conf"), filepath.Join(base, "routes")
	conf, routes := filepath.Join(confDir, "dockroute.yaml"), filepath.Join(routesDir, "routes.yaml")
	for _, dir := range []string{confDir, routesDir} {
		os.Mkdir(dir, 0o755)
	}
	writeFile(t, conf, "log-level: info\n")
	writeFile(t, routes, "routes:\n  static.test: http://10.9.9.1\n")
	d := startDaemon(t, nil, "--config", conf, "--routes-file", routes)
	d.waitFileContains(t, "10.9.9.1", true)

	// Each step pauses as an operator would between commands: the removal
	// alone must not be what makes the change seen.
	os.RemoveAll(d.dir)
	os.Mkdir(d.dir, 0o755)
	d.waitFileContains(t, "10.9.9.1", true) // rewritten by self-healing
	time.Sleep(300 * time.Millisecond)
	os.Remove(d.file())
	d.waitFileContains(t, "10.9.9.1", true) // and still healing in the new directory

	os.RemoveAll(routesDir)
	os.Mkdir(routesDir, 0o755)
	time.Sleep(300 * time.Millisecond)
	writeFile(t, routes, "routes:\n  static.test: http://10.9.9.2\n")
	d.waitFileContains(t, "10.9.9.2", true)

	os.RemoveAll(confDir)
	os.Mkdir(confDir, 0o755)
	time.Sleep(300 * time.Millisecond)
	writeFile(t, conf, "log-level: info\nhealth: ignore\n")
	d.waitLog(t, "config reloaded")
	if n := strings.Count(d.log.String(), "watched directory was removed or moved"); n < 3 {
		t.Fatalf("%d warnings about removed directories, want one per directory:\n%s", n, d.log)
	}

	// SIGHUP sets every watch up again and re-reads the files.
	watching := strings.Count(d.log.String(), "watching the directory")
	d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, func() (bool, string) {
		n := strings.Count(d.log.String(), "watching the directory")
		return n >= watching+3, fmt.Sprintf("%d re-armed watches after SIGHUP, want 3 more than %d", n, watching)
	})
}

// TestStaleTempFilesRemoved leaves temporary files of a crashed dockroute
// (and files that are not its own) in the output directory: only its own
// pattern is removed at start.
func TestStaleTempFilesRemoved(t *testing.T) {
	dockertest.Require(t)
	dir := filepath.Join(t.TempDir(), "dynamic")
	os.Mkdir(dir, 0o755)
	ours := []string{".dockroute.yml.tmp-123", ".dockroute.yml.tmp-456"}
	theirs := []string{"other.yml", ".other.yml.tmp-1", "dockroute.yml.tmp-1", ".dockroute.yml.bak"}
	for _, n := range append(append([]string{}, ours...), theirs...) {
		writeFile(t, filepath.Join(dir, n), "http: {}\n")
	}
	d := startDaemonDir(t, dir, nil)
	d.waitPublished(t)
	d.waitLog(t, "removed temporary files an earlier run left")
	for _, n := range ours {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s is still there", n)
		}
	}
	for _, n := range theirs {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s, not dockroute's, was removed", n)
		}
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReloadValidatesMergedConfig: an edit valid on its own but invalid
// beside the settings a reload cannot change (here: the output stays
// caddy, which needs a listen address) is refused with the file and line,
// and dockroute's server in Caddy keeps its listener. Before, it was
// applied and Caddy got `"listen": null`.
func TestReloadValidatesMergedConfig(t *testing.T) {
	dockertest.Require(t)
	bin := caddytest.Binaries(t)[0]
	c := caddytest.Start(t, bin, nil)
	listen := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	cfgPath := filepath.Join(t.TempDir(), "dockroute.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("output: caddy\ncaddy-admin: %s\ncaddy-listen: %s\n", c.Admin, listen))
	d := startDaemon(t, nil, "--config", cfgPath)
	waitAnswer(t, listen, "nothing.test", 404, "no route")

	replaceFile(t, cfgPath, fmt.Sprintf("output: traefik\ncaddy-admin: %s\ncaddy-listen: \"\"\n", c.Admin))
	d.waitLog(t, "config file not reloaded; keeping the running config")
	if !strings.Contains(d.log.String(), "line 3: caddy-listen") {
		t.Fatalf("the refusal does not name the file's line:\n%s", d.log)
	}
	time.Sleep(500 * time.Millisecond)
	if raw, err := c.Config("/id/dockroute/listen"); err != nil || !strings.Contains(string(raw), listen) {
		t.Fatalf("dockroute's server listens on %s (%v), want %s", raw, err, listen)
	}
	waitAnswer(t, listen, "nothing.test", 404, "no route")
}

// TestScopeLeavesForeignContainersAlone runs an opted-in container without
// the tests' label beside dockroute scoped to that label (as every test
// daemon is): it is not routed, not counted in /metrics, and explain says
// it is out of scope.
func TestScopeLeavesForeignContainersAlone(t *testing.T) {
	dockertest.Require(t)
	foreignHost := dockertest.Unique("foreign") + ".test"
	foreign := dockertest.Docker(t, "run", "-d", "-e", "VIRTUALHOST="+foreignHost, "-e", "PORT=8080", dockertest.HelloImage)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", foreign).Run() })
	addr := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t))
	d := startDaemon(t, nil, "--metrics-addr", addr)
	host, _ := d.routedHello(t, "scoped")
	if got := servers(t, d.file())[foreignHost]; got != nil {
		t.Fatalf("a container outside the scope is routed: %v", got)
	}
	fams := scrape(t, addr)
	if n := value(fams, "dockroute_containers", "state=routed"); n != 1 {
		t.Fatalf("routed containers = %v, want 1 (%s only)", n, host)
	}
	out, err := exec.Command(binary, "explain", "--filter", "label="+dockertest.TestLabel, foreign).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "outside dockroute's scope") {
		t.Fatalf("explain of the foreign container: %v\n%s", err, out)
	}
}

// TestTwoWritersAreNamed: two dockroutes with different settings on one
// Traefik file each put their own back, every 0.3 s, with a line at Info.
// Now the first to count the fight names it as an error (and the other
// writer as a dockroute) and puts the file back at most every 30 s, so
// the fight stops.
func TestTwoWritersAreNamed(t *testing.T) {
	dockertest.Require(t)
	dir := filepath.Join(t.TempDir(), "dynamic")
	a := startDaemonDir(t, dir, nil)
	a.routedHello(t, "fight")
	b := startDaemonDir(t, dir, nil, "--traefik-entrypoints", "other")
	eventually(t, 20*time.Second, func() (bool, string) {
		logs := a.log.String() + b.log.String()
		return strings.Contains(logs, "another writer keeps replacing the output") && strings.Contains(logs, `writer="another dockroute`),
			"no fight named:\n" + logs
	})
	time.Sleep(time.Second) // the last put-backs before the fight was named
	changes, last := 0, mustRead(t, a.file())
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		if now, err := os.ReadFile(a.file()); err == nil && !bytes.Equal(now, last) {
			changes, last = changes+1, now
		}
	}
	if changes > 1 {
		t.Errorf("the file changed %d times in 5 s once the fight was named; want the put-backs held off", changes)
	}
}
