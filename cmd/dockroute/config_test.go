package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/cmd/dockroute/settings"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dockroute.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence: flags > DOCKROUTE_* env > config file > defaults,
// setting by setting.
func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, `
network: from-file
traefik-dir: /from/file
resync: 2m
caddy-listen: [":80", ":8080"]
traefik-tls: true
`)
	t.Setenv("DOCKROUTE_NETWORK", "from-env")
	t.Setenv("DOCKROUTE_TRAEFIK_DIR", "/from/env")
	c, err := parseConfig("run", []string{"--config", path, "--network", "from-flag"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Network != "from-flag" || c.TraefikDir != "/from/env" || c.Resync != 2*time.Minute ||
		c.CaddyListen != ":80,:8080" || !c.TraefikTLS || c.TraefikFile != "dockroute.yml" {
		t.Fatalf("precedence not honoured: %+v", c)
	}
}

// TestNoQuietWindow: --coalesce-quiet 0 is valid (publish at once), and
// so is a --coalesce-max of 0 beside it.
func TestNoQuietWindow(t *testing.T) {
	c, err := parseConfig("run", []string{"--coalesce-quiet", "0", "--coalesce-max", "0"}, io.Discard)
	if err != nil || c.Coalesce.Quiet != 0 || c.Coalesce.MaxDelay != 0 {
		t.Fatalf("--coalesce-quiet 0: %+v %v", c.Coalesce, err)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	t.Setenv("DOCKROUTE_CONFIG", writeConfig(t, "health: ignore\n"))
	c, err := parseConfig("run", nil, io.Discard)
	if err != nil || c.Health != "ignore" {
		t.Fatalf("config from DOCKROUTE_CONFIG: %+v %v", c, err)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		file string
		want string
	}{
		{args: []string{"--traefik-file", "routes.json"}, want: "must end in .yml"},
		{args: []string{"--traefik-file", "a/b.yml"}, want: "plain file name"},
		{args: []string{"--coalesce-quiet", "1s", "--coalesce-max", "10ms"}, want: "at least"},
		{args: []string{"--coalesce-quiet", "-1ms"}, want: "must not be negative"},
		{args: []string{"--log-format", "xml"}, want: "text or json"},
		{args: []string{"--health", "maybe"}, want: "require or ignore"},
		{args: []string{"--traefik-entrypoints", "web,a b"}, want: "not allowed"},
		{args: []string{"stray"}, want: "unexpected arguments"},
		{args: []string{"--pprof"}, want: "--pprof serves the profiler on --metrics-addr"},
		{env: "soon", want: "DOCKROUTE_RESYNC"},
		{args: []string{"--no-such-flag"}, want: "dockroute run: unknown flag --no-such-flag; see dockroute run -h"},
		{file: "network: x\n\nbogus: 1\n", want: `line 3: unknown key "bogus"`},
		{file: "resync: 1m\nresync-ish: 2\n", want: `line 2: unknown key "resync-ish"`},
		{file: "traefik_dir: /x\n", want: `unknown key "traefik_dir"; did you mean traefik-dir?`},
		{file: "log-level: debg\n", want: "log-level: slog: level string \"debg\": unknown name (log level: debug, info, warn or error)"},
		{file: "resync: soon\n", want: "line 1: resync"},
		{file: "network: {a: 1}\n", want: "line 1: network: want a value"},
		{file: "network: [\n", want: "config file"},
		{file: "- a\n", want: "want a mapping"},
		{file: "config: other.yaml\n", want: `unknown key "config"`},
		{file: "network: a\nhealth: ignore\nnetwork: b\n", want: `line 3: "network" is set twice (first on line 1)`},
		{args: []string{"--resync", "soon"}, want: "not a duration: write it as a number with a unit, like 30s"},
		{args: []string{"--resyncc", "1s"}, want: "unknown flag --resyncc (did you mean --resync?)"},
		{file: "resync: soon\n", want: "line 1: resync: not a duration"},
		{args: []string{"--caddy-dns", "127.0.0.1:5353"}, want: "only --output caddy"},
		{args: []string{"--output", "caddy", "--caddy-dns", "127.0.0.1"}, want: "want PORT (on loopback) or HOST:PORT"},
		{args: []string{"--output", "caddy", "--caddy-dns", "0.0.0.0:5353"}, want: "--caddy-dns-advertise"},
		{args: []string{"--output", "caddy", "--caddy-dns", ":5353", "--caddy-dns-advertise", "dockroute"}, want: "--caddy-dns-advertise \"dockroute\": want HOST:PORT"},
		{args: []string{"--output", "caddy", "--caddy-dns", "127.0.0.1:5353", "--caddy-dns-refresh", "0s"}, want: "must be positive"},
	} {
		t.Run(strings.Join(tc.args, " ")+tc.env+tc.file, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("DOCKROUTE_RESYNC", tc.env)
			}
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			var out strings.Builder
			if _, err := parseConfig("run", args, &out); err == nil || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("err=%v output %q, want a usage error saying %q", err, out.String(), tc.want)
			}
		})
	}
}

