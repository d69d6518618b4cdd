package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Every command accepts every setting (one config file serves them all),
// but its help lists only the ones it uses.
var (
	commonFlags = []string{"config", "routes-file", "middlewares-file", "auth-file", "docker-host", "swarm", "network", "filter", "health", "log-level", "log-format"}
	renderFlags = []string{"output", "upstream-insecure", "traefik-entrypoints", "traefik-tls", "traefik-certresolver", "traefik-redirect",
		"caddy-server", "caddy-listen", "caddy-tls", "caddy-no-redirect"}
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
		if _, ok := f.Value.(durationValue); ok {
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

// flagError turns the flag package's error into one line a user can act
// on: the unknown flag with the closest known one, or the bad value.
func flagError(cmd string, fs *flag.FlagSet, err error) string {
	hint := fmt.Sprintf("see dockroute %s -h", cmd)
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		if near := closest(name, fs); near != "" {
			return fmt.Sprintf("dockroute %s: unknown flag --%s (did you mean --%s?); %s", cmd, name, near, hint)
		}
		return fmt.Sprintf("dockroute %s: unknown flag --%s; %s", cmd, name, hint)
	}
	return fmt.Sprintf("dockroute %s: %s; %s", cmd, strings.Replace(msg, "flag -", "flag --", 1), hint)
}

// closest is the known flag nearest to name (by edit distance, at most a
// third of its length), or "".
func closest(name string, fs *flag.FlagSet) string {
	best, bestD := "", len(name)/3+1
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestD || strings.HasPrefix(f.Name, name) && best == "" {
			best, bestD = f.Name, d
		}
	})
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// durationValue is a flag.Value for durations whose error says what a
// duration looks like.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration: write it as a number with a unit, like 30s, 500ms or 2m")
	}
	*v.d = d
	return nil
}

// durationVar declares a duration flag with durationValue.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(durationValue{p}, name, usage)
}
