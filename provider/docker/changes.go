package docker

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/route"
)

// The incremental side of a Fleet: what each publish needs is not every
// verdict again (a copy of 10,000 verdicts, their claims settled anew and
// a table built from scratch were most of a one-container change's cost
// and garbage) but the containers whose routes changed. Changes hands
// those out, settling claims only on the hosts a change touches; what it
// hands out over time always adds up to what Backends computes from
// scratch (TestChangesAddUp).

// view is what Changes last handed out: which verdicts count and what of
// them settling needs, who claims each host, and what claims refused.
type view struct {
	counted map[srcKey]bool
	held    map[string]held     // by verdict ID: the verdicts that count
	claims  map[string][]string // host key → IDs with a backend there
	// lost holds, by ID, the backends (indexes into its verdict's) that
	// claims refused, and why.
	lost map[string]map[int]string
}

// srcKey names one of the fleet's sources: an engine's containers or its
// services.
type srcKey struct {
	member   int
	services bool
}

func (k srcKey) before(o srcKey) bool {
	return k.member < o.member || k.member == o.member && !k.services && o.services
}

// held is a verdict that counts, as it was taken (shared with its
// source, which never modifies it), and where it came from.
type held struct {
	src srcKey
	v   *contract.Verdict
}

func newView() *view {
	return &view{counted: map[srcKey]bool{}, held: map[string]held{}, claims: map[string][]string{}, lost: map[string]map[int]string{}}
}

// takeSource is one of the sources as a Changes call sees it.
type takeSource struct {
	key    srcKey
	src    verdictSource
	counts bool
}

// Changes returns, for every verdict whose routes may have changed since
// the last call, its backends now, claims settled (nil: it has none), and
// whether the fleet may be published at all (see Backends). While it may
// not, nothing is taken: the changes wait for the next call. A caller
// that applies every answer in order (route.Builder.Set) holds what
// Backends would give.
func (f *Fleet) Changes() (map[string][]route.Backend, bool) {
	f.vmu.Lock()
	defer f.vmu.Unlock()
	now := time.Now()
	srcs, fresh := f.sources(now)
	if !fresh {
		return nil, false
	}
	c := changeSet{f: f, v: f.view, srcs: srcs, dirty: map[string]bool{}, emit: map[string]bool{}, routed: map[string]bool{}, now: now}
	for _, s := range srcs {
		c.takeFrom(s)
	}
	expired, _ := f.tenure.Expired(now)
	for _, hk := range expired {
		c.dirty[hk] = true
	}
	c.settle()
	f.armWake(now)
	out := c.resolved()
	c.logRouted(out)
	return out, true
}

// routedLines bounds the "routed" lines one Changes call logs at Info: a
// first sync of 10,000 containers logged 10,000, which said little and
// cost it ~7% of its time. Those past the bound are logged at Debug and
// counted in one line; what is not routed is always logged, each
// container with its reason.
const routedLines = 20

// logRouted says "routed" for each container whose verdict changed to
// routed, or whose refused claim was settled to it, with the routes
// claims left it. It is said here, after claims are settled, and not
// when the verdict is made: a container refused a host another holds was
// first logged "routed", then "route refused" (issue 27).
func (c *changeSet) logRouted(out map[string][]route.Backend) {
	said, quiet := 0, 0
	for _, id := range slices.Sorted(maps.Keys(c.routed)) {
		bs := out[id]
		h, ok := c.v.held[id]
		if !ok || len(bs) == 0 || !h.v.Routed() {
			continue
		}
		level := slog.LevelInfo
		if said++; said > routedLines {
			level, quiet = slog.LevelDebug, quiet+1
		}
		msg, kind := "routed", "container"
		if h.src.services {
			msg, kind = "routed service", "service"
		}
		c.f.log.Log(context.Background(), level, msg, kind, h.v.Name, "id", contract.Short(id), "routes", logRoutes(bs))
	}
	if quiet > 0 {
		c.f.log.Info("routed more containers", "count", quiet, "see", "dockroute explain, or --log-level debug")
	}
}

// armWake has Changed fire when the next vacant host stops being held,
// so that a container it refused is routed then.
func (f *Fleet) armWake(now time.Time) {
	if f.wake != nil {
		f.wake.Stop()
	}
	if next := f.tenure.Next(); !next.IsZero() {
		f.wake = time.AfterFunc(next.Sub(now), f.notify)
	}
}

// sources lists the fleet's sources in order, each with whether it
// counts now (as current counts them), and whether any engine is synced.
func (f *Fleet) sources(now time.Time) (srcs []takeSource, fresh bool) {
	for i, m := range f.members {
		synced, lostAt := m.Watcher.linkState()
		fresh = fresh || synced
		counts := f.counts(synced, lostAt, now)
		srcs = append(srcs, takeSource{srcKey{i, false}, m.Watcher, counts})
		if sw := f.servicesOf(m); sw != nil {
			ssynced, _ := sw.linkState()
			srcs = append(srcs, takeSource{srcKey{i, true}, sw, counts && ssynced})
		}
	}
	return srcs, fresh
}

// changeSet is one Changes call at work.
type changeSet struct {
	f     *Fleet
	v     *view
	srcs  []takeSource
	dirty map[string]bool // host keys to settle again
	emit  map[string]bool // IDs whose backends to hand out
	// routed are the IDs to say "routed" of, if they are: a new verdict,
	// or a refused claim settled to them.
	routed map[string]bool
	now    time.Time
}

