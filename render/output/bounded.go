package output

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// DefaultDeadline bounds one publish. A full load of 10,000 routes takes
// Caddy 3–4 s on the machine of docs/performance.md.
const DefaultDeadline = 15 * time.Second

// Bounded is an Output whose publishes run under a deadline: a Caddy that
// stops answering its admin API, or a file system that hangs a write, must
// not hold every later change back without a word. Past the deadline the
// publish's context ends, a warning is logged, and Stuck says so (the
// daemon's /healthz turns 503) until the publish returns.
type Bounded struct {
	Output
	Deadline time.Duration // 0: DefaultDeadline
	Log      *slog.Logger
	// since is when the publish under way began, in Unix nanoseconds
	// (0: none is); Stuck reads it from another goroutine.
	since atomic.Int64
}

func (b *Bounded) deadline() time.Duration {
	if b.Deadline > 0 {
		return b.Deadline
	}
	return DefaultDeadline
}

// Publish runs the output's publish under the deadline, and records while
// it runs so that Stuck can tell a stuck one.
func (b *Bounded) Publish(ctx context.Context, t route.Table) (Outcome, error) {
	deadline := b.deadline()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	b.since.Store(time.Now().UnixNano())
	defer b.since.Store(0)
	late := time.AfterFunc(deadline, func() {
		b.Log.Warn("a publish is past its deadline; later changes wait for it", "output", b.String(), "deadline", deadline)
	})
	defer late.Stop()
	return b.Output.Publish(ctx, t)
}

// Stuck says how long the publish under way has run, when that is past
// its deadline ("" otherwise).
func (b *Bounded) Stuck(now time.Time) string {
	since := b.since.Load()
	if since == 0 {
		return ""
	}
	if took := now.Sub(time.Unix(0, since)); took > b.deadline() {
		return fmt.Sprintf("a publish to %s has run for %s, past its %s deadline; later changes wait for it (the last published routes stay in place)", b.String(), took.Round(time.Millisecond), b.deadline())
	}
	return ""
}
