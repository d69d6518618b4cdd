//go:build e2e

package main

// End-to-end tests: the dockroute binary, built once, runs against the real
// Docker Engine and real containers of examples/hello; every config it
// writes is loaded by Traefik's own code (traefiktest.Check).

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

var binary string // the dockroute binary under test, built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dockroute-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "dockroute")
	// Tests run the daemon under the race detector; benchmarks measure it
	// as users run it, the detector slowing every request dockroute
	// itself serves (the holding endpoint) several times over.
	build := []string{"build", "-race", "-o", binary, "."}
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		build = []string{"build", "-o", binary, "."}
	}
	if out, err := exec.Command("go", build...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building dockroute: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `dockroute run` process.
type proc struct {
	cmd  *exec.Cmd
	dir  string // its Traefik directory
	log  *caddytest.Buffer
	done chan error
}

// startDaemon runs dockroute with a fresh output directory. At the end of the
// test it is stopped with SIGTERM and must exit 0.
func startDaemon(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return startDaemonDir(t, filepath.Join(t.TempDir(), "dynamic"), env, args...)
}

// startDaemonDir is startDaemon writing to dir.
func startDaemonDir(t testing.TB, dir string, env []string, args ...string) *proc {
	t.Helper()
	d := &proc{dir: dir, log: &caddytest.Buffer{}, done: make(chan error, 1)}
	// Scoped to the tests' own containers, so the suite passes on an engine
	// that also runs containers that are none of its business.
	d.cmd = exec.Command(binary, append([]string{"run", "--traefik-dir", d.dir, "--filter", "label=" + dockertest.TestLabel}, args...)...)
	// A stopped host answers 404 at once, as most tests expect; the
	// 503 grace has tests of its own, which set it on the command line.
	d.cmd.Env = append(append(os.Environ(), "DOCKROUTE_UNAVAILABLE_GRACE=0"), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			if err := d.stop(syscall.SIGTERM); err != nil {
				t.Errorf("on SIGTERM: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("dockroute log:\n%s", d.log)
		}
	})
	return d
}

// stop signals the daemon and waits for it to exit.
func (d *proc) stop(sig os.Signal) error {
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		if err != nil {
			return fmt.Errorf("dockroute exited with %v", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		return fmt.Errorf("dockroute did not exit within 10s of %v", sig)
	}
}

func (d *proc) file() string { return filepath.Join(d.dir, "dockroute.yml") }

// eventually polls check every 20 ms until it reports done, and fails the
// test with check's last word on the state after timeout.
func eventually(t testing.TB, timeout time.Duration, check func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPublished waits for the daemon's first publish.
func (d *proc) waitPublished(t testing.TB) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		_, err := os.Stat(d.file())
		return err == nil, "no first publish:\n" + d.log.String()
	})
}

func (d *proc) waitLog(t testing.TB, substr string) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(d.log.String(), substr), fmt.Sprintf("dockroute never logged %q:\n%s", substr, d.log)
	})
}

// servers reads the published file and returns each host's server URLs,
// sorted. Only Host rules are expected here.
func servers(t testing.TB, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		HTTP struct {
			Routers map[string]struct {
				Rule, Service string
			}
			Services map[string]struct {
				LoadBalancer struct{ Servers []struct{ URL string } } `yaml:"loadBalancer"`
			}
		}
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("published file does not parse: %v\n%s", err, data)
	}
	out := map[string][]string{}
	for name, r := range cfg.HTTP.Routers {
		if strings.HasPrefix(name, "dockroute.redirect-") {
			continue // a redirect router shares its route's rule and service
		}
		host := strings.TrimSuffix(strings.TrimPrefix(r.Rule, "Host(`"), "`)")
		for _, s := range cfg.HTTP.Services[r.Service].LoadBalancer.Servers {
			out[host] = append(out[host], s.URL)
		}
		if out[host] = traefiktest.AppServers(out[host]); len(out[host]) == 0 {
			delete(out, host) // down, its requests held
		}
		slices.Sort(out[host])
	}
	return out
}

