package traefik

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// FilePublisher writes rendered configs to one file in Traefik's watched
// directory.
type FilePublisher struct {
	Dir  string
	Name string // e.g. "dockroute.yml"; must end in .yml or .yaml for Traefik to read it
	// Mode is the file's permissions; 0 means 0644, as Traefik may run as
	// another user. A file holding secrets (basic-auth hashes) is written
	// with a narrower mode by its caller.
	Mode fs.FileMode
}

// Path is the file the publisher writes.
func (p FilePublisher) Path() string { return filepath.Join(p.Dir, p.Name) }

// Publish replaces the file with data so that a reader (Traefik) sees either
// the old file or the new one, never a partial one. It writes nothing when
// the file already holds data, so Traefik is not woken for a no-op. It
// reports whether it wrote.
//
// The temporary file is created in TempDir, a directory inside the one
// Traefik watches (rename is atomic only within a file system), and named
// ".dockroute.yml.tmp-*": Traefik's file provider reads only names ending
// in .yml, .yaml or .toml, so it never loads a half-written temporary
// file. Not beside the file itself: Traefik watches only the top
// directory, and creating, writing and closing a file there were events
// that had it load the old configuration once more before the rename —
// and with its providersThrottleDuration (2 s by default) that load took
// the slot, so the new routes waited out the throttle (measured: a new
// router enabled 2.1 s after its container's start event).
//
// Nothing is fsynced. What the file says is which running containers serve
// which hosts; a crash of the machine does not keep those containers (they
// come back at other addresses, if at all), and dockroute writes the file
// anew once it has synced after the restart, so a copy on disk that
// survived the crash would be stale at best. A dockroute that crashes
// alone loses nothing: the kernel holds the file. Waiting for the disk
// cost 1–2 ms of every publish here, and up to 0.4 s whenever the disk
// stalled, on the path of every route change.
func (p FilePublisher) Publish(data []byte) (bool, error) {
	same, err := p.holds(data)
	if err != nil {
		return false, err
	}
	if same {
		return false, nil
	}
	if err := p.WriteFrom(bytes.NewReader(data)); err != nil {
		return false, err
	}
	return true, nil
}

// WriteFrom replaces the file, as Publish does, with what src writes,
// without comparing it first: for a renderer that knows its output
// changed, and writes it straight into the file rather than into a copy
// of the whole in memory first.
func (p FilePublisher) WriteFrom(src io.WriterTo) error {
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	mode := p.Mode
	if mode == 0 {
		mode = 0o644
	}
	return writeAtomic(p.Dir, p.Name, mode, src)
}

// Version identifies one version of the file: its inode, size and
// modification time. A rewrite by anyone (a rename over it, an edit in
// place) gives another; the zero Version is no file.
type Version struct {
	dev, ino uint64
	size     int64
	mtime    int64 // nanoseconds since the epoch
}

// Version returns the file's current version.
func (p FilePublisher) Version() (Version, error) {
	fi, err := os.Stat(p.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return Version{}, nil
	}
	if err != nil {
		return Version{}, err
	}
	v := Version{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v.dev, v.ino = uint64(st.Dev), st.Ino
	}
	return v, nil
}

// holds tells whether the file already holds data. A file of another size
// is not read, and one of the same size is compared a block at a time up
// to the first difference: reading the whole file into memory to find out
// was a tenth of a one-container change at 10,000 routes, and its garbage.
func (p FilePublisher) holds(data []byte) (bool, error) {
	path := p.Path()
	f, err := openRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(data)) {
		return false, nil // a file that cannot be stat'ed is rewritten
	}
	buf := make([]byte, 64<<10)
	for rest := data; ; {
		n, err := io.ReadFull(f, buf[:min(len(buf), len(rest)+1)])
		if !bytes.Equal(buf[:n], rest[:min(n, len(rest))]) || n > len(rest) {
			return false, nil
		}
		rest = rest[n:]
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return len(rest) == 0, nil
		case err != nil:
			return false, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// openRegular opens the file at path for reading, refusing anything but a
// regular file. It never blocks: opened plainly, a FIFO put at the output
// path (by mistake, or by a tenant with a shared volume) waits for a
// writer forever, and every later publish with it, silently.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(path, fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkReplaceable refuses to rename over anything but a regular file or a
// symbolic link at path (a rename replaces the link, not its target).
func checkReplaceable(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0 {
		return nil // a missing file is written; another failure shows at the rename
	}
	return notRegular(path, fi.Mode())
}

func notRegular(path string, m fs.FileMode) error {
	kind := "not a regular file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s is %s, not a regular file: dockroute will not replace it; remove it, or point --traefik-dir/--traefik-file elsewhere", path, kind)
}

// TempDir is the directory, inside the published one, where temporary
// files are written; it is created once and left in place.
const TempDir = ".dockroute-tmp"

// tempPrefix begins the names of the publisher's temporary files.
func (p FilePublisher) tempPrefix() string { return "." + p.Name + ".tmp-" }

// IsTemp tells whether name (a base name) is one of the publisher's
// temporary files, or their directory.
func (p FilePublisher) IsTemp(name string) bool {
	return name == TempDir || strings.HasPrefix(name, p.tempPrefix())
}

// RemoveTemps deletes temporary files a crash left in the directory (or,
// from before TempDir, beside the file), and only those: nothing but the
// publisher's own name pattern is touched.
func (p FilePublisher) RemoveTemps() (removed []string, err error) {
	entries, err := os.ReadDir(p.Dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	remove := func(dir string, entries []os.DirEntry) {
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), p.tempPrefix()) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, e.Name())
		}
	}
	remove(p.Dir, entries)
	if sub, err := os.ReadDir(filepath.Join(p.Dir, TempDir)); err == nil {
		remove(filepath.Join(p.Dir, TempDir), sub)
	}
	return removed, errors.Join(errs...)
}

// tempDir is where writeAtomic creates its temporary file: TempDir, made
// if missing, or dir itself when TempDir cannot be had (a directory the
// publisher may write files in but not create directories in, or a file
// in TempDir's place).
func tempDir(dir string) string {
	sub := filepath.Join(dir, TempDir)
	if err := os.Mkdir(sub, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
		if fi, err := os.Stat(sub); err == nil && fi.IsDir() {
			return sub
		}
	}
	return dir
}

func writeAtomic(dir, name string, mode fs.FileMode, src io.WriterTo) (err error) {
	if err := checkReplaceable(filepath.Join(dir, name)); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(tempDir(dir), "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600; Traefik may run as another user.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod temporary file: %w", err)
	}
	f := tempFile{tmp}
	if l, ok := src.(interface{ Len() int }); ok { // a bytes.Reader
		f.reserve(int64(l.Len()))
	}
	if _, err := src.WriteTo(f); err != nil {
		return fmt.Errorf("write temporary file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temporary file: %w", err)
	}
	path := filepath.Join(dir, name)
	defer holdReplaced(path)()
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}

// tempFile is the temporary file a publish writes.
type tempFile struct{ *os.File }

// reserver is a writer that can be told how many bytes are coming.
type reserver interface{ reserve(n int64) }

// reserve has the file system allocate room for n bytes at once, when it
// can (preallocate). It changes only where the bytes go, not what the
// file holds: a wrong n costs nothing but the gain.
func (f tempFile) reserve(n int64) { preallocate(f.File, n) }
