package docker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// TestSyncReusesConnections counts the connections a first sync of 500
// containers opens to the engine (the fake one, for its connection
// count): the parallel inspects must reuse theirs. With Go's default of
// 2 idle connections per host kept, the client closed and dialed again
// all along (533 connections for 10,000 containers).
func TestSyncReusesConnections(t *testing.T) {
	e := enginetest.New()
	for i := range 500 {
		e.Run(enginetest.Container{ID: fmt.Sprintf("%064x", i+1), Name: fmt.Sprintf("c%d", i),
			Env: []string{fmt.Sprintf("VIRTUALHOST=app%d.example.com", i), "PORT=8080"},
			IP:  fmt.Sprintf("10.0.%d.%d", (i+1)>>8&255, (i+1)&255)})
	}
	srv := httptest.NewUnstartedServer(enginetest.Handler(e))
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cli, err := engine.Endpoint{Host: "tcp://" + srv.Listener.Addr().String()}.Engine()
	if err != nil {
		t.Fatal(err)
	}
	w := New(cli, Options{}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if bs, _ := w.Backends(); len(bs) != 500 {
		t.Fatalf("%d backends after the sync, want 500", len(bs))
	}
	// One per inspect in flight, and a few more: Go's transport may dial
	// for a request in the instant before a finished one's connection is
	// back in the pool, more often on a loaded machine (11 seen once
	// beside the package's other tests). Without the larger pool: 27.
	if n, most := conns.Load(), int64(2*engine.InspectConcurrency); n > most {
		t.Fatalf("the sync opened %d connections to the engine, want at most %d", n, most)
	}
}
