package watchfile

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Source is an operator's file kept loaded (the routes file, the
// middlewares file): it re-reads the file whenever its directory changes,
// and keeps the last good value when the new file is broken, so a half-saved
// edit never takes anything away.
type Source[T any] struct {
	path    string
	what    string // "routes file", for messages
	parse   func([]byte) (T, error)
	log     *slog.Logger
	changed chan struct{}
	watch   *Watcher
	read    func(string) ([]byte, error) // os.ReadFile; a seam for tests

	// loadMu serializes loads from end to end: the watcher and SIGHUP both
	// load, and a load that read the file earlier must never store its
	// value after one that read it later.
	loadMu sync.Mutex

	mu    sync.Mutex
	value T
	last  []byte // the content last applied
}

// NewSource returns a source for path; call Load, then Run. parse turns
// the file into its value, logging what it skipped; an error refuses the
// file as a whole. what names the file in messages.
func NewSource[T any](path, what string, parse func([]byte) (T, error), log *slog.Logger) *Source[T] {
	s := &Source[T]{path: path, what: what, parse: parse, log: log, changed: make(chan struct{}, 1), read: os.ReadFile}
	s.watch = New(path, 50*time.Millisecond, func() {
		if err := s.Load(); err != nil {
			s.log.Error(what+" not reloaded", "err", err)
		}
	}, log)
	s.watch.Ignore = OnlyFile(path)
	return s
}

// Path is the file's path.
func (s *Source[T]) Path() string { return s.path }

// Changed receives a value when the value changed.
func (s *Source[T]) Changed() <-chan struct{} { return s.changed }

// Value returns the current value.
func (s *Source[T]) Value() T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value
}

// Load reads the file. On a read or parse error the previous value stays
// and the error is returned.
func (s *Source[T]) Load() error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	data, err := s.read(s.path)
	if err != nil {
		return fmt.Errorf("%s: %w", s.what, err)
	}
	s.mu.Lock()
	same := s.last != nil && string(data) == string(s.last)
	s.mu.Unlock()
	if same {
		return nil
	}
	v, err := s.parse(data)
	if err != nil {
		return fmt.Errorf("%s %s: %w; keeping the previous one", s.what, s.path, err)
	}
	s.mu.Lock()
	s.value, s.last = v, data
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// Run reloads the file on every change until ctx ends, following its
// directory even when it is re-created.
func (s *Source[T]) Run(ctx context.Context) error { return s.watch.Run(ctx) }

// Rearm sets the file's watch up again and reloads it (SIGHUP).
func (s *Source[T]) Rearm() { s.watch.Rearm() }
