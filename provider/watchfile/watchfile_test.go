package watchfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSeesWriteRenameOverAndRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("a"), 0o644)
	changes := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Watch(ctx, path, 10*time.Millisecond, func() { changes <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatalf("no change seen after %s", what)
		}
	}
	os.WriteFile(path, []byte("b"), 0o644)
	expect("an in-place write")
	tmp := filepath.Join(dir, ".config.yaml.swp")
	os.WriteFile(tmp, []byte("c"), 0o644)
	os.Rename(tmp, path)
	expect("a rename over the file")
	os.WriteFile(path, []byte("d"), 0o644) // the new inode is still watched
	expect("a write after the rename")
	os.Remove(path)
	expect("a removal")
}

func TestMissingDirectoryFails(t *testing.T) {
	if err := Watch(context.Background(), "/no/such/dir/x.yaml", time.Millisecond, func() {}); err == nil {
		t.Fatal("watching a missing directory succeeded")
	}
}
