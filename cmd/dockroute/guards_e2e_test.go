//go:build e2e

package main

// Per-route guards end to end: basic auth groups, the operator's
// middleware sets and the built-in redirects, through a real Traefik and
// real Caddys, with the operator's files edited while they run.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/traefik"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// answer is what a proxy said to one request.
type answer struct {
	status int
	body   string
	header http.Header
}

func (a answer) String() string {
	return fmt.Sprintf("%d %q Location=%q", a.status, strings.TrimSpace(a.body), a.header.Get("Location"))
}

// ask sends method host+path to addr (host:port), with basic auth when
// user is set, following no redirects.
func ask(addr, method, host, path, user, password string) (answer, error) {
	return askWithin(10*time.Second, addr, method, host, path, user, password)
}

// askWithin is ask giving up after timeout.
func askWithin(timeout time.Duration, addr, method, host, path, user, password string) (answer, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		return answer{}, err
	}
	req.Host = host
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	c := &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(body), resp.Header}, nil
}

// waitAsk polls until the answer satisfies ok.
func waitAsk(t *testing.T, addr, method, host, path, user, password string, ok func(answer) bool, want string) answer {
	t.Helper()
	var last answer
	eventually(t, 15*time.Second, func() (bool, string) {
		a, err := ask(addr, method, host, path, user, password)
		last = a
		return err == nil && ok(a), fmt.Sprintf("%s %s%s via %s as %q: %v %v, want %s", method, host, path, addr, user, a, err, want)
	})
	return last
}

func bcryptHash(t *testing.T, password string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

const guardsMiddlewares = `middlewares:
  served-by:
    traefik:
      - headers: {customResponseHeaders: {X-Served-By: dockroute}}
    caddy:
      - handler: headers
        response: {set: {X-Served-By: [dockroute]}}
  traefik-only:
    traefik: [{headers: {customResponseHeaders: {X-Only: traefik}}}]
`

// TestGuards: a route with dockroute.auth answers 401 without the group's
// credentials and 200 with them, and its backend never sees them; an
// operator's set adds its header; www-redirect and apex-redirect answer
// 301 to GET and 308 to POST with the same Location in every proxy; a
// container choosing a set that is unknown, or has no definition for the
// output, is not routed. Editing the auth file takes effect live, and
// removing a group takes its routes down (fail closed).
func TestGuards(t *testing.T) {
	dockertest.Require(t)
	dir := t.TempDir()
	mwFile, authFile := filepath.Join(dir, "middlewares.yaml"), filepath.Join(dir, "auth")
	writeFile(t, mwFile, guardsMiddlewares)
	writeFile(t, authFile, "[staff]\nalice:"+bcryptHash(t, "alice-pw")+"\n")

	guarded := dockertest.Unique("guard") + ".test"
	apex := dockertest.Unique("apex") + ".test"
	toApex := dockertest.Unique("toapex") + ".test"
	unknown := dockertest.Unique("unknownset") + ".test"
	onlyTraefik := dockertest.Unique("onlyt") + ".test"
	id := dockertest.Run(t, hello(guarded, "--label", "dockroute.auth=staff", "--label", "dockroute.middlewares=served-by,hsts")...)
	www := dockertest.Run(t, hello(apex+", www."+apex, "--label", "dockroute.middlewares=www-redirect")...)
	dockertest.Run(t, hello(toApex+", www."+toApex, "--label", "dockroute.middlewares=apex-redirect")...)
	bad := dockertest.Run(t, hello(unknown, "--label", "dockroute.middlewares=nope")...)
	dockertest.Run(t, hello(onlyTraefik, "--label", "dockroute.middlewares=traefik-only")...)

	proxies := everyProxy(t, "--middlewares-file", mwFile, "--auth-file", authFile)
	for name, addr := range proxies {
		t.Run(name, func(t *testing.T) {
			a := waitAsk(t, addr, "GET", guarded, "/", "alice", "alice-pw", func(a answer) bool { return a.status == 200 }, "200")
			if !strings.Contains(a.body, id[:12]) || a.header.Get("X-Hello-Authorization") != "absent" || a.header.Get("X-Served-By") != "dockroute" {
				t.Errorf("alice: %v X-Hello-Authorization=%q X-Served-By=%q; want the backend, credentials removed, the set's header", a, a.header.Get("X-Hello-Authorization"), a.header.Get("X-Served-By"))
			}
			if sts := a.header.Get("Strict-Transport-Security"); sts != "" {
				t.Errorf("HSTS over plain HTTP: %q", sts)
			}
			for _, cred := range [][2]string{{"", ""}, {"alice", "wrong"}, {"mallory", "alice-pw"}} {
				if a, err := ask(addr, "GET", guarded, "/", cred[0], cred[1]); err != nil || a.status != 401 || strings.Contains(a.body, "hello from") {
					t.Errorf("as %q/%q: %v %v, want 401", cred[0], cred[1], a, err)
				}
			}

			waitAsk(t, addr, "GET", "www."+apex, "/", "", "", func(a answer) bool { return a.status == 200 && strings.Contains(a.body, www[:12]) }, "200 from the www host")
			for method, status := range map[string]int{"GET": 301, "POST": 308} {
				a, err := ask(addr, method, apex, "/x?y=1", "", "")
				if want := "http://www." + apex + "/x?y=1"; err != nil || a.status != status || a.header.Get("Location") != want {
					t.Errorf("www-redirect %s: %v %v, want %d to %s", method, a, err, status, want)
				}
			}
			a = waitAsk(t, addr, "GET", "www."+toApex, "/x?y=1", "", "", func(a answer) bool { return a.status == 301 }, "301")
			if want := "http://" + toApex + "/x?y=1"; a.header.Get("Location") != want {
				t.Errorf("apex-redirect: %v, want Location %s", a, want)
			}
			waitAsk(t, addr, "GET", toApex, "/", "", "", func(a answer) bool { return a.status == 200 }, "200 on the apex")

			if a, err := ask(addr, "GET", unknown, "/", "", ""); err != nil || a.status != 404 {
				t.Errorf("a container choosing an unknown set: %v %v, want 404 (not routed)", a, err)
			}
			want := 404 // Caddy output: the set has no caddy part
			if name == "traefik" {
				want = 200
			}
			waitAsk(t, addr, "GET", onlyTraefik, "/", "", "", func(a answer) bool { return a.status == want }, fmt.Sprint(want))
		})
	}

	// Live edits: bob joins staff; then staff is gone and the route with it.
	writeFileAtomic(t, authFile, "[staff]\nalice:"+bcryptHash(t, "alice-pw")+"\nbob:"+bcryptHash(t, "bob-pw")+"\n")
	for _, addr := range proxies {
		waitAsk(t, addr, "GET", guarded, "/", "bob", "bob-pw", func(a answer) bool { return a.status == 200 }, "200 for bob")
	}
	writeFileAtomic(t, authFile, "[ops]\ncarol:"+bcryptHash(t, "carol-pw")+"\n")
	for _, addr := range proxies {
		waitAsk(t, addr, "GET", guarded, "/", "alice", "alice-pw", func(a answer) bool { return a.status == 404 }, "404: the group is gone, so is the route")
	}
	out := explainOut(t, "--middlewares-file", mwFile, "--auth-file", authFile, id, bad)
	for _, want := range []string{`dockroute.auth: auth group "staff" is not defined`, `dockroute.middlewares: middleware "nope" is not defined`} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "$2") {
		t.Errorf("explain shows a hash:\n%s", out)
	}
}