func TestChangedKeys(t *testing.T) {
	a, _ := parseConfig("run", []string{"--network", "a"}, io.Discard)
	b, _ := parseConfig("run", []string{"--network", "b", "--traefik-dir", "x"}, io.Discard)
	if got := changedKeys(a, b); strings.Join(got, ",") != "network,traefik-dir" {
		t.Fatalf("changedKeys = %v", got)
	}
}

func TestWithLiveTakesOnlyLiveSettings(t *testing.T) {
	prev, _ := parseConfig("run", []string{"--network", "a", "--traefik-dir", "x", "--resync", "1m"}, io.Discard)
	next, _ := parseConfig("run", []string{"--network", "b", "--traefik-dir", "y", "--resync", "2m", "--log-level", "debug"}, io.Discard)
	got := withLive(prev, next)
	if got.Network != "b" || got.LogLevel.String() != "DEBUG" || got.TraefikDir != "x" || got.Resync != time.Minute {
		t.Fatalf("withLive = %+v", got)
	}
	if keys := changedKeys(prev, got); strings.Join(keys, ",") != "log-level,network" {
		t.Fatalf("changed %v", keys)
	}
}

// FuzzConfigFile: whatever the config file holds, applying it returns an
// error or sets flags, and never panics. Seeds live in
// testdata/fuzz/FuzzConfigFile.
func FuzzConfigFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var c config
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.flags(fs)
		if err := settings.ApplyYAML(fs, "fuzz.yaml", data, map[string]bool{}, map[string]int{}); err != nil && !strings.Contains(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// TestCLIHelpAndErrors: help exits 0 and a command's help lists only its
// flags; a mistake is one line with the fix, not the whole flag list.
func TestCLIHelpAndErrors(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := realMain(context.Background(), args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	for _, h := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		if code, out, _ := run(h...); code != 0 || !strings.Contains(out, "dockroute explain") {
			t.Errorf("%v: exit %d, output %q", h, code, out)
		}
	}
	code, _, help := run("explain", "-h")
	if code != 0 || !strings.Contains(help, "--traefik-api") || strings.Contains(help, "--resync") || strings.Contains(help, "--coalesce") {
		t.Errorf("explain -h: exit %d, lists:\n%s", code, help)
	}
	if _, _, help := run("run", "-h"); !strings.Contains(help, "--resync duration") {
		t.Errorf("run -h does not list --resync with its type:\n%s", help)
	}
	code, _, msg := run("run", "--helth", "ignore")
	if code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "did you mean --health?") {
		t.Errorf("a misspelt flag: exit %d, %q", code, msg)
	}
}

// TestJSONLogs: durations carry their unit, routes are objects, and a huge
// value (a tenant's 1 MB label) is cut, saying its length.
func TestJSONLogs(t *testing.T) {
	var out strings.Builder
	c, _ := parseConfig("run", []string{"--log-format", "json"}, io.Discard)
	log := c.logger(&out, slog.LevelInfo)
	log.Info("published", "took", 1500*time.Microsecond, "reason", strings.Repeat("x", 1<<20))
	line := out.String()
	if !strings.Contains(line, `"took":"1.5ms"`) {
		t.Errorf("duration without unit: %s", line[:min(len(line), 200)])
	}
	if len(line) > 2000 || !strings.Contains(line, "(1048576 bytes)") {
		t.Errorf("a 1 MB value made a %d-byte line", len(line))
	}
}

// TestFlagsDocumented: every flag has its row in the flag table of
// docs/configuration.md, with its environment variable.
func TestFlagsDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	var c config
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c.flags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		row := fmt.Sprintf("| `--%s` | `%s` |", f.Name, settings.EnvName(envPrefix, f.Name))
		if !strings.Contains(string(readme), row) {
			t.Errorf("docs/configuration.md's flag table has no row starting %q", row)
		}
	})
}

// TestDNSListensOnLoopback: a port alone is loopback; an address named is
// kept; Caddy is told the advertised address, else the one listened on.
func TestDNSListensOnLoopback(t *testing.T) {
	for in, want := range map[string]string{"1053": "127.0.0.1:1053", ":1053": "127.0.0.1:1053", "10.0.0.2:53": "10.0.0.2:53", "0.0.0.0:1053": "0.0.0.0:1053"} {
		if got := (config{CaddyDNS: in}).dnsListen(); got != want {
			t.Errorf("--caddy-dns %s listens on %s, want %s", in, got, want)
		}
	}
	if got := (config{CaddyDNS: ":1053"}).caddyLookup().Resolver; got != "udp/127.0.0.1:1053" {
		t.Errorf("Caddy asks %s", got)
	}
}

