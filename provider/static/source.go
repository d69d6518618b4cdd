package static

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/watchfile"
)

// Source is a routes file kept loaded: it re-reads the file whenever its
// directory changes and keeps the last good routes when the new file is
// broken.
type Source struct {
	path    string
	log     *slog.Logger
	changed chan struct{}
	watch   *watchfile.Watcher
	read    func(string) ([]byte, error) // os.ReadFile; a seam for tests

	// loadMu serializes loads from end to end: the watcher and SIGHUP both
	// load, and a load that read the file earlier must never store its
	// routes after one that read it later.
	loadMu sync.Mutex

	mu       sync.Mutex
	backends []route.Backend
	last     []byte // the content last applied
}

// NewSource returns a source for path; call Load, then Run.
func NewSource(path string, log *slog.Logger) *Source {
	s := &Source{path: path, log: log, changed: make(chan struct{}, 1), read: os.ReadFile}
	s.watch = watchfile.New(path, 50*time.Millisecond, func() {
		if err := s.Load(); err != nil {
			s.log.Error("routes file not reloaded", "err", err)
		}
	}, log)
	return s
}

// Changed receives a value when the routes changed.
func (s *Source) Changed() <-chan struct{} { return s.changed }

// Backends returns the current static backends.
func (s *Source) Backends() []route.Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.backends)
}

// Load reads the file. On a read or syntax error the previous routes stay
// and the error is returned; bad entries are logged and skipped.
func (s *Source) Load() error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	data, err := s.read(s.path)
	if err != nil {
		return fmt.Errorf("routes file: %w", err)
	}
	s.mu.Lock()
	same := s.last != nil && string(data) == string(s.last)
	s.mu.Unlock()
	if same {
		return nil
	}
	backends, problems, err := Parse(data)
	if err != nil {
		return fmt.Errorf("routes file %s: %w; keeping the previous routes", s.path, err)
	}
	for _, p := range problems {
		s.log.Warn("routes file entry skipped", "file", s.path, "line", p.Line, "key", p.Key, "reason", p.Reason)
	}
	s.mu.Lock()
	s.backends, s.last = backends, data
	s.mu.Unlock()
	s.log.Info("routes file loaded", "file", s.path, "backends", len(backends), "skipped", len(problems))
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// Run reloads the file on every change until ctx ends, following its
// directory even when it is re-created.
func (s *Source) Run(ctx context.Context) error { return s.watch.Run(ctx) }

// Rearm sets the file's watch up again and reloads it (SIGHUP).
func (s *Source) Rearm() { s.watch.Rearm() }
