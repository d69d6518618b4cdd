package docker

import (
	"testing"
	"time"
)

// TestChangedSinceKeepsTheOldest: of several changes before a publish
// takes them, the oldest is where the latency starts; taking starts over.
func TestChangedSinceKeepsTheOldest(t *testing.T) {
	l := newLink()
	if got := l.ChangedSince(); !got.IsZero() {
		t.Fatalf("no change yet: %v", got)
	}
	t0 := time.Now().Add(-time.Second)
	l.notifySince(t0.Add(500 * time.Millisecond))
	l.notifySince(t0)
	l.notify()
	if got := l.ChangedSince(); !got.Equal(t0) {
		t.Fatalf("ChangedSince = %v, want the oldest %v", got, t0)
	}
	if got := l.ChangedSince(); !got.IsZero() {
		t.Fatalf("taken twice: %v", got)
	}
	select {
	case <-l.Changed():
	default:
		t.Fatal("no change signalled")
	}
}
