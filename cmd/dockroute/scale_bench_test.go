//go:build e2e

package main

// The load harness: the real dockroute binary, with the real Docker
// client, against the fake engine's Docker API (enginetest.Handler) at
// 100, 1,000 and 10,000 containers, since 10,000 real containers do not fit
// on this machine. `make bench` runs it; docs/performance.md
// records what it printed.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// plainBinary builds dockroute as `make build` does, static and without
// the race detector (which would multiply its memory and CPU), once per
// run.
func plainBinary(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(filepath.Dir(binary), "dockroute-plain")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building dockroute: %v\n%s", err, out)
	}
	return bin
}

// scaleContainer is the i-th synthetic container: a host of its own on
// port 8080 at a distinct address.
func scaleContainer(i int) enginetest.Container {
	return enginetest.Container{
		ID: fmt.Sprintf("%064x", i+1), Name: fmt.Sprintf("app%d", i),
		Env: []string{fmt.Sprintf("VIRTUALHOST=app%d.scale.test", i), "PORT=8080"},
		IP:  fmt.Sprintf("10.%d.%d.%d", (i+1)>>16&255, (i+1)>>8&255, (i+1)&255),
	}
}

// BenchmarkScale reports, per fleet size: start-up to the first complete
// publish (and dockroute's CPU time until then, and the harness's: the
// fake engine answering, on the same two cores), Docker API calls at
// start-up and per event, event→published latency (p50/p99 of
// scaleSamples single starts, with no quiet window: --coalesce-quiet 0),
// publishes for a burst of 100 starts, bytes per publish, peak RSS and
// idle CPU. Run it with -benchtime 1x: each size runs once.
func BenchmarkScale(b *testing.B) {
	bin := plainBinary(b)
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			for range b.N {
				scaleRun(b, bin, n)
			}
		})
	}
}

// scaleSamples is how many single starts the latencies are taken from: of
// 500, the p99 is the fifth slowest (of 50 it was the slowest: one
// hiccup of the 2 cores the harness shares with dockroute, or of the
// disk, decided it).
const scaleSamples = 500

