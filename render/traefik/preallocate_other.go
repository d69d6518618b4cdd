//go:build !linux

package traefik

import "os"

// preallocate does nothing here: see preallocate_linux.go for why Linux
// does it.
func preallocate(*os.File, int64) {}
