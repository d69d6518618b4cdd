package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/output"
)

// stuckOutput is an output whose publish hangs until released, ignoring
// its context, as a write to a hung file system does.
type stuckOutput struct {
	output.Output
	release chan struct{}
}

func (o stuckOutput) Publish(context.Context, route.Table) (output.Outcome, error) {
	<-o.release
	return output.Written, nil
}

func (stuckOutput) String() string { return "stuck output" }

// TestStuckPublishIsUnhealthy: a publish that hangs past its deadline turns
// /healthz unhealthy with the reason, and logs a warning; once it returns,
// health no longer blames it.
func TestStuckPublishIsUnhealthy(t *testing.T) {
	var logs caddytest.Buffer
	out := stuckOutput{release: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d := &daemon{out: &output.Bounded{Output: out, Deadline: 100 * time.Millisecond, Log: log}, log: log}
	done := make(chan struct{})
	go func() { d.out.Publish(context.Background(), route.Table{}); close(done) }()
	time.Sleep(250 * time.Millisecond)
	ok, why := d.health()
	if ok || !strings.Contains(why, "a publish to stuck output has run for") {
		t.Errorf("health while a publish is stuck: %v %q", ok, why)
	}
	close(out.release)
	<-done
	if why := d.out.Stuck(time.Now()); why != "" {
		t.Errorf("health still blames a publish that returned: %q", why)
	}
	if !strings.Contains(logs.String(), "a publish is past its deadline") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
}

// TestSecretModeMustBePrivate: hashes must not be world-readable.
func TestSecretModeMustBePrivate(t *testing.T) {
	if _, err := parseConfig("run", []string{"--secret-file-mode", "0644"}, io.Discard); err == nil {
		t.Error("--secret-file-mode 0644 (world-readable hashes) was accepted")
	}
}
