package traefik

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func TestPublishWritesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	p := FilePublisher{Dir: filepath.Join(dir, "sub"), Name: "dockroute.yml"}
	wrote, err := p.Publish([]byte("a: 1\n"))
	if err != nil || !wrote {
		t.Fatalf("first publish: wrote=%v err=%v", wrote, err)
	}
	st1 := stat(t, p.Path())
	if st1.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 so a Traefik running as another user can read it", st1.Mode().Perm())
	}
	wrote, err = p.Publish([]byte("a: 1\n"))
	if err != nil || wrote {
		t.Fatalf("same bytes: wrote=%v err=%v; want no write", wrote, err)
	}
	if st2 := stat(t, p.Path()); st2.Sys().(*syscall.Stat_t).Ino != st1.Sys().(*syscall.Stat_t).Ino {
		t.Error("unchanged publish replaced the file")
	}
	if wrote, err = p.Publish([]byte("a: 2\n")); err != nil || !wrote {
		t.Fatalf("changed publish: wrote=%v err=%v", wrote, err)
	}
	entries, _ := os.ReadDir(p.Dir)
	if len(entries) != 2 || entries[0].Name() != TempDir || entries[1].Name() != "dockroute.yml" {
		t.Fatalf("directory holds %v, want only the config and the temporary files' directory", entries)
	}
	if temps, _ := os.ReadDir(filepath.Join(p.Dir, TempDir)); len(temps) != 0 {
		t.Fatalf("temporary files left: %v", temps)
	}
}

// TestTraefikSeesOnlyTheRename: the publish's only event in the watched
// directory is the rename (Traefik reloads on every event there, and its
// throttle then delays the load that matters). inotify, as Traefik's
// watcher uses it, records what a publish does to the directory.
func TestTraefikSeesOnlyTheRename(t *testing.T) {
	p := FilePublisher{Dir: t.TempDir(), Name: "dockroute.yml"}
	if _, err := p.Publish([]byte("a: 1\n")); err != nil { // creates TempDir: an event, once
		t.Fatal(err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(p.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish([]byte("a: 2\n")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for timeout := time.After(200 * time.Millisecond); ; {
		select {
		case ev := <-w.Events:
			got = append(got, filepath.Base(ev.Name)+" "+ev.Op.String())
			continue
		case <-timeout:
		}
		break
	}
	if len(got) != 1 || got[0] != "dockroute.yml CREATE" {
		t.Fatalf("a publish made these events in the watched directory: %v; want only the rename's CREATE", got)
	}
}

// TestPublishIsAtomic has a reader poll the file while it is rewritten with
// two large contents: every read must be one of them in full.
func TestPublishIsAtomic(t *testing.T) {
	p := FilePublisher{Dir: t.TempDir(), Name: "dockroute.yml"}
	a := bytes.Repeat([]byte("a"), 1<<20)
	b := bytes.Repeat([]byte("b"), 1<<19)
	if _, err := p.Publish(a); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var torn, reads int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := os.ReadFile(p.Path())
			reads++
			if err != nil || !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				torn++
			}
		}
	}()
	for i := range 100 {
		if _, err := p.Publish([][]byte{a, b}[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if torn > 0 {
		t.Fatalf("%d of %d reads saw a missing or partial file", torn, reads)
	}
}

func TestPublishFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The output "directory" is a regular file: every step must fail with an
	// error, not a panic.
	if _, err := (FilePublisher{Dir: blocker, Name: "x.yml"}).Publish([]byte("a")); err == nil {
		t.Fatal("publishing into a file succeeded")
	}
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPublishComparesWhatIsThere: a file of the same size but other bytes
// (anywhere, even past the first block the comparison reads) is
// rewritten; only identical contents are left alone.
func TestPublishComparesWhatIsThere(t *testing.T) {
	p := FilePublisher{Dir: t.TempDir(), Name: "dockroute.yml"}
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160 kB, several blocks
	if wrote, err := p.Publish(data); err != nil || !wrote {
		t.Fatalf("first publish: wrote=%v err=%v", wrote, err)
	}
	if wrote, err := p.Publish(data); err != nil || wrote {
		t.Fatalf("same bytes: wrote=%v err=%v", wrote, err)
	}
	for _, at := range []int{0, 70000, len(data) - 1} {
		other := bytes.Clone(data)
		other[at] = 'x'
		if wrote, err := p.Publish(other); err != nil || !wrote {
			t.Fatalf("byte %d differs: wrote=%v err=%v", at, wrote, err)
		}
		if got, _ := os.ReadFile(p.Path()); !bytes.Equal(got, other) {
			t.Fatalf("byte %d differs: the file was not replaced", at)
		}
		if wrote, _ := p.Publish(data); !wrote {
			t.Fatal("back to data: not written")
		}
	}
	if wrote, _ := p.Publish(data[:len(data)-1]); !wrote {
		t.Fatal("shorter: not written")
	}
}

// TestPublishClosesWhatItReplaces publishes many times: each publish
// holds the file it replaces open across the rename and closes it in the
// background, and none of those may stay open (a Traefik directory
// rewritten for weeks would run dockroute out of descriptors), nor may
// the file keep blocks reserved past its end.
func TestPublishClosesWhatItReplaces(t *testing.T) {
	p := FilePublisher{Dir: t.TempDir(), Name: "dockroute.yml"}
	before := openFiles(t)
	for i := range 200 {
		data := bytes.Repeat([]byte{'a' + byte(i%26)}, 1000+i*100)
		if _, err := p.Publish(data); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, p.Path()); st.Size() != int64(len(data)) || st.Sys().(*syscall.Stat_t).Blocks*512 > st.Size()+4096 {
			t.Fatalf("publish %d: %d bytes, %d blocks of 512, want %d bytes in as few blocks", i, st.Size(), st.Sys().(*syscall.Stat_t).Blocks, len(data))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for openFiles(t) > before+1 { // +1: the last replaced file may be closing still
		if time.Now().After(deadline) {
			t.Fatalf("%d files open after 200 publishes, %d before", openFiles(t), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd here to count open files: %v", err)
	}
	return len(fds)
}

// TestPublishRefusesAFIFO puts a named pipe (and a directory) at the output
// path: a publish must fail at once, naming what is there, and never block
// opening it, nor replace it.
func TestPublishRefusesAFIFO(t *testing.T) {
	for _, kind := range []string{"fifo", "dir"} {
		t.Run(kind, func(t *testing.T) {
			p := FilePublisher{Dir: t.TempDir(), Name: "dockroute.yml"}
			var err error
			if kind == "fifo" {
				err = syscall.Mkfifo(p.Path(), 0o644)
			} else {
				err = os.Mkdir(p.Path(), 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, publish := range []func() error{
				func() error { _, err := p.Publish([]byte("a: 1\n")); return err },
				func() error { return p.WriteFrom(bytes.NewReader([]byte("a: 1\n"))) },
			} {
				done := make(chan error, 1)
				go func() { done <- publish() }()
				select {
				case err := <-done:
					if err == nil || !bytes.Contains([]byte(err.Error()), []byte("not a regular file")) {
						t.Errorf("publish over a %s: %v, want an error saying it is not a regular file", kind, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("publish over a %s still blocked after 10 s", kind)
				}
			}
			if fi, err := os.Lstat(p.Path()); err != nil || fi.Mode().IsRegular() {
				t.Errorf("the %s was replaced: %v %v", kind, fi.Mode(), err)
			}
		})
	}
}