// writeFileAtomic replaces path's contents in one rename, as editors save.
func writeFileAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTraefikMissingGuardFailsClosed: a route whose set or group vanished
// from the operator's files after its container was checked names a
// middleware nothing defines; real Traefik then refuses that router (404)
// while serving the others, instead of serving it unguarded.
func TestTraefikMissingGuardFailsClosed(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "backend") }))
	t.Cleanup(backend.Close)
	server := strings.TrimPrefix(backend.URL, "http://")
	tr := traefiktest.Start(t, t.TempDir())
	tbl := route.Table{Routes: []route.Route{
		{Host: "open.test", Servers: []string{server}},
		{Host: "nogroup.test", Auth: "gone", Servers: []string{server}},
		{Host: "noset.test", Middlewares: "hsts,gone", Servers: []string{server}},
	}}
	writeFile(t, filepath.Join(tr.Dir, "dockroute.yml"), string(traefik.Render(tbl, traefik.Options{})))
	waitAsk(t, tr.Web, "GET", "open.test", "/", "", "", func(a answer) bool { return a.status == 200 }, "200")
	for _, host := range []string{"nogroup.test", "noset.test"} {
		if a, err := ask(tr.Web, "GET", host, "/", "", ""); err != nil || a.status != 404 {
			t.Errorf("%s: %v %v, want 404 (router refused)", host, a, err)
		}
	}
}

// TestTraefikRetriesAnotherServer: a replica whose port refuses
// connections (stopped or crashing between two publishes) costs no
// request through a real Traefik: it is tried on the next server, as
// nginx and Caddy do (before, about every other request was a 502).
func TestTraefikRetriesAnotherServer(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "backend") }))
	t.Cleanup(backend.Close)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there now: a dial is refused
	tr := traefiktest.Start(t, t.TempDir())
	tbl := route.Build([]route.Backend{
		{Host: "replicas.test", Server: strings.TrimPrefix(backend.URL, "http://")},
		{Host: "replicas.test", Server: deadAddr},
	})
	writeFile(t, filepath.Join(tr.Dir, "dockroute.yml"), string(traefik.Render(tbl, traefik.Options{})))
	waitAsk(t, tr.Web, "GET", "replicas.test", "/", "", "", func(a answer) bool { return a.status == 200 }, "200")
	failed := 0
	for range 20 {
		if a, err := ask(tr.Web, "GET", "replicas.test", "/", "", ""); err != nil || a.status != 200 {
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of 20 requests failed with one of two servers refusing connections", failed)
	}
}
