package caddy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// cutOff is an admin API that closes the first cut connections without an
// answer and then answers GETs with status and a body. A fake: what it
// stands for is Caddy 2.11.9 replacing its admin server after a refused
// load and closing a GET in flight on the old one, which on a real Caddy
// happens only when the timing falls so (once in CI, as
// TestRefusedRouteDoesNotBlockOthers failing with EOF).
func cutOff(t *testing.T, cut int32, status int) (*Admin, *atomic.Int32) {
	t.Helper()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asked.Add(1) <= cut {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Etag", `"/id/dockroute 1"`)
		w.WriteHeader(status)
		w.Write([]byte(`{"error":"unknown object ID 'dockroute'"}`))
	}))
	t.Cleanup(srv.Close)
	a, err := NewAdmin(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return a, &asked
}

func TestGetSurvivesAdminRestart(t *testing.T) {
	a, asked := cutOff(t, 2, http.StatusOK)
	body, etag, err := a.Get(context.Background(), "/id/dockroute")
	if err != nil || etag != `"/id/dockroute 1"` || len(body) == 0 {
		t.Fatalf("Get after two cut-off reads: %q, %q, %v", body, etag, err)
	}
	if n := asked.Load(); n != 3 {
		t.Fatalf("asked %d times, want 3", n)
	}
}

func TestGetGivesUpAndKeepsAnswers(t *testing.T) {
	a, asked := cutOff(t, 10, http.StatusOK)
	if _, _, err := a.Get(context.Background(), "/id/dockroute"); err == nil {
		t.Fatal("Get succeeded with every read cut off")
	}
	if n := asked.Load(); n != attempts {
		t.Fatalf("asked %d times, want %d", n, attempts)
	}
	// An answer, even a refusal, is not asked again.
	a, asked = cutOff(t, 0, http.StatusNotFound)
	if _, _, err := a.Get(context.Background(), "/id/dockroute"); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("Get of a missing server: %v, want Caddy's 404", err)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("a 404 was asked %d times, want once", n)
	}
}

// A conditional change cut off before Caddy answered is sent again (a
// second one that finds the first applied is answered 412); an
// unconditional one is sent once, as Caddy might have applied it.
func TestSendRepeatsOnlyConditionalChanges(t *testing.T) {
	a, asked := cutOff(t, 2, http.StatusOK)
	if err := a.Send(context.Background(), http.MethodPatch, "/id/dockroute", []byte(`{}`), `"/id/dockroute 1"`); err != nil {
		t.Fatalf("conditional PATCH after two cut-off tries: %v", err)
	}
	if n := asked.Load(); n != 3 {
		t.Fatalf("asked %d times, want 3", n)
	}
	a, asked = cutOff(t, 1, http.StatusOK)
	if err := a.Send(context.Background(), http.MethodPatch, "/id/dockroute", []byte(`{}`), ""); err == nil {
		t.Fatal("an unconditional PATCH that was cut off succeeded")
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("an unconditional PATCH was sent %d times, want once", n)
	}
}

// TestSlowAdminIsBoundedAndReported: a Caddy whose admin API does not
// answer costs one request's timeout, not three, and a slow answer is
// reported.
func TestSlowAdminIsBoundedAndReported(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path == "/slow" {
			time.Sleep(150 * time.Millisecond)
			return
		}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	a, err := NewAdmin(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	a.hc.Timeout, a.slowAfter = 300*time.Millisecond, 100*time.Millisecond
	var slow []string
	a.Slow = func(method, path string, took time.Duration, err error) {
		slow = append(slow, fmt.Sprint(method, " ", path, " ", err != nil))
	}
	if err := a.Send(context.Background(), http.MethodPatch, "/frozen", []byte("{}"), `"etag"`); err == nil || !timedOut(err) {
		t.Fatalf("a frozen Caddy: %v, want a timeout", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests to a Caddy that timed out, want 1 (not retried)", n)
	}
	if _, _, err := a.Get(context.Background(), "/slow"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATCH /frozen true", "GET /slow false"}; !slices.Equal(slow, want) {
		t.Errorf("reported slow: %q, want %q", slow, want)
	}
}
