// Command dockroute turns Docker containers into live routes for an edge
// proxy: Traefik (a file-provider directory it writes atomically) or Caddy
// (its own server in Caddy's config, pushed through the admin API). See
// README.md and docs/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `dockroute routes Docker containers through an edge proxy.

Usage:
  dockroute [run] [flags]                 follow Docker and keep the proxy config current
  dockroute render [flags]                print the config for the running containers and exit
  dockroute explain [flags] [CONTAINER...] say for each container whether it is routed, or why not
  dockroute version                       print the version

Every flag can also be set as DOCKROUTE_<FLAG> in the environment (e.g.
--traefik-dir as DOCKROUTE_TRAEFIK_DIR) and as a key of the --config file
(traefik-dir: ...): the command line wins over the environment, which wins
over the file. SIGHUP forces a full resync.
The Docker engine is found through DOCKER_HOST and friends, as the docker CLI
finds it. Run "dockroute COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(realMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs one command and returns the process exit status: 0 on
// success (including a clean stop by signal), 1 on failure, 2 on misuse.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		cmd = "help"
	case len(args) > 0 && args[0] != "" && args[0][0] != '-':
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = withConfig(cmd, args, stderr, func(cfg config) error { return run(ctx, cfg, args) })
	case "render":
		err = withConfig(cmd, args, stderr, func(cfg config) error { return render(ctx, cfg, stdout) })
	case "explain":
		err = withConfig(cmd, args, stderr, func(cfg config) error { return explainCmd(ctx, cfg, stdout, stderr) })
	case "version":
		fmt.Fprintln(stdout, "dockroute", version())
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "dockroute: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errUnknownContainer):
		return 1 // the output says which
	}
	fmt.Fprintln(stderr, "dockroute:", err)
	return 1
}

// version reports the version the Go toolchain recorded: a module version
// or a pseudo-version from the VCS revision (with "+dirty" for local
// changes), or "(devel)" plus the revision when only that is known.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	v := "(devel)"
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}
