package main

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
	"github.com/dockroute/dockroute/render/caddy/caddytest"
)

// TestOwnWritesAreNotRepairs: the output directory's watcher sees
// dockroute's own writes and must leave them be (before, each of them cost
// a read of the whole file; a broken check would cost a publish each),
// while a change by anyone else has the file written again.
func TestOwnWritesAreNotRepairs(t *testing.T) {
	cfg, _ := parseConfig("run", []string{"--traefik-dir", t.TempDir()}, io.Discard)
	o, err := newTraefikOutput(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var pokes atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go o.watch(ctx, func() { pokes.Add(1) })
	time.Sleep(200 * time.Millisecond) // the watch is set up
	for i, host := range []string{"a.test", "b.test", "c.test"} {
		tbl := route.Build([]route.Backend{{Host: host, Server: "10.0.0.1:80"}})
		if did, err := o.publish(ctx, tbl); err != nil || did != written {
			t.Fatalf("publish %d: %s %v", i, did, err)
		}
		time.Sleep(150 * time.Millisecond) // past the watch's 50 ms debounce
	}
	if n := pokes.Load(); n != 0 {
		t.Fatalf("dockroute's own writes were taken for outside changes %d times", n)
	}
	if err := os.WriteFile(o.pub.Path(), []byte("# someone else's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); pokes.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an outside change was not repaired")
		}
	}
	tbl := route.Build([]route.Backend{{Host: "c.test", Server: "10.0.0.1:80"}})
	if did, err := o.publish(ctx, tbl); err != nil || did != written {
		t.Fatalf("the repair's publish: %s %v", did, err)
	}
	if data, _ := os.ReadFile(o.pub.Path()); !strings.Contains(string(data), "c.test") {
		t.Fatalf("not repaired:\n%s", data)
	}
}

// stuckOutput is an output whose publish hangs until released, ignoring
// its context, as a write to a hung file system does.
type stuckOutput struct {
	output
	release chan struct{}
}

func (o stuckOutput) publish(context.Context, route.Table) (outcome, error) {
	<-o.release
	return written, nil
}

func (stuckOutput) String() string { return "stuck output" }

// TestStuckPublishIsUnhealthy: a publish that hangs past its deadline turns
// /healthz unhealthy with the reason, and logs a warning; once it returns,
// health no longer blames it.
func TestStuckPublishIsUnhealthy(t *testing.T) {
	var logs caddytest.Buffer
	out := stuckOutput{release: make(chan struct{})}
	d := &daemon{out: out, log: slog.New(slog.NewTextHandler(&logs, nil)), publishTimeout: 100 * time.Millisecond}
	done := make(chan struct{})
	go func() { d.publishBounded(context.Background(), route.Table{}, time.Now()); close(done) }()
	time.Sleep(250 * time.Millisecond)
	ok, why := d.health()
	if ok || !strings.Contains(why, "a publish to stuck output has run for") {
		t.Errorf("health while a publish is stuck: %v %q", ok, why)
	}
	close(out.release)
	<-done
	if why := d.stuckPublish(time.Now()); why != "" {
		t.Errorf("health still blames a publish that returned: %q", why)
	}
	if !strings.Contains(logs.String(), "a publish is past its deadline") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
}

// TestFileWithHashesIsPrivate: while a route checks basic auth, the Traefik
// file holds the users' hashes, and is written 0600 (--secret-file-mode);
// otherwise 0644, for a Traefik running as another user.
func TestFileWithHashesIsPrivate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		auth string
		want os.FileMode
	}{
		{auth: "", want: 0o644},
		{auth: "staff", want: 0o600},
		{args: []string{"--secret-file-mode", "0640"}, auth: "staff", want: 0o640},
	} {
		cfg, err := parseConfig("run", append([]string{"--traefik-dir", t.TempDir()}, tc.args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		o, err := newTraefikOutput(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		tbl := route.Build([]route.Backend{{Host: "a.test", Auth: tc.auth, Server: "10.0.0.1:80"}})
		if _, err := o.publish(context.Background(), tbl); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(o.pub.Path())
		if err != nil || fi.Mode().Perm() != tc.want {
			t.Errorf("auth %q %v: mode %v %v, want %v", tc.auth, tc.args, fi.Mode().Perm(), err, tc.want)
		}
	}
	if _, err := parseConfig("run", []string{"--secret-file-mode", "0644"}, io.Discard); err == nil {
		t.Error("--secret-file-mode 0644 (world-readable hashes) was accepted")
	}
}
