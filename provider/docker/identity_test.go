package docker

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// rootlessPodman is a fake engine that says it is a rootless Podman: its
// containers' addresses are in a namespace of the user's, which the host
// does not reach (a real rootless engine: TestPodmanRootless).
func rootlessPodman() *enginetest.Engine {
	e := enginetest.New()
	e.Version = types.Version{Version: "4.3.1", APIVersion: "1.41", Components: []types.ComponentVersion{{Name: "Podman Engine", Version: "4.3.1"}}}
	e.SystemInfo.SecurityOptions = []string{"name=rootless", "name=seccomp,profile=default"}
	return e
}

// TestRootlessEngineIsReachedAtPublishedPorts: on a rootless engine, a
// container is routed at its published port on the host unless the
// endpoint says otherwise, and one that publishes nothing is told to.
func TestRootlessEngineIsReachedAtPublishedPorts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		address contract.AddressMode
		want    string
	}{
		{"no address mode: published ports", "", "127.0.0.1:18080"},
		{"addr=network: the container's address", contract.AddrNetwork, "10.0.0.2:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := rootlessPodman()
			c := app("pub", "10.0.0.2")
			c.Published = map[uint16]uint16{8080: 18080}
			e.Run(c)
			e.Run(app("unpublished", "10.0.0.3"))
			w := New(e, Options{Options: contract.Options{Address: tc.address}}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go w.Run(ctx)
			waitRouted(t, w, 5*time.Second, "pub.test", tc.want)
			if tc.address != "" {
				return
			}
			for _, v := range w.Verdicts() {
				if v.Name == "unpublished" && (v.Routed() || !strings.Contains(v.Reason, "port 8080 is not published") || !strings.Contains(v.Reason, "-p 8080")) {
					t.Errorf("a container publishing nothing on a rootless engine: %+v", v)
				}
			}
		})
	}
}

// TestIdentityIsAskedAgain: a rootless Podman whose first /info timed out
// was followed as a rootful Docker until the next full resync (an hour),
// its containers routed at addresses the host does not reach (a real
// rootless engine: "on no network"; TestPodmanRootless flaked so). It is
// asked again at the sync's retry, and its containers rerouted.
func TestIdentityIsAskedAgain(t *testing.T) {
	e := rootlessPodman()
	e.FailInfo(1)
	c := app("pub", "10.0.0.2")
	c.Published = map[uint16]uint16{8080: 18080}
	e.Run(c)
	w := New(e, Options{}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	waitRouted(t, w, 5*time.Second, "pub.test", "127.0.0.1:18080")
}
