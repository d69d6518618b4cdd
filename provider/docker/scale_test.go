package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/dockroute/dockroute/provider/route"
)

// fakeEngine serves the few Docker API endpoints the watcher uses, for n
// running containers. It exists only because 10,000 real containers do not
// fit on a 2-core test machine; every behavioural test runs against the real
// engine instead. It counts inspect calls so benchmarks can report them.
type fakeEngine struct {
	n        int
	inspects int
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	path := r.URL.Path
	if i := strings.Index(path[1:], "/"); strings.HasPrefix(path, "/v1.") && i > 0 {
		path = path[i+1:]
	}
	switch {
	case path == "/_ping":
		io.WriteString(w, "OK")
	case path == "/containers/json":
		list := make([]container.Summary, f.n)
		for i := range list {
			list[i] = container.Summary{ID: id(i), Names: []string{"/c" + fmt.Sprint(i)}, State: "running",
				NetworkSettings: &container.NetworkSettingsSummary{Networks: endpoint(i)}}
			list[i].HostConfig.NetworkMode = "bridge"
		}
		json.NewEncoder(w).Encode(list)
	case strings.HasPrefix(path, "/containers/"):
		f.inspects++
		var i int
		fmt.Sscanf(strings.TrimPrefix(path, "/containers/"), "%064x", &i)
		json.NewEncoder(w).Encode(container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: id(i), Name: fmt.Sprintf("/c%d", i),
				State: &container.State{Status: "running", Running: true}, HostConfig: &container.HostConfig{NetworkMode: "bridge"}},
			Config: &container.Config{Env: []string{fmt.Sprintf("VIRTUALHOST=app%d.example.com", i), "PORT=8080"},
				ExposedPorts: nat.PortSet{"8080/tcp": {}}},
			NetworkSettings: &container.NetworkSettings{Networks: endpoint(i)},
		})
	default:
		http.NotFound(w, r)
	}
}

func id(i int) string { return fmt.Sprintf("%064x", i) }

func endpoint(i int) map[string]*network.EndpointSettings {
	return map[string]*network.EndpointSettings{"bridge": {IPAddress: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}}
}

func fakeWatcher(b *testing.B, n int) (*Watcher, *fakeEngine) {
	f := &fakeEngine{n: n}
	srv := httptest.NewServer(f)
	b.Cleanup(srv.Close)
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	return New(cli, Options{}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))), f
}

// BenchmarkFirstSync10k is start-up with 10,000 opted-in containers: one
// list and one inspect each.
func BenchmarkFirstSync10k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		w, _ := fakeWatcher(b, 10000)
		b.StartTimer()
		if err := w.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeriodicResync10k is the safety-net resync once the containers
// are known: a single list call, no inspects.
func BenchmarkPeriodicResync10k(b *testing.B) {
	w, f := fakeWatcher(b, 10000)
	if err := w.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	f.inspects = 0
	for b.Loop() {
		if err := w.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(f.inspects)/float64(b.N), "inspects/op")
	bs, _ := w.Backends()
	if n := len(route.Build(bs).Routes); n != 10000 {
		b.Fatalf("%d routes, want 10000", n)
	}
}

// BenchmarkTable10k is the cost of computing the table at publish time.
func BenchmarkTable10k(b *testing.B) {
	w, _ := fakeWatcher(b, 10000)
	if err := w.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		backends, _ := w.Backends()
		route.Build(backends)
	}
}
