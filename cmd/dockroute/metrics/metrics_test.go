package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/output"
)

// TestHandler: /healthz says why it is unhealthy with a 503, and /metrics
// counts publishes by outcome.
func TestHandler(t *testing.T) {
	m := New(&docker.Fleet{}, nil)
	m.Observe(route.Build([]route.Backend{{Host: "a.test", Server: "10.0.0.1:80"}}), time.Millisecond, output.Written, nil)
	m.Observe(route.Table{}, time.Millisecond, "", errors.New("disk full"))
	healthy, why := false, "unhealthy: docker is unreachable"
	srv := httptest.NewServer(m.Handler(func() (bool, string) { return healthy, why }, http.NotFound, false))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, why) {
		t.Errorf("unhealthy: %d %q", code, body)
	}
	healthy, why = true, "ok"
	if code, body := get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("healthy: %d %q", code, body)
	}
	_, body := get("/metrics")
	for _, want := range []string{`dockroute_publishes_total{result="written"} 1`, `dockroute_publishes_total{result="error"} 1`, "dockroute_routes 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("the profiler is served without being asked for: %d", code)
	}
}
