// Package dockertest runs real containers on the local Docker Engine for
// dockroute's tests: the hello example image, unique names and hosts, and
// cleanup. It is used by tests only.
package dockertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// HelloImage is the examples/hello image; `make hello` (and so `make test`)
// builds it.
const HelloImage = "dockroute/hello:dev"

// HelloHealthImage is HelloImage with a HEALTHCHECK (interval 1 s) that
// follows /healthz; `make hello` builds it too.
const HelloHealthImage = "dockroute/hello-health:dev"

// TestLabel marks every container and network a test creates.
const TestLabel = "dockroute.test=1"

// Require fails the test when no Docker Engine answers or the hello image
// is missing. Only a human's DOCKROUTE_SKIP_DOCKER=1 turns that into a skip.
func Require(t testing.TB) {
	t.Helper()
	if !e2e {
		t.Skip(unitLane)
	}
	if os.Getenv("DOCKROUTE_SKIP_DOCKER") == "1" {
		t.Skip("DOCKROUTE_SKIP_DOCKER=1: tests against the Docker Engine skipped")
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.APIVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("these tests need a running Docker Engine (set DOCKROUTE_SKIP_DOCKER=1 to skip them): docker version: %v\n%s", err, out)
	}
	for _, img := range []string{HelloImage, HelloHealthImage} {
		if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
			t.Fatalf("image %s is missing: run `make hello` (make test builds it)", img)
		}
	}
}

// Docker runs the docker CLI and returns its trimmed standard output.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return strings.TrimSpace(string(out))
}

// Run starts a detached container (docker run -d ARGS...) and removes it
// when the test ends. It returns the container's ID.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	id := Docker(t, append([]string{"run", "-d", "--label", TestLabel}, args...)...)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	return id
}

// Network creates a bridge network and removes it when the test ends
// (after the containers, which are cleaned up first as they were made later).
func Network(t testing.TB, name string, extra ...string) {
	t.Helper()
	Docker(t, append(append([]string{"network", "create", "--label", TestLabel}, extra...), name)...)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })
}

// DualStackNetwork creates a bridge network with IPv4 and IPv6 (a
// random unique-local /64), as Network does.
func DualStackNetwork(t testing.TB, name string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	subnet := fmt.Sprintf("fd%02x:%02x%02x:%02x%02x:%02x00::/64", b[0], b[1], b[2], b[3], b[4], b[5])
	Network(t, name, "--ipv6", "--subnet", subnet)
}

// IP is the container's address on network ("bridge" for the default).
func IP(t testing.TB, id, network string) string {
	t.Helper()
	return Docker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, id)
}

// Unique returns prefix plus a random suffix, for names and hosts that no
// other test (or earlier run) uses.
func Unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}
