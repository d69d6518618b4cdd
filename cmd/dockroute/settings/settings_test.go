package settings

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func flags() (*flag.FlagSet, *string, *time.Duration) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("traefik-dir", "dynamic", "the directory")
	var d time.Duration
	Duration(fs, &d, "resync", time.Second, "how often")
	return fs, dir, &d
}

// TestLayers: the command line wins over the environment, which wins over
// the file; every error says where its value came from.
func TestLayers(t *testing.T) {
	fs, dir, d := flags()
	if err := fs.Parse([]string{"--traefik-dir", "cli"}); err != nil {
		t.Fatal(err)
	}
	given := map[string]bool{"traefik-dir": true}
	env := map[string]string{"X_TRAEFIK_DIR": "env", "X_RESYNC": "2m"}
	if err := ApplyEnv(fs, "X_", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, given); err != nil {
		t.Fatal(err)
	}
	lines := map[string]int{}
	if err := ApplyYAML(fs, "f.yml", []byte("traefik-dir: file\nresync: 5m\n"), given, lines); err != nil {
		t.Fatal(err)
	}
	if *dir != "cli" || *d != 2*time.Minute {
		t.Errorf("dir %q resync %v, want cli and 2m", *dir, *d)
	}

	fs, _, _ = flags()
	err := ApplyYAML(fs, "f.yml", []byte("traefik_dir: x\nresync: soon\n"), map[string]bool{}, map[string]int{})
	for _, want := range []string{`f.yml, line 1: unknown key "traefik_dir"; did you mean traefik-dir?`, "f.yml, line 2: resync: not a duration", "(how often)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
	err = ApplyEnv(fs, "X_", func(k string) (string, bool) { return "soon", k == "X_RESYNC" }, map[string]bool{})
	if err == nil || !strings.Contains(err.Error(), `X_RESYNC="soon": not a duration`) {
		t.Errorf("env error %v", err)
	}
}

func TestFlagError(t *testing.T) {
	fs, _, _ := flags()
	err := fs.Parse([]string{"--traefik-dri", "x"})
	if got := FlagError("dockroute run", fs, err); got != "dockroute run: unknown flag --traefik-dri (did you mean --traefik-dir?); see dockroute run -h" {
		t.Errorf("got %q", got)
	}
	if got := MisspeltEnv(fs, "X_", []string{"X_RESYNK=1s", "X_OTHER_THING=1"}); len(got) != 1 || !strings.Contains(got[0], "did you mean X_RESYNC?") {
		t.Errorf("misspelt %q", got)
	}
}
