package docker

import "testing"

func TestIsStopSignal(t *testing.T) {
	for _, tc := range []struct {
		sig, stop string
		want      bool
	}{
		{"15", "", true}, {"9", "", true}, {"2", "", true}, {"3", "", true},
		{"1", "", false}, {"10", "", false}, {"", "", true}, {"x", "", false},
		{"28", "SIGWINCH", true}, {"28", "WINCH", true}, {"28", "28", true}, {"1", "SIGWINCH", false},
	} {
		if got := isStopSignal(tc.sig, tc.stop); got != tc.want {
			t.Errorf("isStopSignal(%q, %q) = %v", tc.sig, tc.stop, got)
		}
	}
}
