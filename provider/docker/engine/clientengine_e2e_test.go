//go:build e2e

package engine

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
)

// TestInspectReadsWhatTheClientReads inspects and lists containers of every shape
// dockroute routes on the real engine, once through the Docker client's
// own decoding and once through ClientEngine's, and wants the same
// Container from both: env, labels, exposed and published ports, health,
// stop settings, networks (IPv4 and IPv6), state.
func TestInspectReadsWhatTheClientReads(t *testing.T) {
	dockertest.Require(t)
	net4, net6 := dockertest.Unique("insp4"), dockertest.Unique("insp6")
	dockertest.Network(t, net4)
	dockertest.DualStackNetwork(t, net6)
	// A label of this test's own: the lists below must not see the
	// containers other packages' tests start and stop meanwhile.
	scope := "dockroute.test.scope=" + dockertest.Unique("insp")
	run := func(args ...string) string { return dockertest.Run(t, append([]string{"--label", scope}, args...)...) }
	ids := map[string]string{
		"plain": run("-e", "VIRTUALHOST=plain.inspect.test", "-e", "PORT=8080", dockertest.HelloImage),
		"labels": run("--label", "dockroute.host=labels.inspect.test", "--label", "dockroute.port=8080",
			"--label", "other=a=b", dockertest.HelloImage),
		"published": run("-p", "127.0.0.1::8080", "--expose", "9000/udp", "--expose", "9001", "-e", "VIRTUALHOST=pub.inspect.test", dockertest.HelloImage),
		"stops":     run("--stop-signal", "SIGINT", "--stop-timeout", "7", "-e", "VIRTUALHOST=stops.inspect.test", dockertest.HelloImage),
		"health":    run("-e", "VIRTUALHOST=health.inspect.test", dockertest.HelloHealthImage),
		"networks":  run("--network", net4, "-e", "VIRTUALHOST=nets.inspect.test", dockertest.HelloImage),
		"ipv6":      run("--network", net6, "-e", "VIRTUALHOST=v6.inspect.test", dockertest.HelloImage),
		"host":      run("--network", "host", "-e", "VIRTUALHOST=host.inspect.test", "-e", "LISTEN=0", dockertest.HelloImage),
		"paused":    run("-e", "VIRTUALHOST=paused.inspect.test", dockertest.HelloImage),
	}
	dockertest.Docker(t, "network", "connect", net6, ids["networks"])
	dockertest.Docker(t, "pause", ids["paused"])
	t.Cleanup(func() { dockertest.Docker(t, "unpause", ids["paused"]) })

	eng, err := DefaultEndpoint().Engine()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	for name, id := range ids {
		full, err := eng.Client.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatalf("%s: the client's inspect: %v", name, err)
		}
		for _, ref := range []string{id, id[:12], strings.TrimPrefix(full.Name, "/")} {
			got, err := eng.ReadContainer(ctx, ref)
			if err != nil {
				t.Fatalf("%s: inspect %s: %v", name, ref, err)
			}
			if want := FromInspect(full); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: inspect %s read\n%+v\nthe client's reads\n%+v", name, ref, got, want)
			}
		}
	}

	// The lists, running and all, with a filter as a scope sends one.
	dockertest.Docker(t, "stop", "-t", "0", ids["stops"])
	for _, all := range []bool{false, true} {
		opts := container.ListOptions{All: all, Filters: filters.NewArgs(filters.Arg("label", scope))}
		full, err := eng.Client.ContainerList(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		lite, err := eng.ReadList(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(lite) != len(full) {
			t.Fatalf("all=%v: %d entries listed, the client lists %d", all, len(lite), len(full))
		}
		seen := 0
		for i := range full {
			if got, want := readOfEntry(lite[i]), readOfEntry(EntryOf(full[i])); !reflect.DeepEqual(got, want) {
				t.Errorf("all=%v: entry %d read\n%+v\nthe client's reads\n%+v", all, i, got, want)
			}
			if slices.Contains(slices.Collect(maps.Values(ids)), full[i].ID) {
				seen++
			}
		}
		want := len(ids) - 1 // all but the stopped one
		if all {
			want = len(ids)
		}
		if seen != want {
			t.Errorf("all=%v: %d of the test's containers listed, want %d", all, seen, want)
		}
	}

	_, err = eng.ReadContainer(ctx, dockertest.Unique("no-such-container"))
	if !errdefs.IsNotFound(err) {
		t.Errorf("a missing container: %v, want an error errdefs.IsNotFound tells", err)
	}
	if _, err := eng.ReadContainer(ctx, " "); err == nil {
		t.Error("an empty name was inspected")
	}
}
