package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	t.Setenv("DOCKROUTE_TRAEFIK_DIR", "/from/env")
	t.Setenv("DOCKROUTE_NETWORK", "envnet")
	t.Setenv("DOCKROUTE_RESYNC", "1m")
	c, err := parseConfig("run", []string{"--network", "flagnet"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Network != "flagnet" || c.TraefikDir != "/from/env" || c.Resync != time.Minute || c.TraefikFile != "dockroute.yml" {
		t.Fatalf("flag > env > default not honoured: %+v", c)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{args: []string{"--traefik-file", "routes.json"}, want: "must end in .yml"},
		{args: []string{"--traefik-file", "a/b.yml"}, want: "plain file name"},
		{args: []string{"--coalesce-quiet", "1s", "--coalesce-max", "10ms"}, want: "at least"},
		{args: []string{"--log-format", "xml"}, want: "text or json"},
		{args: []string{"stray"}, want: "unexpected arguments"},
		{env: "soon", want: "DOCKROUTE_RESYNC"},
		{args: []string{"--no-such-flag"}, want: "not defined"},
	} {
		t.Run(strings.Join(tc.args, " ")+tc.env, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("DOCKROUTE_RESYNC", tc.env)
			}
			var out strings.Builder
			if _, err := parseConfig("run", tc.args, &out); err == nil || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("err=%v output %q, want a usage error saying %q", err, out.String(), tc.want)
			}
		})
	}
}