// TestMisspeltEnvIsNamed: a DOCKROUTE_ variable close to a setting's is
// named with the one meant; one far from every setting is left alone.
func TestMisspeltEnvIsNamed(t *testing.T) {
	var c config
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c.flags(fs)
	got := settings.MisspeltEnv(fs, envPrefix, []string{"DOCKROUTE_LOGLEVEL=debug", "DOCKROUTE_SKIP_DOCKER=1", "DOCKROUTE_RESYNC=1m", "HOME=/root"})
	if want := []string{"DOCKROUTE_LOGLEVEL is not a setting and is ignored; did you mean DOCKROUTE_LOG_LEVEL?"}; !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}

// TestMetricsDocumented: every metric dockroute registers has its row in
// docs/operations.md's table.
func TestMetricsDocumented(t *testing.T) {
	src, err := os.ReadFile("metrics/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`"(dockroute_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(names) < 10 {
		t.Fatalf("found %d metric names in metrics.go: the pattern no longer finds them", len(names))
	}
	for _, m := range names {
		if !strings.Contains(string(doc), "| `"+m[1]) {
			t.Errorf("docs/operations.md's metrics table has no row for %s", m[1])
		}
	}
}

// TestDNSAuto: --caddy-dns auto (the default) answers Caddy's lookups only
// beside a Caddy on this host (admin API on loopback), on the port run
// bound; plain hosts are looked up where nothing needs them written.
func TestDNSAuto(t *testing.T) {
	for admin, on := range map[string]bool{
		"http://127.0.0.1:2019": true, "http://localhost:2019": true, "http://[::1]:2019": true,
		"http://caddy:2019": false, "http://10.0.0.5:2019": false, "unix//run/caddy/admin.sock": false,
	} {
		c := config{Output: "caddy", CaddyDNS: dnsAuto, CaddyAdmin: admin, CaddyDNSHosts: true}
		if c.dnsOn() != on || c.looksUpHosts() != on {
			t.Errorf("admin %s: lookups %v, plain hosts %v; want %v", admin, c.dnsOn(), c.looksUpHosts(), on)
		}
	}
	c := config{Output: "caddy", CaddyDNS: dnsAuto, CaddyAdmin: "http://127.0.0.1:2019", CaddyDNSHosts: true, CaddyDNSRefresh: time.Second}
	if c.dnsListen() != "127.0.0.1:0" || c.caddyLookup() != nil {
		t.Errorf("auto before run bound a port: listens on %s, lookup %+v", c.dnsListen(), c.caddyLookup())
	}
	c = c.withDNS("127.0.0.1:5353").withResponder("127.0.0.1:7000", "tok")
	if l := c.caddyLookup(); l == nil || l.Resolver != "udp/127.0.0.1:5353" || l.Hosts != "127.0.0.1:7000" {
		t.Errorf("once bound: %+v", l)
	}
	if c.caddyOptions().OnDemand != nil {
		t.Error("on-demand TLS without --caddy-tls")
	}
	c.CaddyTLS, c.CaddyTLSIssuer, c.CaddyTLSAllow = true, "internal", "A.example.com, *.b.example.com"
	o := c.caddyOptions()
	if o.Lookup.Hosts == "" || o.OnDemand == nil || o.OnDemand.Ask != "http://127.0.0.1:7000/tls-ask/tok" || o.OnDemand.Issuer != "internal" ||
		!slices.Equal(o.OnDemand.Allow, []string{"a.example.com", "*.b.example.com"}) {
		t.Errorf("with --caddy-tls, plain hosts are looked up and get certificates on demand: lookup %+v, on demand %+v", o.Lookup, o.OnDemand)
	}
	c.CaddyDNSHosts, c.responder = false, "" // as a reload parses it
	if c = c.withResponder("127.0.0.1:7000", "tok"); c.caddyOptions().OnDemand != nil {
		t.Error("on-demand TLS with every host written")
	}
	for _, off := range []config{{Output: "caddy", CaddyDNS: dnsOff, CaddyAdmin: "http://127.0.0.1:2019"}, {Output: "traefik", CaddyDNS: dnsAuto, CaddyAdmin: "http://127.0.0.1:2019"}} {
		if off.dnsOn() || off.validateDNS() != nil {
			t.Errorf("%+v: lookups on (%v)", off, off.validateDNS())
		}
	}
}
