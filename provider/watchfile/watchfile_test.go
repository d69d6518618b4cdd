package watchfile

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// start runs a watcher of path until the test ends; its changes arrive on
// the returned channel.
func start(t *testing.T, path string, ignore func(string) bool) (*Watcher, chan struct{}) {
	t.Helper()
	changes := make(chan struct{}, 100)
	w := New(path, 10*time.Millisecond, func() { changes <- struct{}{} }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.Ignore = ignore
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := w.Run(ctx); err != nil {
			t.Error(err)
		}
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(50 * time.Millisecond) // let it arm
	return w, changes
}

func expect(t *testing.T, changes chan struct{}, what string) {
	t.Helper()
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatalf("no change seen after %s", what)
	}
	drain(changes, 50*time.Millisecond)
}

func expectNone(t *testing.T, changes chan struct{}, what string) {
	t.Helper()
	select {
	case <-changes:
		t.Fatalf("a change was reported after %s", what)
	case <-time.After(200 * time.Millisecond):
	}
}

func drain(changes chan struct{}, quiet time.Duration) {
	for {
		select {
		case <-changes:
		case <-time.After(quiet):
			return
		}
	}
}

func TestSeesWriteRenameOverAndRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("a"), 0o644)
	_, changes := start(t, path, nil)
	os.WriteFile(path, []byte("b"), 0o644)
	expect(t, changes, "an in-place write")
	tmp := filepath.Join(dir, ".config.yaml.swp")
	os.WriteFile(tmp, []byte("c"), 0o644)
	os.Rename(tmp, path)
	expect(t, changes, "a rename over the file")
	os.WriteFile(path, []byte("d"), 0o644) // the new inode is still watched
	expect(t, changes, "a write after the rename")
	os.Remove(path)
	expect(t, changes, "a removal")
}

// The directory re-created under the watch (rm -rf dir && mkdir dir), or
// moved away and replaced: the watch must follow the path, not the old
// directory, and report the change.
func TestSurvivesDirectoryRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("a"), 0o644)
	_, changes := start(t, path, nil)

	os.RemoveAll(dir)
	os.Mkdir(dir, 0o755)
	expect(t, changes, "the directory was re-created")
	os.WriteFile(path, []byte("b"), 0o644)
	expect(t, changes, "a write in the re-created directory")

	os.Rename(dir, dir+".old")
	os.Mkdir(dir, 0o755)
	expect(t, changes, "the directory was moved away and replaced")
	os.WriteFile(path, []byte("c"), 0o644)
	expect(t, changes, "a write in the replacing directory")
	os.WriteFile(filepath.Join(dir+".old", "config.yaml"), []byte("old"), 0o644)
	expectNone(t, changes, "a write in the moved-away directory")
}

// A directory that does not exist yet is waited for.
func TestWaitsForMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	path := filepath.Join(dir, "routes.yaml")
	_, changes := start(t, path, nil)
	os.Mkdir(dir, 0o755)
	expect(t, changes, "the directory appeared")
	os.WriteFile(path, []byte("a"), 0o644)
	expect(t, changes, "a write in it")
}

// Ignored names (one's own temporary files) report nothing; Rearm reports
// a change and keeps watching.
func TestIgnoreAndRearm(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.yml")
	w, changes := start(t, path, func(name string) bool { return name == ".tmp" })
	os.WriteFile(filepath.Join(dir, ".tmp"), []byte("x"), 0o644)
	expectNone(t, changes, "a write to an ignored name")
	w.Rearm()
	expect(t, changes, "a re-arm")
	os.WriteFile(path, []byte("y"), 0o644)
	expect(t, changes, "a write after the re-arm")
}

// TestOnlyFileSeesOnlyItsFile: a watcher of one file ignores the other
// files of its directory, but not Kubernetes' swap of "..data".
func TestOnlyFileSeesOnlyItsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dockroute.yml")
	os.WriteFile(path, []byte("a"), 0o644)
	_, changes := start(t, path, OnlyFile(path))
	os.WriteFile(filepath.Join(dir, "dockroute.log"), []byte("a log line"), 0o644)
	expectNone(t, changes, "a write to another file")
	os.WriteFile(path, []byte("b"), 0o644)
	expect(t, changes, "a write to the file")
	os.Symlink(dir, filepath.Join(dir, "..data_tmp"))
	os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
	expect(t, changes, "Kubernetes' ..data swap")
}
