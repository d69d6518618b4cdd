package docker

import (
	"sync"
	"sync/atomic"
	"time"
)

// link is what a source (Watcher, ServiceWatcher) shares with whoever
// follows it: whether its engine is followed and its data current, and
// the channels through which it says that something changed or is asked
// to resync. Its state changes only as the follower reports.
type link struct {
	changed chan struct{}
	// urgent receives a value when a routed container left routing: the
	// publish that takes it out should not wait for the rest of its burst
	// (a removal's kill, die, stop and destroy come ~90 ms apart).
	urgent     chan struct{}
	resyncNow  chan struct{}
	reconnects atomic.Int64
	// since is when the oldest change not yet taken by ChangedSince
	// happened, in Unix nanoseconds (0: none): where the latency from a
	// Docker event to the publish that carries it starts.
	since atomic.Int64

	mu        sync.Mutex
	synced    bool      // a full sync succeeded and the engine was not lost since
	connected bool      // the event stream is followed
	followed  bool      // it was followed at least once
	lostAt    time.Time // when the engine was lost after a sync (zero: not lost)
}

func newLink() link {
	return link{changed: make(chan struct{}, 1), urgent: make(chan struct{}, 1), resyncNow: make(chan struct{}, 1)}
}

// Changed receives a value whenever the source's verdicts changed since it
// was last read; changes in between collapse into one.
func (l *link) Changed() <-chan struct{} { return l.changed }

func (l *link) notify() { l.notifySince(time.Now()) }

// Urgent receives a value when a routed container left routing, beside
// the Changed that carries it.
func (l *link) Urgent() <-chan struct{} { return l.urgent }

func (l *link) notifyUrgent() {
	select {
	case l.urgent <- struct{}{}:
	default:
	}
}

// notifySince says that something changed, as a consequence of what
// happened at t (an event's arrival, before the inspect it cost).
func (l *link) notifySince(t time.Time) {
	n := t.UnixNano()
	for {
		old := l.since.Load()
		if old != 0 && old <= n || l.since.CompareAndSwap(old, n) {
			break
		}
	}
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// ChangedSince returns when the oldest change since the last call
// happened, zero if none, and starts over.
func (l *link) ChangedSince() time.Time {
	if n := l.since.Swap(0); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// ResyncNow asks for a full resync as soon as possible (SIGHUP).
func (l *link) ResyncNow() {
	select {
	case l.resyncNow <- struct{}{}:
	default:
	}
}

// Reconnects counts how often the engine was followed again after being
// lost.
func (l *link) Reconnects() int64 { return l.reconnects.Load() }

// Connected tells whether the engine's event stream is followed.
func (l *link) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connected
}

// setConnected records that the stream is followed (after a full sync) or
// lost. Losing it makes the data stale until the next full sync.
func (l *link) setConnected(ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case ok:
		if l.followed {
			l.reconnects.Add(1)
		}
		l.followed, l.lostAt = true, time.Time{}
	case l.synced:
		l.synced, l.lostAt = false, time.Now()
	}
	l.connected = ok
}

// markSynced records a full sync, and whether it is the first since the
// engine was followed (or lost).
func (l *link) markSynced() (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, l.synced = !l.synced, true
	return first
}

// linkState reports whether the data is current and since when the engine
// is lost.
func (l *link) linkState() (synced bool, lostAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.synced, l.lostAt
}
