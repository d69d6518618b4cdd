package dockertest

import (
	"os/exec"
	"strings"
	"testing"
)

// Swarm makes the machine's engine a single-node swarm manager for the
// test, advertising docker0's address (always there), and leaves the
// swarm when the test ends whatever happens, removing the
// docker_gwbridge network it created, so other tests and CI find the
// engine as it was. It fails the test if the engine is already in a
// swarm: that is someone else's.
func Swarm(t testing.TB) {
	t.Helper()
	if state := Docker(t, "info", "-f", "{{.Swarm.LocalNodeState}}"); state != "inactive" {
		t.Fatalf("the engine is already in a swarm (state %s); the swarm tests need an engine of their own to init and leave", state)
	}
	hadGwbridge := exec.Command("docker", "network", "inspect", "docker_gwbridge").Run() == nil
	t.Cleanup(func() {
		if out, err := exec.Command("docker", "swarm", "leave", "--force").CombinedOutput(); err != nil && !strings.Contains(string(out), "not part of a swarm") {
			t.Errorf("docker swarm leave --force: %v\n%s", err, out)
		}
		if !hadGwbridge {
			exec.Command("docker", "network", "rm", "docker_gwbridge").Run()
		}
	})
	Docker(t, "swarm", "init", "--advertise-addr", "172.17.0.1")
}

// Service creates a swarm service (docker service create --detach ARGS...)
// labelled as the tests', and removes it when the test ends.
func Service(t testing.TB, args ...string) string {
	t.Helper()
	id := Docker(t, append([]string{"service", "create", "--detach", "--label", TestLabel}, args...)...)
	t.Cleanup(func() { exec.Command("docker", "service", "rm", id).Run() })
	return id
}
