package contract

import (
	"sync"
	"time"
)

// Tenure is what every host was last settled to (see term and
// settleHost): the memory that keeps a host's settings with whoever holds
// them, and through the gap of a redeploy. Changes writes it as it settles
// hosts (Settle); settling from scratch (ResolveClaims: explain, metrics)
// only reads it.
//
// Like route.Recent it is a bounded exception to a table computed from
// the running containers alone: it can only refuse a route, never add
// one, a vacant part lives at most the hold, and it is lost on restart
// (claims then go by start time, as with no memory).
type Tenure struct {
	mu    sync.Mutex
	hold  time.Duration
	terms map[string]*term     // by host key
	due   map[string]time.Time // host keys with a vacant part: when the first stops being held
}

// NewTenure is a memory of nothing yet, holding vacant settings for hold.
func NewTenure(hold time.Duration) *Tenure {
	return &Tenure{hold: hold, terms: map[string]*term{}, due: map[string]time.Time{}}
}

// get returns what host key hk was last settled to (nil: nothing).
func (t *Tenure) get(hk string) *term {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.terms[hk]
}

func (t *Tenure) holdFor() time.Duration {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hold
}

// SetHold changes the hold (a reloaded --unavailable-grace).
func (t *Tenure) SetHold(d time.Duration) {
	t.mu.Lock()
	t.hold = d
	t.mu.Unlock()
}

// set records what hk was settled to (nil forgets it).
func (t *Tenure) set(hk string, tm *term) {
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

// Expired lists the host keys a vacant part of which stopped being held
// by now, to settle again, and returns when the next one will (zero:
// none).
func (t *Tenure) Expired(now time.Time) (hks []string, next time.Time) {
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

// Next is when the first vacant part stops being held (zero: none).
func (t *Tenure) Next() time.Time {
	_, next := t.Expired(time.Time{})
	return next
}

// Settle settles host key hk among the verdicts that claim it (vs, in any
// order), from what it was settled to before, and remembers the result.
// What each verdict may not have is added to lost (verdict index →
// backend index → why).
func (t *Tenure) Settle(vs []Verdict, hk string, lost map[int]map[int]string, now time.Time) {
	idx := make([]int, len(vs))
	for i := range idx {
		idx[i] = i
	}
	t.set(hk, settleHost(vs, hk, idx, lost, t.get(hk), now, t.holdFor()))
}
