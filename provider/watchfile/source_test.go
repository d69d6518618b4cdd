package watchfile

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Loads are serialized from read to store: a load that read the file
// before another must not store its (older) value after it. SIGHUP and
// the file watcher both load, at any moment.
func TestLoadsAreSerialized(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	write := func(content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := NewSource(path, "test file", func(b []byte) (string, error) { return string(b), nil }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	firstRead, release := make(chan struct{}), make(chan struct{})
	var reads atomic.Int32
	s.read = func(p string) ([]byte, error) {
		data, err := os.ReadFile(p)
		if reads.Add(1) == 1 {
			close(firstRead)
			<-release // the first load is slow between reading and storing
		}
		return data, err
	}

	write("old")
	var wg sync.WaitGroup
	wg.Go(func() { s.Load() }) // reads the old file, then stalls
	<-firstRead
	write("new")
	wg.Go(func() { s.Load() }) // reads the new file
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()

	if got := s.Value(); got != "new" {
		t.Fatalf("after both loads the value is %q, want the newer file's", got)
	}
}

// A file that fails to parse keeps the previous value and says why.
func TestBrokenFileKeepsValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	s := NewSource(path, "test file", func(b []byte) (string, error) {
		if string(b) == "broken" {
			return "", io.ErrUnexpectedEOF
		}
		return string(b), nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.WriteFile(path, []byte("good"), 0o644)
	if err := s.Load(); err != nil || s.Value() != "good" {
		t.Fatalf("load: %v %q", err, s.Value())
	}
	os.WriteFile(path, []byte("broken"), 0o644)
	if err := s.Load(); err == nil || s.Value() != "good" {
		t.Fatalf("broken file: err %v, value %q; want an error and the previous value", err, s.Value())
	}
}
