//go:build !linux

package traefik

import "os"

// holdReplaced and preallocate do nothing here: see replace_linux.go for
// what they spare a publish on Linux. (Elsewhere, an open file may even
// stop the rename over it.)
func holdReplaced(string) (release func()) { return func() {} }

func preallocate(*os.File, int64) {}
