package coalesce

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// start runs a coalescer and returns its kick channel and flush counter.
func start(t *testing.T, cfg Config, flush func() error) chan struct{} {
	t.Helper()
	return startWith(t, cfg, make(chan struct{}), flush)
}

// startWith runs a coalescer on the given kick channel.
func startWith(t *testing.T, cfg Config, kick chan struct{}, flush func() error) chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, cfg, kick, flush); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return kick
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestBurstFlushesOnce(t *testing.T) {
	var n atomic.Int32
	kick := start(t, Config{Quiet: 50 * time.Millisecond, MaxDelay: time.Hour, Retry: time.Hour}, func() error { n.Add(1); return nil })
	for range 1000 {
		kick <- struct{}{}
	}
	waitFor(t, "the flush", func() bool { return n.Load() > 0 })
	time.Sleep(150 * time.Millisecond) // three quiet windows: no second flush may follow
	if got := n.Load(); got != 1 {
		t.Fatalf("1000 kicks in a burst flushed %d times, want 1", got)
	}
}

// TestMaxDelayBoundsATrickle kicks more often than the quiet window forever;
// only MaxDelay can let a flush through.
func TestMaxDelayBoundsATrickle(t *testing.T) {
	var n atomic.Int32
	kick := start(t, Config{Quiet: time.Hour, MaxDelay: 30 * time.Millisecond, Retry: time.Hour}, func() error { n.Add(1); return nil })
	stop := time.After(5 * time.Second)
	for n.Load() < 2 {
		select {
		case kick <- struct{}{}:
		case <-stop:
			t.Fatalf("a steady trickle postponed flushing: %d flushes", n.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFailedFlushIsRetried(t *testing.T) {
	var n atomic.Int32
	kick := start(t, Config{Quiet: time.Millisecond, MaxDelay: time.Millisecond, Retry: 10 * time.Millisecond, MaxRetry: 20 * time.Millisecond}, func() error {
		if n.Add(1) < 3 {
			return errors.New("disk full")
		}
		return nil
	})
	kick <- struct{}{}
	waitFor(t, "two retries after one kick", func() bool { return n.Load() >= 3 })
	time.Sleep(50 * time.Millisecond)
	if got := n.Load(); got != 3 {
		t.Fatalf("flushed %d times; after the first success nothing should follow", got)
	}
}

// TestNoQuietWindowFlushesAtOnce: with Quiet 0 a kick flushes without
// waiting, and the kicks that arrive during a flush cost one flush more,
// not one each.
func TestNoQuietWindowFlushesAtOnce(t *testing.T) {
	var n atomic.Int32
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	// Buffered as the daemon's is: a poke during a flush waits in it.
	kick := startWith(t, Config{Quiet: 0, MaxDelay: 0, Retry: time.Hour}, make(chan struct{}, 1), func() error {
		entered <- struct{}{}
		if n.Add(1) == 1 {
			<-release // the first flush is slow: the kicks below arrive during it
		}
		return nil
	})
	t0 := time.Now()
	kick <- struct{}{}
	<-entered
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("the flush waited %v", d)
	}
	for range 100 {
		select { // the daemon's poke: a kick already waiting is enough
		case kick <- struct{}{}:
		default:
		}
	}
	close(release)
	waitFor(t, "the flush after the slow one", func() bool { return n.Load() == 2 })
	time.Sleep(50 * time.Millisecond)
	if got := n.Load(); got != 2 {
		t.Fatalf("kicks during a flush gave %d flushes after it, want 1", got-1)
	}
}

// TestUrgentSkipsTheQuietWait: a burst keeps the quiet window open (an
// hour here), and only the urgent signal can flush it.
func TestUrgentSkipsTheQuietWait(t *testing.T) {
	var n atomic.Int32
	urgent := make(chan struct{})
	kick := start(t, Config{Quiet: time.Hour, MaxDelay: time.Hour, Retry: time.Hour, Urgent: urgent}, func() error { n.Add(1); return nil })
	kick <- struct{}{}
	urgent <- struct{}{}
	waitFor(t, "the urgent flush", func() bool { return n.Load() == 1 })
	kick <- struct{}{} // the rest of the burst waits for quiet as before
	time.Sleep(50 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Fatalf("%d flushes, want 1", got)
	}
}
