package docker

import "github.com/dockroute/dockroute/provider/contract"

// verdictSet is a source's verdicts by ID (a container's, a service's),
// and the IDs whose verdict changed since the fleet last took them: what
// lets a Fleet settle and route only what changed (see Fleet.Changes).
// Its owner's lock guards it.
type verdictSet struct {
	// byID holds pointers: a map of 10,000 whole verdicts kept a slot of
	// the verdict's size for every place the map had room for. A verdict
	// in it is never modified, only replaced, so the fleet may hold on to
	// one it took.
	byID  map[string]*contract.Verdict
	dirty map[string]struct{}
}

func newVerdictSet() verdictSet {
	return verdictSet{byID: map[string]*contract.Verdict{}, dirty: map[string]struct{}{}}
}

func (s *verdictSet) get(id string) (contract.Verdict, bool) {
	if v, ok := s.byID[id]; ok {
		return *v, true
	}
	return contract.Verdict{}, false
}

func (s *verdictSet) put(id string, v contract.Verdict) {
	s.byID[id] = &v
	s.dirty[id] = struct{}{}
}

// remove forgets id's verdict and tells whether there was one.
func (s *verdictSet) remove(id string) bool {
	if _, ok := s.byID[id]; !ok {
		return false
	}
	delete(s.byID, id)
	s.dirty[id] = struct{}{}
	return true
}

func (s *verdictSet) len() int { return len(s.byID) }

// values copies every verdict.
func (s *verdictSet) values() []contract.Verdict {
	out := make([]contract.Verdict, 0, len(s.byID))
	for _, v := range s.byID {
		out = append(out, *v)
	}
	return out
}

// change is what became of one ID's verdict: v, or none (nil).
type change struct {
	id string
	v  *contract.Verdict
}

// take returns the changes since the last take (every verdict, with all)
// and starts over.
func (s *verdictSet) take(all bool) []change {
	var out []change
	if all {
		out = make([]change, 0, len(s.byID))
		for id, v := range s.byID {
			out = append(out, change{id, v})
		}
	} else {
		out = make([]change, 0, len(s.dirty))
		for id := range s.dirty {
			out = append(out, change{id, s.byID[id]})
		}
	}
	if len(s.dirty) > 64 {
		// A map keeps the room it grew to: after a first sync, that of
		// every container.
		s.dirty = map[string]struct{}{}
	} else {
		clear(s.dirty)
	}
	return out
}

// verdictSource is what a Fleet takes verdicts from: an engine's
// containers (Watcher) or its swarm services (ServiceWatcher).
type verdictSource interface {
	// takeChanges is take, under the source's lock.
	takeChanges(all bool) []change
	// verdict is one verdict as it is now (nil: none).
	verdict(id string) *contract.Verdict
}

func (w *Watcher) takeChanges(all bool) []change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.verdicts.take(all)
}

func (w *Watcher) verdict(id string) *contract.Verdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.verdicts.byID[id]
}

func (w *ServiceWatcher) takeChanges(all bool) []change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.verdicts.take(all)
}

func (w *ServiceWatcher) verdict(id string) *contract.Verdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.verdicts.byID[id]
}
