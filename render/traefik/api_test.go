package traefik

import (
	"slices"
	"testing"
)

// TestUndeliveredNamesTraefiksRouters gives Undelivered routers named as
// the file names them, in no order (as a kept Renderer's Routers gives
// them), and wants Traefik's names back, sorted: one missing, one Traefik
// disabled with its error, none for the one it runs.
func TestUndeliveredNamesTraefiksRouters(t *testing.T) {
	running := map[string]RouterStatus{
		"b-test@file": {Status: "enabled"},
		"c-test@file": {Status: "disabled", Errors: []string{"the service does not exist"}},
		"b-test":      {Status: "enabled"}, // not dockroute's: another provider's would carry its suffix
	}
	got := Undelivered([]string{"c-test", "b-test", "a-test"}, running)
	want := []string{"a-test@file: not loaded", "c-test@file: disabled the service does not exist"}
	if !slices.Equal(got, want) {
		t.Fatalf("Undelivered gave %q, want %q", got, want)
	}
	if got := Undelivered([]string{"b-test"}, running); len(got) != 0 {
		t.Fatalf("a router Traefik runs: %q", got)
	}
}
