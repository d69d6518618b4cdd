package main

import (
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/dockroute/dockroute/cmd/dockroute/settings"
)

// Every command accepts every setting (one config file serves them all),
// but its help lists only the ones it uses.
var (
	commonFlags = []string{"config", "routes-file", "middlewares-file", "auth-file", "docker-host", "swarm", "network", "filter", "health", "log-level", "log-format"}
	renderFlags = []string{"output", "upstream-insecure", "traefik-entrypoints", "traefik-tls", "traefik-certresolver", "traefik-redirect",
		"caddy-server", "caddy-listen", "caddy-tls", "caddy-no-redirect", "caddy-tls-issuer", "caddy-tls-allow"}
	commandFlags = map[string][]string{
		"render":  slices.Concat(commonFlags, renderFlags),
		"explain": slices.Concat(commonFlags, renderFlags, []string{"metrics-addr", "traefik-api", "caddy-admin"}),
	}
	commandSummary = map[string]string{
		"run":     "Follow Docker and keep the proxy's config current",
		"render":  "Print the config for the running containers and exit",
		"explain": "Say for each container whether it is routed, or why not",
	}
)

// usesFlag tells whether cmd uses the flag (run uses them all).
func usesFlag(cmd, name string) bool {
	names, ok := commandFlags[cmd]
	return !ok || slices.Contains(names, name)
}

// printUsage writes cmd's help: its flags, their defaults and variables.
func printUsage(w io.Writer, cmd string, fs *flag.FlagSet) {
	args := "[flags]"
	if cmd == "explain" {
		args = "[flags] [CONTAINER...]"
	}
	fmt.Fprintf(w, "Usage: dockroute %s %s\n\n%s.\n\nFlags (each also DOCKROUTE_<FLAG> in the environment and a key of the --config file):\n", cmd, args, commandSummary[cmd])
	fs.VisitAll(func(f *flag.Flag) {
		if !usesFlag(cmd, f.Name) {
			return
		}
		kind, usage := flag.UnquoteUsage(f)
		if _, ok := f.Value.(settings.DurationValue); ok {
			kind = "duration"
		} else if f.Name == "log-level" {
			kind = "level"
		}
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
