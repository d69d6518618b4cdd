// Package coalesce turns bursts of change signals into single flushes, so a
// storm of Docker events costs one render and one publish, not one each.
package coalesce

import (
	"context"
	"time"
)

// Config sets the timing of a Coalescer.
type Config struct {
	// Quiet is how long the signals must pause before a flush. Zero
	// flushes at once: signals that arrive during a flush are carried by
	// the one flush that follows it, so a burst still costs few flushes
	// (as many as the flushes it outlasts), and a lone change costs no
	// wait at all.
	Quiet time.Duration
	// MaxDelay bounds how long a flush may wait after the first signal of a
	// burst, so a steady trickle of signals cannot postpone it forever.
	MaxDelay time.Duration
	// Retry is how long to wait before flushing again after a failed flush;
	// it doubles with each further failure, up to MaxRetry.
	Retry, MaxRetry time.Duration
	// Urgent, when set, receives signals that flush within UrgentWait, without
	// waiting for quiet: a change that takes a backend out of routing,
	// whose burst (a removal's kill, die, stop, destroy) would otherwise
	// keep re-arming the quiet wait while the proxy still sends requests
	// to it. What the burst brings after the flush goes in the next.
	Urgent <-chan struct{}
}

// UrgentWait is how soon an urgent signal flushes.
const UrgentWait = 30 * time.Millisecond

// Run calls flush once per burst of values on kick, until ctx ends. When
// flush fails, Run tries again with backoff even if nothing new arrives, so
// a transient failure (a full disk, a proxy restarting) does not leave the
// output stale until the next container event.
func Run(ctx context.Context, cfg Config, kick <-chan struct{}, flush func() error) {
	quiet := stoppedTimer()
	deadline := stoppedTimer()
	pending := false
	retry := cfg.Retry
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			if !pending {
				pending = true
				deadline.Reset(cfg.MaxDelay)
			}
			quiet.Reset(cfg.Quiet)
			continue
		case <-cfg.Urgent:
			// Soon, not at once: a Caddy reload cancels the retries
			// (10 ms apart) of requests that just met the leaving
			// container; later kicks no longer postpone it.
			pending = true
			deadline.Reset(UrgentWait)
			continue
		case <-quiet.C:
		case <-deadline.C:
		}
		quiet.Stop()
		deadline.Stop()
		pending = false
		if err := flush(); err != nil {
			pending = true
			deadline.Reset(retry)
			retry = min(2*retry, max(cfg.MaxRetry, cfg.Retry))
			continue
		}
		retry = cfg.Retry
	}
}

// stoppedTimer returns a timer that has not been started. Since Go 1.23 a
// stopped or reset timer never delivers a stale value, so Reset and Stop need
// no draining.
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}
