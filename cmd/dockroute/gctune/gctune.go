// Package gctune sizes Go's collector to dockroute's heap.
package gctune

import (
	"os"
	"runtime/debug"
	rtmetrics "runtime/metrics"
)

// Tuner gives Go's collector the headroom that suits dockroute's heap:
// the larger of gcFloor and gcShare of the live heap, never more than the
// live heap itself (Go's default, GOGC=100).
//
// Why not Go's default throughout: the heap is mostly route state that
// lives on (10,000 containers: ~23 MB), and a publish makes little garbage
// (~2.5 MB there), so doubling the live heap before each collection was a
// third of the resident memory at 10,000 containers (77 MB in all; 55 MB
// with this). Why not a lower GOGC throughout: on a small heap the
// collections it brings are what a publish waits for (1,000 containers:
// median event → published 1.2 → 1.5 ms at GOGC=50), while the memory it
// saves is a few MB. So small fleets keep Go's default, large ones a
// tighter goal (docs/performance.md). An operator's GOGC is left alone.
// The zero value is ready; only one goroutine may call Tune.
type Tuner struct {
	percent int  // what was last set (0: nothing yet)
	off     bool // GOGC set by the operator
	sample  []rtmetrics.Sample
}

const (
	gcFloor = 8 << 20 // bytes of headroom at least
	gcShare = 40      // percent of the live heap at least
)

// Tune sets the collector's target for the live heap as the last
// collection found it. It is cheap: one runtime metric, and a call into
// the runtime only when the target moves by 5 points or more.
func (t *Tuner) Tune() {
	if t.sample == nil { // the first publish
		t.off = os.Getenv("GOGC") != ""
		t.sample = []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	}
	if t.off {
		return
	}
	rtmetrics.Read(t.sample)
	if t.sample[0].Value.Kind() != rtmetrics.KindUint64 {
		return
	}
	p := gcPercent(t.sample[0].Value.Uint64())
	current := t.percent
	if current == 0 {
		current = 100 // Go's default
	}
	if p == current || p != 100 && abs(p-current) < 5 {
		return
	}
	t.percent = p
	debug.SetGCPercent(p)
}

// gcPercent is the GOGC that gives a live heap of live bytes its headroom.
func gcPercent(live uint64) int {
	if live == 0 {
		return 100
	}
	return min(100, max(gcShare, int(100*gcFloor/live)))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