// waitServers waits until host is published with exactly want (none: the
// host is absent), then checks the same through Traefik's own router.
func (d *proc) waitServers(t testing.TB, host string, want ...string) {
	t.Helper()
	slices.Sort(want)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := servers(t, d.file())[host]
		return slices.Equal(got, want), fmt.Sprintf("%s: published servers %v, want %v", host, got, want)
	})
	r := traefiktest.Check(t, d.dir, host)[host]
	if len(want) == 0 && r.Router != "" || len(want) > 0 && (r.Router != traefik.Name(host, "") || !slices.Equal(r.Servers, want)) {
		t.Fatalf("Traefik routes %s to %+v, want servers %v", host, r, want)
	}
}

func url(t testing.TB, id string, port int) string {
	return fmt.Sprintf("http://%s:%d", dockertest.IP(t, id, "bridge"), port)
}

// get fetches a published server URL as the proxy would, with the routed
// Host, and returns the body.
func get(t *testing.T, server, host string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, server+"/", nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", server, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func hello(host string, extra ...string) []string {
	return append(append([]string{"-e", "VIRTUALHOST=" + host, "-e", "PORT=8080"}, extra...), dockertest.HelloImage)
}

// routedHello runs a hello container for a new host named after prefix and
// waits until d routes it.
func (d *proc) routedHello(t testing.TB, prefix string) (host, id string) {
	t.Helper()
	host = dockertest.Unique(prefix) + ".test"
	id = dockertest.Run(t, hello(host)...)
	d.waitServers(t, host, url(t, id, 8080))
	return host, id
}

func TestLifecycle(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	host := dockertest.Unique("life") + ".test"

	a := dockertest.Run(t, hello(host)...)
	d.waitServers(t, host, url(t, a, 8080))
	if body := get(t, url(t, a, 8080), host); !strings.Contains(body, "hello from "+a[:12]) || !strings.Contains(body, "host "+host) {
		t.Fatalf("published server answered %q", body)
	}

	b := dockertest.Run(t, hello(host)...)
	d.waitServers(t, host, url(t, a, 8080), url(t, b, 8080))

	dockertest.Docker(t, "pause", a)
	d.waitServers(t, host, url(t, b, 8080))
	dockertest.Docker(t, "unpause", a)
	d.waitServers(t, host, url(t, a, 8080), url(t, b, 8080))

	dockertest.Docker(t, "stop", "-t", "1", a)
	d.waitServers(t, host, url(t, b, 8080))
	dockertest.Docker(t, "start", a)
	d.waitServers(t, host, url(t, a, 8080), url(t, b, 8080))

	dockertest.Docker(t, "kill", b)
	d.waitServers(t, host, url(t, a, 8080))
	dockertest.Docker(t, "rm", "-f", a)
	d.waitServers(t, host)
}

func TestContainerStartedBeforeDaemonIsRouted(t *testing.T) {
	dockertest.Require(t)
	host := dockertest.Unique("early") + ".test"
	a := dockertest.Run(t, hello(host)...)
	d := startDaemon(t, nil)
	d.waitServers(t, host, url(t, a, 8080))
}

