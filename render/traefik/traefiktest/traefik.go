package traefiktest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// Traefik is a real Traefik process (the binary `make traefik` builds from
// ../shared/tools/traefik, passed in DOCKROUTE_TRAEFIK) reading a directory
// with its file provider, as a user runs it beside dockroute.
type Traefik struct {
	Web       string // plain-HTTP entrypoint "web", host:port
	WebSecure string // TLS entrypoint "websecure" (Traefik's default certificate), host:port
	API       string // the API entrypoint, http://host:port
	Dir       string // the directory its file provider watches
	cmd       *exec.Cmd
	log       *caddytest.Buffer
	done      chan struct{}
}

// Throttle is providers.providersThrottleDuration in the tests: how long
// Traefik waits after a provider's change before applying it. Its default
// is 2 s; the tests set it low so they measure dockroute, not the wait.
const Throttle = 10 * time.Millisecond

// Binary returns the Traefik binary to test against; it fails the test
// when none is configured, unless a human set DOCKROUTE_SKIP_TRAEFIK=1.
func Binary(t testing.TB) string {
	t.Helper()
	if !e2e {
		t.Skip(unitLane)
	}
	bin := os.Getenv("DOCKROUTE_TRAEFIK")
	if bin == "" {
		if os.Getenv("DOCKROUTE_SKIP_TRAEFIK") == "1" {
			t.Skip("DOCKROUTE_SKIP_TRAEFIK=1: tests against a real Traefik skipped")
		}
		t.Fatal("DOCKROUTE_TRAEFIK is not set: run the tests with `make test`, which builds Traefik from ../shared/tools/traefik, or set DOCKROUTE_SKIP_TRAEFIK=1 to skip them")
	}
	return bin
}

// Start runs Traefik with the file provider watching dir, entrypoints web
// and websecure on free loopback ports and its API on a third, and waits
// until the API answers. It is killed when the test ends.
//
// The ports are free when chosen, but another test may take one before
// Traefik binds it: Traefik then exits, and is started again on new ports
// (a CI run lost TestProxiesAgree to that).
func Start(t testing.TB, dir string) *Traefik {
	t.Helper()
	return StartThrottled(t, dir, Throttle)
}

// StartThrottled is Start with providersThrottleDuration throttle
// (Traefik's default is 2 s).
func StartThrottled(t testing.TB, dir string, throttle time.Duration) *Traefik {
	t.Helper()
	bin := Binary(t)
	for attempt := 1; ; attempt++ {
		if tr := start(t, bin, dir, throttle, attempt == 3); tr != nil {
			return tr
		}
	}
}

// start is one attempt of Start; it returns nil when a port was taken
// meanwhile and last is false.
func start(t testing.TB, bin, dir string, throttle time.Duration, last bool) *Traefik {
	t.Helper()
	home := t.TempDir()
	tr := &Traefik{Web: freeAddr(t), WebSecure: freeAddr(t), API: "http://" + freeAddr(t), Dir: dir, log: &caddytest.Buffer{}, done: make(chan struct{})}
	static := fmt.Sprintf(`global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: INFO
entryPoints:
  web:
    address: %q
  websecure:
    address: %q
    http:
      tls: {}
  traefik:
    address: %q
api:
  insecure: true
providers:
  providersThrottleDuration: %s
  file:
    directory: %q
    watch: true
`, tr.Web, tr.WebSecure, strings.TrimPrefix(tr.API, "http://"), throttle, dir)
	path := filepath.Join(home, "traefik.yml")
	if err := os.WriteFile(path, []byte(static), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tr.cmd = exec.Command(bin, "--configFile="+path)
	tr.cmd.Dir = home
	tr.cmd.Stdout, tr.cmd.Stderr = tr.log, tr.log
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tr.cmd.Wait(); close(tr.done) }()
	t.Cleanup(func() {
		tr.cmd.Process.Kill()
		<-tr.done
		if t.Failed() {
			t.Logf("traefik log:\n%s", tr.log)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(tr.API + "/api/version"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return tr
			}
		}
		select {
		case <-tr.done:
			if !last && strings.Contains(tr.log.String(), "address already in use") {
				return nil
			}
			t.Fatalf("traefik exited at start:\n%s", tr.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("traefik's API did not come up:\n%s", tr.log)
		}
	}
}

// Log is what Traefik printed so far.
func (tr *Traefik) Log() string { return tr.log.String() }

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
