// Package watchfile tells when a file may have changed. It watches the
// file's directory, not the file: editors save by writing a new file and
// renaming it over the old one, and Kubernetes swaps a "..data" symlink in
// the directory, and a watch on the file itself misses both (it follows the
// old inode, which is gone).
package watchfile

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange after any change in the directory of path, once per
// burst (after debounce without further events), until ctx ends. Callers
// re-read the file and compare: an event is a hint, not a verdict. Watch
// fails only when the directory cannot be watched.
func Watch(ctx context.Context, path string, debounce time.Duration, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch directory %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer.Reset(debounce)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflow means events were lost: treat it as a change.
				timer.Reset(debounce)
			case <-timer.C:
				onChange()
			}
		}
	}()
	return nil
}
