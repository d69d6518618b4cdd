// Package watchfile tells when a file may have changed. It watches the
// file's directory, not the file: editors save by writing a new file and
// renaming it over the old one, and Kubernetes swaps a "..data" symlink in
// the directory, and a watch on the file itself misses both (it follows the
// old inode, which is gone).
//
// A directory watch ends silently when the directory itself goes away
// (`rm -rf dir && mkdir dir`, a volume re-mounted): the kernel drops it and
// nothing is ever seen again. So a Watcher notices its directory being
// removed or moved, says so, and re-arms on the new directory as soon as
// one exists at the path; it also waits for a directory that does not
// exist yet instead of failing.
package watchfile

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// rearmPoll is how often a missing directory is looked for.
const rearmPoll = 250 * time.Millisecond

// Watcher calls OnChange after any change in the directory of Path, once
// per burst (after Debounce without further events). Callers re-read the
// file and compare: a call is a hint, not a verdict.
type Watcher struct {
	Path     string
	Debounce time.Duration
	OnChange func()
	// Ignore, when set, drops events for names (base names in the
	// directory) it returns true for, e.g. one's own temporary files.
	Ignore func(name string) bool
	Log    *slog.Logger

	rearm chan struct{}
}

// New returns a watcher; start it with Run.
func New(path string, debounce time.Duration, onChange func(), log *slog.Logger) *Watcher {
	return &Watcher{Path: path, Debounce: debounce, OnChange: onChange, Log: log, rearm: make(chan struct{}, 1)}
}

// OnlyFile is an Ignore for a watcher of one file: it drops every name in
// the directory but the file's own, and Kubernetes' ("..data", the
// "..2026_…" directories its ConfigMaps swap in). A config file beside a
// log file was reloaded on every log line, 19 errors a second while the
// config was invalid.
func OnlyFile(path string) func(name string) bool {
	base := filepath.Base(path)
	return func(name string) bool { return name != base && !strings.HasPrefix(name, "..") }
}

// Rearm drops the directory watch and sets it up again, then reports a
// change (SIGHUP: whatever happened to the directory, watch what is there
// now).
func (w *Watcher) Rearm() {
	select {
	case w.rearm <- struct{}{}:
	default:
	}
}

// Run watches until ctx ends. It fails only when the system cannot watch
// at all (no inotify instances left).
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	dir := filepath.Dir(w.Path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := w.arm(ctx, fw, dir, false)
	for armed {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				w.Log.Warn("watched directory was removed or moved; watching for a new one at the same path", "dir", dir, "file", w.Path)
				armed = w.arm(ctx, fw, dir, true)
				continue
			}
			if w.Ignore != nil && w.Ignore(filepath.Base(ev.Name)) {
				continue
			}
			timer.Reset(w.Debounce)
		case _, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			// An overflow means events were lost: treat it as a change.
			timer.Reset(w.Debounce)
		case <-w.rearm:
			armed = w.arm(ctx, fw, dir, true)
		case <-timer.C:
			w.OnChange()
		}
	}
	return nil
}

// arm (re)adds the directory watch, waiting for the directory to exist,
// and reports a change when it was re-armed or had to wait, as the
// directory's contents may be new. It returns false when ctx ended first.
func (w *Watcher) arm(ctx context.Context, fw *fsnotify.Watcher, dir string, again bool) bool {
	if again {
		if err := fw.Remove(dir); err != nil && !errors.Is(err, fsnotify.ErrNonExistentWatch) {
			w.Log.Debug("dropping the old directory watch", "dir", dir, "err", err)
		}
	}
	waited := false
	for ; ; waited = true {
		err := fw.Add(dir)
		if err == nil {
			break
		}
		if !waited {
			w.Log.Warn("cannot watch the directory yet; trying again until it exists", "dir", dir, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(rearmPoll):
		}
	}
	if again || waited {
		w.Log.Info("watching the directory", "dir", dir)
		w.OnChange()
	}
	return true
}
