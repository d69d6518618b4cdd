package traefik

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/output"
)

// TestOwnWritesAreNotRepairs: the output directory's watcher sees
// dockroute's own writes and must leave them be (before, each of them cost
// a read of the whole file; a broken check would cost a publish each),
// while a change by anyone else has the file written again.
func TestOwnWritesAreNotRepairs(t *testing.T) {
	o, err := NewOutput(OutputConfig{Dir: t.TempDir(), File: "dockroute.yml"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var pokes atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go o.Watch(ctx, func() { pokes.Add(1) })
	time.Sleep(200 * time.Millisecond) // the watch is set up
	for i, host := range []string{"a.test", "b.test", "c.test"} {
		tbl := route.Build([]route.Backend{{Host: host, Server: "10.0.0.1:80"}})
		if did, err := o.Publish(ctx, tbl); err != nil || did != output.Written {
			t.Fatalf("publish %d: %s %v", i, did, err)
		}
		time.Sleep(150 * time.Millisecond) // past the watch's 50 ms debounce
	}
	if n := pokes.Load(); n != 0 {
		t.Fatalf("dockroute's own writes were taken for outside changes %d times", n)
	}
	if err := os.WriteFile(o.Path(), []byte("# someone else's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); pokes.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an outside change was not repaired")
		}
	}
	tbl := route.Build([]route.Backend{{Host: "c.test", Server: "10.0.0.1:80"}})
	if did, err := o.Publish(ctx, tbl); err != nil || did != output.Written {
		t.Fatalf("the repair's publish: %s %v", did, err)
	}
	if data, _ := os.ReadFile(o.Path()); !strings.Contains(string(data), "c.test") {
		t.Fatalf("not repaired:\n%s", data)
	}
}

// TestFileWithHashesIsPrivate: while a route checks basic auth, the Traefik
// file holds the users' hashes, and is written 0600 (its SecretMode, --secret-file-mode);
// otherwise 0644, for a Traefik running as another user.
func TestFileWithHashesIsPrivate(t *testing.T) {
	for _, tc := range []struct {
		secret os.FileMode
		auth   string
		want   os.FileMode
	}{
		{secret: 0o600, auth: "", want: 0o644},
		{secret: 0o600, auth: "staff", want: 0o600},
		{secret: 0o640, auth: "staff", want: 0o640},
	} {
		o, err := NewOutput(OutputConfig{Dir: t.TempDir(), File: "dockroute.yml", SecretMode: tc.secret}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		tbl := route.Build([]route.Backend{{Host: "a.test", Auth: tc.auth, Server: "10.0.0.1:80"}})
		if _, err := o.Publish(context.Background(), tbl); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(o.Path())
		if err != nil || fi.Mode().Perm() != tc.want {
			t.Errorf("auth %q secret %v: mode %v %v, want %v", tc.auth, tc.secret, fi.Mode().Perm(), err, tc.want)
		}
	}
}
