package gctune

import "testing"

// TestGCPercent: small heaps keep Go's default; the headroom never falls
// below gcFloor, nor below gcShare of a large live heap.
func TestGCPercent(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100}, {1 * mb, 100}, {8 * mb, 100}, {10 * mb, 80}, {16 * mb, 50}, {20 * mb, 40}, {23 * mb, 40}, {500 * mb, 40},
	} {
		if got := gcPercent(tc.live); got != tc.want {
			t.Errorf("live %d MB: GOGC %d, want %d", tc.live/mb, got, tc.want)
		}
	}
}