func scaleRun(b *testing.B, bin string, n int) {
	e := enginetest.New()
	e.LogLimit = 256
	for i := range n {
		e.Run(scaleContainer(i))
	}
	e.Age(time.Hour) // started long ago: no replay of their starts
	dir := b.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: enginetest.Handler(e)}
	go srv.Serve(l)
	defer srv.Close()

	out := filepath.Join(dir, "dynamic")
	os.MkdirAll(out, 0o755)
	file := filepath.Join(out, "dockroute.yml")
	w, err := fsnotify.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	w.Add(out)

	metrics := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))
	cmd := exec.Command(bin, "run", "--traefik-dir", out, "--swarm", "off", "--resync", "1h",
		"--coalesce-quiet", "0", "--coalesce-max", "0", "--unavailable-grace", "0", "--metrics-addr", metrics, "--log-format", "json")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock)
	log := &caddytest.Buffer{} // one line per publish, with its latency from the event
	cmd.Stderr = log
	harness0 := cpuTime(b, os.Getpid())
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	rendered := &renderedFile{w: w, path: file}
	rendered.wait(b, 60*time.Second, func(data []byte) bool { return bytes.Count(data, []byte("\n      rule: ")) == n })
	firstPublish := time.Since(start)
	syncCPU := cpuTime(b, cmd.Process.Pid)
	harnessCPU := cpuTime(b, os.Getpid()) - harness0
	lists, inspects := e.Calls("ContainerList"), e.Calls("ContainerInspect")

	// Single starts, one at a time: event → the file renamed into place
	// with the new host.
	var lat []time.Duration
	before := e.Calls("ContainerInspect")
	logged := len(log.String())
	for i := n; i < n+scaleSamples; i++ {
		host := fmt.Sprintf("app%d.scale.test", i)
		t0 := time.Now()
		e.Run(scaleContainer(i))
		rendered.next(b, 10*time.Second, func(data []byte) bool { return bytes.Contains(data, []byte("Host(`"+host+"`)")) })
		lat = append(lat, time.Since(t0))
	}
	perEvent := float64(e.Calls("ContainerInspect")-before) / scaleSamples
	slices.Sort(lat)
	internal := sinceChange(b, log.String()[logged:])

	// A burst of 100 starts at once.
	wrote := writtenCount(b, metrics)
	first := n + scaleSamples
	for i := first; i < first+100; i++ {
		e.Run(scaleContainer(i))
	}
	last := fmt.Sprintf("app%d.scale.test", first+99)
	rendered.wait(b, 10*time.Second, func(data []byte) bool {
		return bytes.Count(data, []byte("\n      rule: ")) == first+100 && bytes.Contains(data, []byte(last))
	})
	burst := writtenCount(b, metrics) - wrote
	info, _ := os.Stat(file)

	cpu0 := cpuTime(b, cmd.Process.Pid)
	time.Sleep(2 * time.Second)
	idle := (cpuTime(b, cmd.Process.Pid) - cpu0) / 2

	b.ReportMetric(float64(firstPublish.Milliseconds()), "first-publish-ms")
	b.ReportMetric(float64(syncCPU.Milliseconds()), "first-publish-cpu-ms")
	b.ReportMetric(float64(harnessCPU.Milliseconds()), "first-publish-harness-cpu-ms")
	b.ReportMetric(float64(lists), "start-lists")
	b.ReportMetric(float64(inspects)/float64(n), "start-inspects/container")
	b.ReportMetric(perEvent, "inspects/event")
	b.ReportMetric(ms(lat[len(lat)/2]), "event-p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "event-p99-ms")
	b.ReportMetric(ms(internal[len(internal)/2]), "change-publish-p50-ms")
	b.ReportMetric(ms(internal[len(internal)*99/100]), "change-publish-p99-ms")
	b.ReportMetric(burst, "publishes/burst100")
	b.ReportMetric(float64(info.Size()), "bytes/publish")
	b.ReportMetric(peakRSS(b, cmd.Process.Pid), "peak-rss-MB")
	b.ReportMetric(idle.Seconds()*1000, "idle-cpu-ms/s")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sinceChange reads, from dockroute's JSON log, each publish's latency
// from the Docker event's arrival to the publish's end (the file renamed
// into place): the pipeline's own share of event →
// published, without the harness's (the fake engine sending the event,
// fsnotify waking the benchmark, its reading the file). Sorted.
func sinceChange(b *testing.B, log string) []time.Duration {
	var ds []time.Duration
	for line := range strings.SplitSeq(log, "\n") {
		var rec struct {
			Msg         string `json:"msg"`
			SinceChange string `json:"since_change"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "published" {
			continue
		}
		if d, err := time.ParseDuration(rec.SinceChange); err == nil && d > 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		b.Fatalf("no publish with since_change in dockroute's log:\n%q", log)
	}
	slices.Sort(ds)
	return ds
}

// renderedFile is the file dockroute writes, as the harness waits for it.
type renderedFile struct {
	w    *fsnotify.Watcher
	path string
	// buf is kept from read to read: a new one per read (2.7 MB at
	// 10,000 routes) had the harness collecting garbage beside what it
	// measures.
	buf []byte
}

// wait waits until the file satisfies ok, reading it each time a new
// version is renamed into place (or every 50 ms): reading it on every
// write to the directory would take the CPU dockroute is measured on.
func (r *renderedFile) wait(b *testing.B, timeout time.Duration, ok func([]byte) bool) {
	r.await(b, timeout, true, ok)
}

// next waits as wait does, but first for a new version: for a change the
// file cannot show yet (the event just sent). Reading and searching the
// file at once, while dockroute handles the event, took a core from it.
func (r *renderedFile) next(b *testing.B, timeout time.Duration, ok func([]byte) bool) {
	r.await(b, timeout, false, ok)
}

func (r *renderedFile) await(b *testing.B, timeout time.Duration, now bool, ok func([]byte) bool) {
	b.Helper()
	deadline := time.After(timeout)
	for {
		if now {
			if data, err := r.read(); err == nil && ok(data) {
				return
			}
		}
		now = true
	wait:
		for {
			select {
			case ev := <-r.w.Events:
				if ev.Name == r.path && ev.Has(fsnotify.Create) {
					break wait
				}
			case <-time.After(50 * time.Millisecond):
				break wait
			case <-deadline:
				b.Fatalf("%s did not reach the expected state within %v", r.path, timeout)
			}
		}
	}
}

func (r *renderedFile) read() ([]byte, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if n := int(fi.Size()); cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	n, err := io.ReadFull(f, r.buf[:fi.Size()])
	return r.buf[:n], err
}

// peakRSS is the process's high-water resident set (VmHWM), in MB.
func peakRSS(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may hold spaces) start past ")".
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks (USER_HZ 100)
}

// writtenCount is dockroute's count of publishes that wrote the file.
func writtenCount(b *testing.B, addr string) float64 {
	return value(scrape(b, addr), "dockroute_publishes_total", "result=written")
}

// BenchmarkChurn runs a bounded request loop (one request at a time, on
// loopback) to a stable two-replica host through each real proxy — Traefik,
// and both Caddys with lookups (--caddy-dns; plain hosts looked up) and
// without (--caddy-dns off: every host written), each fed by its own
// dockroute — while other containers come and go on the real engine, in
// two phases of three waves of ten (churnWaves): replicas of one existing
// host (a deploy, a scale up and down), then containers of new hosts. It
// reports, per proxy and phase, failed requests and config loads
// (Traefik: file writes; Caddy: the loads it logged).
func BenchmarkChurn(b *testing.B) {
	dockertest.Require(b)
	for range b.N {
		churn(b)
	}
}

// churnWaves is the number of waves of ten containers per phase: 3 in
// make bench, DOCKROUTE_CHURN_WAVES to run the 300-container churn
// (15: 150 containers per phase).
func churnWaves(b *testing.B) int { return churnKnob(b, "DOCKROUTE_CHURN_WAVES", 3) }

// churnLoops is the number of request loops per proxy: 1 in make bench,
// DOCKROUTE_CHURN_LOOPS for more traffic to the stable host (a reload's
// chance to catch a request grows with the requests in flight).
func churnLoops(b *testing.B) int { return churnKnob(b, "DOCKROUTE_CHURN_LOOPS", 1) }

// churnKnob reads a count from the environment variable name (def when
// unset), failing the benchmark on anything but a number of 1 or more.
func churnKnob(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a number, 1 or more", name, v)
	}
	return n
}

// churnProxy is one proxy under the request loop.
type churnProxy struct {
	name, web, metrics string
	caddy              *caddytest.Caddy
}

// loads is the proxy's count of config loads so far.
func (p churnProxy) loads(b *testing.B) float64 {
	if p.caddy != nil {
		return float64(p.caddy.Loads())
	}
	return writtenCount(b, p.metrics)
}

func churnProxies(b *testing.B) []churnProxy {
	tr := traefiktest.Start(b, b.TempDir()+"/dynamic")
	m := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))
	startDaemonDir(b, tr.Dir, nil, "--metrics-addr", m)
	proxies := []churnProxy{{"traefik-v3.7.13", tr.Web, m, nil}}
	for _, bin := range caddytest.Binaries(b) {
		version, _ := exec.Command(bin, "version").Output()
		name, _, _ := strings.Cut(strings.TrimSpace(string(version)), " ")
		if name == "" || name == "unknown" {
			name = filepath.Base(bin) // bin/caddy-v2.11.9
		}
		name = "caddy-" + strings.TrimPrefix(name, "caddy-")
		for _, dns := range []bool{false, true} {
			c := caddytest.Start(b, bin, nil)
			web, m := fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b)), fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b))
			args := []string{"--output", "caddy", "--caddy-admin", c.Admin, "--caddy-listen", web, "--metrics-addr", m}
			p := churnProxy{name, web, m, c}
			if dns {
				args = append(args, "--caddy-dns", fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(b)))
				p.name += "-dns"
			} else {
				args = append(args, "--caddy-dns", "off") // every host written, as before lookups
			}
			startDaemon(b, nil, args...)
			proxies = append(proxies, p)
		}
	}
	return proxies
}

func churn(b *testing.B) {
	stable := dockertest.Unique("stable") + ".test"
	dockertest.Run(b, hello(stable)...)
	dockertest.Run(b, hello(stable)...)
	busy := dockertest.Unique("busy") + ".test"
	dockertest.Run(b, hello(busy)...)
	proxies := churnProxies(b)
	for _, p := range proxies {
		waitAnswer(b, p.web, stable, 200, "hello from")
		waitAnswer(b, p.web, busy, 200, "hello from")
	}
	time.Sleep(500 * time.Millisecond) // the first loads' log lines
	n := churnWaves(b)
	waves := func(name func() string) {
		for range n {
			var ids []string
			for range 10 {
				ids = append(ids, dockertest.Run(b, hello(name())...))
			}
			time.Sleep(time.Second)
			dockertest.Docker(b, append([]string{"rm", "-f"}, ids...)...)
			time.Sleep(time.Second)
		}
	}
	phases := []struct {
		name string
		work func()
	}{
		{"replicas", func() { waves(func() string { return busy }) }},
		{"hosts", func() { waves(func() string { return dockertest.Unique("churn") + ".test" }) }},
	}
	for _, ph := range phases {
		requests, failed, loads := underLoad(b, proxies, stable, ph.work)
		for i, p := range proxies {
			b.ReportMetric(float64(requests[i]), "requests-"+ph.name+"-"+p.name)
			b.ReportMetric(float64(failed[i]), "failed-"+ph.name+"-"+p.name)
			b.ReportMetric(loads[i], "loads-"+ph.name+"-"+p.name)
		}
	}
}

// underLoad runs work while churnLoops request loops per proxy ask for
// host, and returns per proxy the requests, failed requests and config
// loads.
func underLoad(b *testing.B, proxies []churnProxy, host string, work func()) (requests, failed []int, loads []float64) {
	loads = make([]float64, len(proxies))
	for i, p := range proxies {
		loads[i] = -p.loads(b)
	}
	asked, refused := make([]atomic.Int64, len(proxies)), make([]atomic.Int64, len(proxies))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var why failures
	for i, p := range proxies {
		for range churnLoops(b) {
			wg.Go(func() {
				requestLoop(p.web, host, stop, &asked[i], &refused[i], func(what string) { why.add(p.name + ": " + what) })
			})
		}
	}
	work()
	close(stop)
	wg.Wait()
	for _, w := range why.list {
		b.Logf("a failed request to %s: %s", host, w)
	}
	time.Sleep(500 * time.Millisecond) // the last loads' log lines
	requests, failed = make([]int, len(proxies)), make([]int, len(proxies))
	for i, p := range proxies {
		loads[i] += p.loads(b)
		requests[i], failed[i] = int(asked[i].Load()), int(refused[i].Load())
	}
	return requests, failed, loads
}

// failures keeps the first few failed requests' descriptions, for the
// log: a count alone does not tell the proxy's doing from the harness's.
type failures struct {
	mu   sync.Mutex
	list []string
}

func (f *failures) add(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.list) < 10 {
		f.list = append(f.list, time.Now().Format("15:04:05.000")+" "+what)
	}
}

// requestLoop asks web for host, one request at a time on a kept-alive
// connection, until stop; a request fails on any error or a status but
// 200; each failure is counted in failed and described to why.
func requestLoop(web, host string, stop <-chan struct{}, asked, failed *atomic.Int64, why func(string)) {
	// A transport of its own: loops sharing one would share its two idle
	// connections per proxy, and the rest dial a new one per request.
	c := &http.Client{Timeout: 5 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	for {
		select {
		case <-stop:
			return
		default:
		}
		req, _ := http.NewRequest("GET", "http://"+web+"/", nil)
		req.Host = host
		resp, err := c.Do(req)
		asked.Add(1)
		if err != nil {
			failed.Add(1)
			why(err.Error())
			continue
		}
		if resp.StatusCode != 200 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
			failed.Add(1)
			why(fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body)))
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
