//go:build e2e

package main

// A shared host attacked by its tenants, end to end through a real Traefik
// and real Caddys: no container takes, opens or shadows another's route.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
)

// TestHostileTenants: a victim serves its host behind basic auth. One
// intruder was created before it and started after it; another asks for
// an open /login under it; others claim the default host, a path under
// the operator's static route, and a name the policy file gives to a
// team. Every proxy keeps serving the victim's route with its auth and
// the operator's routes, and refuses the intruders. Then the victim is
// redeployed stop-first: in the gap the waiting intruder is not served,
// and the victim's new container (same name) takes the host back.
func TestHostileTenants(t *testing.T) {
	dockertest.Require(t)
	scope := "dockroute.test.scope=" + dockertest.Unique("tenants")
	run := func(host string, extra ...string) string {
		return dockertest.Run(t, hello(host, append([]string{"--label", scope}, extra...)...)...)
	}
	victim, home := dockertest.Unique("victim")+".test", dockertest.Unique("home")+".test"
	static, owned := dockertest.Unique("static")+".test", dockertest.Unique("owned")+".test"
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the operator's backend") }))
	t.Cleanup(backend.Close)
	dir := t.TempDir()
	authFile, routes, policy := filepath.Join(dir, "auth"), filepath.Join(dir, "routes.yml"), filepath.Join(dir, "policy.yml")
	writeFile(t, authFile, "[staff]\nalice:"+bcryptHash(t, "alice-pw")+"\n")
	writeFile(t, routes, fmt.Sprintf("routes:\n  %s: %s\n", static, backend.URL))
	writeFile(t, policy, fmt.Sprintf("hosts:\n  - names: [%s]\n    owners: [{label: com.example.team=a}]\n", owned))

	early := dockertest.Docker(t, append([]string{"create", "--label", dockertest.TestLabel, "--label", scope}, hello(victim)...)...)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", early).Run() })
	victimName := dockertest.Unique("victim")
	victimID := run(victim, "--name", victimName, "--label", "dockroute.auth=staff")
	time.Sleep(1100 * time.Millisecond) // Docker's start times are exact; keep them apart anyway
	dockertest.Docker(t, "start", early)
	intruders := map[string]string{
		"sub-path":     run(victim + "/login"),
		"default host": run(home),
		"static path":  run(static + "/x"),
		"not owner":    run(owned),
	}
	owner := run(owned, "--label", "com.example.team=a")

	proxies := everyProxy(t, "--filter", "label="+scope, "--auth-file", authFile, "--routes-file", routes,
		"--policy-file", policy, "--default-host", home, "--unavailable-grace", "1m")
	for name, addr := range proxies {
		t.Run(name, func(t *testing.T) {
			waitAsk(t, addr, "GET", victim, "/", "alice", "alice-pw", func(a answer) bool { return a.status == 200 && strings.Contains(a.body, victimID[:12]) }, "200 from the victim")
			waitAsk(t, addr, "GET", static, "/x", "", "", func(a answer) bool { return a.status == 200 }, "200")
			waitAsk(t, addr, "GET", owned, "/", "", "", func(a answer) bool { return a.status == 200 }, "200")
			for _, path := range []string{"/", "/login", "/login/x"} {
				if a, err := ask(addr, "GET", victim, path, "", ""); err != nil || a.status != 401 {
					t.Errorf("%s%s without credentials: %v %v, want 401", victim, path, a, err)
				}
			}
			for range 4 {
				if a, err := ask(addr, "GET", static, "/x", "", ""); err != nil || a.body != "the operator's backend" {
					t.Errorf("%s/x: %v %v, want the operator's backend", static, a, err)
				}
				if a, err := ask(addr, "GET", owned, "/", "", ""); err != nil || !strings.Contains(a.body, owner[:12]) {
					t.Errorf("%s: %v %v, want its owner only", owned, a, err)
				}
			}
			if a, err := ask(addr, "GET", "nobody-routes-this.test", "/", "", ""); err != nil || a.status != 404 {
				t.Errorf("an unknown name, the default host being refused: %v %v, want 404", a, err)
			}
		})
	}
	args := []string{"--auth-file", authFile, "--routes-file", routes, "--policy-file", policy, "--default-host", home}
	out := explainOut(t, append(args, early, intruders["sub-path"], intruders["default host"], intruders["static path"], intruders["not owner"])...)
	for _, want := range []string{
		"is already routed with auth group staff by container " + victimName + ", which holds it",
		victim + "/login lies under " + victim + ", which is already routed with auth group staff",
		home + " is the operator's --default-host",
		static + "/x is routed by the operator's routes file",
		owned + " belongs, by the operator's policy file (line 2), to containers with label com.example.team=a",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}

	// A stop-first redeploy: the victim goes, the intruder waits.
	dockertest.Docker(t, "rm", "-f", victimID)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for name, addr := range proxies {
			if a, err := ask(addr, "GET", victim, "/", "", ""); err == nil && a.status == 200 {
				t.Fatalf("%s: in the redeploy's gap the intruder serves %s without auth: %v", name, victim, a)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	successor := run(victim, "--name", victimName, "--label", "dockroute.auth=staff")
	for name, addr := range proxies {
		waitAsk(t, addr, "GET", victim, "/", "alice", "alice-pw", func(a answer) bool { return a.status == 200 && strings.Contains(a.body, successor[:12]) }, "200 from the victim's successor")
		if a, err := ask(addr, "GET", victim, "/", "", ""); err != nil || a.status != 401 {
			t.Errorf("%s: after the redeploy, without credentials: %v %v, want 401", name, a, err)
		}
	}

	// The policy is reloaded live: every container on the default bridge
	// now owns the name, so the one refused before joins it as a replica.
	writeFileAtomic(t, policy, fmt.Sprintf("hosts:\n  - names: [%s]\n    owners: [{network: bridge}]\n", owned))
	for name, addr := range proxies {
		eventually(t, 15*time.Second, func() (bool, string) {
			a, err := ask(addr, "GET", owned, "/", "", "")
			return err == nil && strings.Contains(a.body, intruders["not owner"][:12]), fmt.Sprintf("%s: %s after the policy changed: %v %v, want the new owner among its servers", name, owned, a, err)
		})
	}
}
