package docker

import (
	"sync"
	"time"
)

// tenure is what every host was last settled to (see term and
// settleHost): the memory that keeps a host's settings with whoever holds
// them, and through the gap of a redeploy. Changes writes it as it settles
// hosts; settling from scratch (explain, metrics) only reads it.
//
// Like route.Recent it is a bounded exception to a table computed from
// the running containers alone: it can only refuse a route, never add
// one, a vacant part lives at most the hold, and it is lost on restart
// (claims then go by start time, as with no memory).
type tenure struct {
	mu    sync.Mutex
	hold  time.Duration
	terms map[string]*term     // by host key
	due   map[string]time.Time // host keys with a vacant part: when the first stops being held
}

func newTenure(hold time.Duration) *tenure {
	return &tenure{hold: hold, terms: map[string]*term{}, due: map[string]time.Time{}}
}

// get returns what host key hk was last settled to (nil: nothing).
func (t *tenure) get(hk string) *term {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.terms[hk]
}

func (t *tenure) holdFor() time.Duration {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hold
}

func (t *tenure) setHold(d time.Duration) {
	t.mu.Lock()
	t.hold = d
	t.mu.Unlock()
}

// set records what hk was settled to (nil forgets it).
func (t *tenure) set(hk string, tm *term) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.due, hk)
	if tm == nil {
		delete(t.terms, hk)
		return
	}
	t.terms[hk] = tm
	if at := tm.due(t.hold); !at.IsZero() {
		t.due[hk] = at
	}
}

// expired lists the host keys a vacant part of which stopped being held
// by now, to settle again, and returns when the next one will (zero:
// none).
func (t *tenure) expired(now time.Time) (hks []string, next time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for hk, at := range t.due {
		if !now.Before(at) {
			hks = append(hks, hk)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return hks, next
}

// next is when the first vacant part stops being held (zero: none).
func (t *tenure) next() time.Time {
	_, next := t.expired(time.Time{})
	return next
}