// TestRefusals runs bad containers beside a good one: each is refused with
// the reason explain prints, nothing of theirs reaches the file, and the good
// one stays routed.
func TestRefusals(t *testing.T) {
	dockertest.Require(t)
	good := dockertest.Unique("good") + ".test"
	goodID := dockertest.Run(t, hello(good)...)

	n1, n2 := dockertest.Unique("net1"), dockertest.Unique("net2")
	dockertest.Network(t, n1)
	dockertest.Network(t, n2)
	twoNetsHost := dockertest.Unique("twonets") + ".test"
	twoNets := dockertest.Run(t, hello(twoNetsHost, "--network", n1)...)
	dockertest.Docker(t, "network", "connect", n2, twoNets)

	bad := map[string]string{ // container ID → expected reason
		dockertest.Run(t, hello(dockertest.Unique("noport")+".test", "-e", "PORT=9999")...):                      "port 9999 is not exposed (exposed: 8080/tcp)",
		dockertest.Run(t, hello("x.test`) || Host(`evil.test")...):                                               "character '`' is not allowed",
		dockertest.Run(t, hello(`{{ env "HOME" }}.test`)...):                                                     "character '{' is not allowed",
		dockertest.Run(t, hello("ok.test\nevil.test")...):                                                        `character '\n' is not allowed`,
		dockertest.Run(t, hello("127.0.0.1")...):                                                                 "is an IP address, not a host name",
		dockertest.Run(t, hello("[::1]")...):                                                                     "is an IPv6 address, not a host name",
		dockertest.Run(t, hello(dockertest.Unique("hostnet")+".test", "--network", "host", "-e", "LISTEN=0")...): "uses the host network",
		twoNets: "several networks (" + strings.Join(sorted(n1, n2), ", ") + ")",
	}

	d := startDaemon(t, nil)
	d.waitServers(t, good, url(t, goodID, 8080))
	published, _ := os.ReadFile(d.file())
	for _, s := range []string{"evil", "{{", "HOME", "noport", "hostnet", "twonets"} {
		if bytes.Contains(published, []byte(s)) {
			t.Errorf("published file mentions %q:\n%s", s, published)
		}
	}

	ids := make([]string, 0, len(bad))
	for id := range bad {
		ids = append(ids, id)
	}
	out, err := exec.Command(binary, append([]string{"explain"}, ids...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	for id, reason := range bad {
		line := lineFor(string(out), id[:12])
		if !strings.Contains(line, "NOT routed") || !strings.Contains(line, reason) {
			t.Errorf("explain for %s says %q, want NOT routed: ...%s...", id[:12], line, reason)
		}
		if l := lineFor(d.log.String(), id[:12]); !strings.Contains(l, `level=WARN msg="not routed"`) {
			t.Errorf("the daemon logged %q for %s, want a not-routed warning with the reason", l, id[:12])
		}
	}

	// Choosing a network routes the two-network container at its address
	// there.
	render, err := exec.Command(binary, "render", "--network", n2).Output()
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	path := filepath.Join(t.TempDir(), "render.yml")
	writeFile(t, path, string(render))
	want := "http://" + dockertest.IP(t, twoNets, n2) + ":8080"
	if got := servers(t, path)[twoNetsHost]; !slices.Equal(got, []string{want}) {
		t.Fatalf("render --network %s gives %s servers %v, want [%s]", n2, twoNetsHost, got, want)
	}
	traefiktest.Check(t, path, twoNetsHost)
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func lineFor(out, id string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.Contains(l, id) {
			return l
		}
	}
	return ""
}

// TestDockerLossKeepsConfigThenResyncs cuts dockroute off from Docker: the
// published file must stay as it was (never emptied), and once Docker is
// back, one resync must bring it up to date with what changed meanwhile.
func TestDockerLossKeepsConfigThenResyncs(t *testing.T) {
	dockertest.Require(t)
	proxy := dockertest.NewProxy(t)
	proxy.Start(t)
	// A long periodic resync, so only the reconnect can repair the table.
	d := startDaemon(t, []string{"DOCKER_HOST=" + proxy.Host()}, "--resync", "1h")

	hostA, hostB := dockertest.Unique("lossa")+".test", dockertest.Unique("lossb")+".test"
	a := dockertest.Run(t, hello(hostA)...)
	d.waitServers(t, hostA, url(t, a, 8080))

	proxy.Stop()
	before, _ := os.ReadFile(d.file())
	b := dockertest.Run(t, hello(hostB)...)
	dockertest.Docker(t, "rm", "-f", a)
	d.waitLog(t, "docker unreachable")
	time.Sleep(time.Second)
	if after, _ := os.ReadFile(d.file()); !bytes.Equal(before, after) {
		t.Fatalf("the published file changed while Docker was unreachable:\n%s", after)
	}

	proxy.Start(t)
	d.waitServers(t, hostB, url(t, b, 8080))
	d.waitServers(t, hostA)
}

func TestSIGINTStopsCleanly(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	d.waitPublished(t)
	if err := d.stop(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.log.String(), "dockroute stopped") {
		t.Fatalf("no clean-stop log line:\n%s", d.log)
	}
}

// TestNetworkEvents connects a routed container to a second network (it is
// then ambiguous, so refused) and disconnects it again (routed again): both
// arrive only as network events.
func TestNetworkEvents(t *testing.T) {
	dockertest.Require(t)
	d := startDaemon(t, nil)
	host, a := d.routedHello(t, "netev")

	n := dockertest.Unique("extra")
	dockertest.Network(t, n)
	dockertest.Docker(t, "network", "connect", n, a)
	d.waitServers(t, host)
	dockertest.Docker(t, "network", "disconnect", n, a)
	d.waitServers(t, host, url(t, a, 8080))
}
