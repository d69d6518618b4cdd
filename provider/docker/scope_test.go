package docker

import (
	"net/netip"
	"testing"

	"github.com/dockroute/dockroute/provider/contract"
)

// TestScopeSaysWhy: a container outside the scope is told which part of
// it keeps it out; with --network auto, the network it should join and
// how, never a --filter the user did not write.
func TestScopeSaysWhy(t *testing.T) {
	c := running("VIRTUALHOST=a.test")
	c.Name = "app"
	labelled, _ := ParseScope([]string{"label=team=web"})
	filtered, _ := ParseScope([]string{"network=front"})
	auto, _ := ParseScope(nil)
	auto = auto.Own("stack_routed")
	for scope, want := range map[*Scope]string{
		&labelled: "it lacks the label team=web, which dockroute's --filter requires",
		&filtered: "it is on none of the networks dockroute's --filter names (front; it is on bridge)",
		&auto:     "it is not on stack_routed, the network of dockroute's own container, which --network auto routes (it is on bridge): docker network connect stack_routed app, or start it with --network stack_routed",
	} {
		if got := scope.Why(c); got != want {
			t.Errorf("Why: %q\nwant %q", got, want)
		}
		if scope.Matches(c) {
			t.Errorf("%v matches a container outside it", scope)
		}
	}
}

// running is a running container on the default bridge with env.
func running(env ...string) contract.Container {
	return contract.Container{
		ID: "0123456789abcdef", Name: "app", Env: env, Exposed: []string{"443/tcp", "8080/tcp"},
		State: "running", NetworkMode: "bridge",
		Networks: contract.Networks{{Network: "bridge", Addr: netip.MustParseAddr("172.17.0.5")}},
	}
}