// takeFrom takes one source's changes: all of its verdicts when it starts
// to count, none (and its verdicts leave) when it stops.
func (c *changeSet) takeFrom(s takeSource) {
	was := c.v.counted[s.key]
	c.v.counted[s.key] = s.counts
	chs := s.src.takeChanges(s.counts && !was)
	switch {
	case !s.counts && was:
		for id, h := range c.v.held {
			if h.src == s.key {
				c.drop(id)
			}
		}
		return
	case !s.counts:
		return
	}
	for _, ch := range chs {
		h, ok := c.v.held[ch.id]
		switch {
		case ch.v != nil && ok && h.src != s.key && h.src.before(s.key):
			c.f.warnTwins(c.f.members[h.src.member].Endpoint.Name, c.f.members[s.key.member].Endpoint.Name)
		case ch.v != nil:
			c.place(ch.id, s.key, ch.v)
		case ok && h.src == s.key:
			c.drop(ch.id)
		}
	}
}

// place makes v, from src, the verdict that counts for id.
func (c *changeSet) place(id string, src srcKey, v *contract.Verdict) {
	c.unclaim(id)
	c.v.held[id] = held{src, v}
	c.routed[id] = true
	for _, hk := range hostKeys(v.Backends) {
		c.v.claims[hk] = append(c.v.claims[hk], id)
		c.dirty[hk] = true
	}
	c.emit[id] = true
}

// drop removes id's verdict, falling back to another source that counts
// and has it (an engine reached twice).
func (c *changeSet) drop(id string) {
	from := c.v.held[id].src
	c.unclaim(id)
	delete(c.v.held, id)
	c.emit[id] = true
	for _, s := range c.srcs {
		if s.counts && s.key != from {
			if v := s.src.verdict(id); v != nil {
				c.place(id, s.key, v)
				return
			}
		}
	}
}

// unclaim takes id's claims off its hosts, which are settled again.
func (c *changeSet) unclaim(id string) {
	h, ok := c.v.held[id]
	if !ok {
		return
	}
	for _, hk := range hostKeys(h.v.Backends) {
		if ids := remove(c.v.claims[hk], id); len(ids) > 0 {
			c.v.claims[hk] = ids
		} else {
			delete(c.v.claims, hk)
		}
		c.dirty[hk] = true
	}
	delete(c.v.lost, id)
}

// settle settles the claims of every host a change touched, remembering
// what each is settled to, and logs the refusals that are new.
func (c *changeSet) settle() {
	for hk := range c.dirty {
		ids := c.v.claims[hk]
		before := c.refusedOn(hk, ids)
		for _, id := range ids {
			c.emit[id] = true
			c.clearLost(id, hk)
		}
		vs := make([]contract.Verdict, len(ids))
		for i, id := range ids {
			vs[i] = *c.v.held[id].v
		}
		lost := map[int]map[int]string{}
		c.f.tenure.Settle(vs, hk, lost, c.now)
		for i, reasons := range lost {
			id := ids[i]
			if c.v.lost[id] == nil {
				c.v.lost[id] = map[int]string{}
			}
			for j, why := range reasons {
				c.v.lost[id][j] = why
				if b := vs[i].Backends[j]; !before[refusal(id, b)] {
					c.f.log.Warn("route refused", "container", vs[i].Name, "id", contract.Short(id), "reason", cut(why, logValueMax))
				}
			}
		}
		c.noteWon(hk, ids, before)
	}
}

// noteWon marks the IDs refused on hk before that are no longer, to be
// said "routed".
func (c *changeSet) noteWon(hk string, ids []string, before map[string]bool) {
	if len(before) == 0 {
		return
	}
	now := c.refusedOn(hk, ids)
	for _, id := range ids {
		for _, b := range c.v.held[id].v.Backends {
			if r := refusal(id, b); contract.HostKey(b) == hk && before[r] && !now[r] {
				c.routed[id] = true
			}
		}
	}
}

// refusedOn lists the refusals on host hk so far, to log only new ones.
func (c *changeSet) refusedOn(hk string, ids []string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		bs := c.v.held[id].v.Backends
		for j := range c.v.lost[id] {
			if contract.HostKey(bs[j]) == hk {
				out[refusal(id, bs[j])] = true
			}
		}
	}
	return out
}

func refusal(id string, b route.Backend) string { return id + " " + b.Host + b.Path }

// clearLost forgets what settling hk refused of id.
func (c *changeSet) clearLost(id, hk string) {
	lost := c.v.lost[id]
	bs := c.v.held[id].v.Backends
	for j := range lost {
		if contract.HostKey(bs[j]) == hk {
			delete(lost, j)
		}
	}
	if len(lost) == 0 {
		delete(c.v.lost, id)
	}
}

// resolved hands out the backends of every ID a change touched, less the
// ones claims refused.
func (c *changeSet) resolved() map[string][]route.Backend {
	out := make(map[string][]route.Backend, len(c.emit))
	for id := range c.emit {
		h, ok := c.v.held[id]
		if !ok {
			out[id] = nil
			continue
		}
		lost := c.v.lost[id]
		if len(lost) == 0 {
			out[id] = h.v.Backends // shared: a verdict's backends are never modified
			continue
		}
		var kept []route.Backend
		for j, b := range h.v.Backends {
			if _, refused := lost[j]; !refused {
				kept = append(kept, b)
			}
		}
		out[id] = kept
	}
	return out
}

// hostKeys lists the host keys of bs, each once.
func hostKeys(bs []route.Backend) []string {
	var out []string
	for _, b := range bs {
		if hk := contract.HostKey(b); !slices.Contains(out, hk) {
			out = append(out, hk)
		}
	}
	return out
}

// remove deletes id from ids (order does not matter).
func remove(ids []string, id string) []string {
	if i := slices.Index(ids, id); i >= 0 {
		ids[i] = ids[len(ids)-1]
		return ids[:len(ids)-1]
	}
	return ids
}
