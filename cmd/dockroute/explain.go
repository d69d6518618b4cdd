package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/static"
)

// errUnknownContainer makes explain exit 1 when a name it was given is
// no container; its output has said which.
var errUnknownContainer = errors.New("unknown container")

// explain prints, for each container, whether it is routed and if not
// why. It asks the running daemon when one answers at --metrics-addr, so
// the answer is the daemon's own, with the daemon's settings; otherwise it
// computes the answer here, with this command's settings, and says so.
func explain(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if addr := daemonAddr(cfg.MetricsAddr); addr != "" {
		text, unknown, err := askDaemon(ctx, addr, cfg.Args)
		if err == nil {
			fmt.Fprintf(stderr, "explain: answered by the running dockroute at %s, with its settings\n", addr)
			io.WriteString(stdout, text)
			return unknownErr(unknown)
		}
		fmt.Fprintf(stderr, "explain: computed here with this command's settings: no dockroute answered at %s (%v)\n", addr, err)
	} else {
		fmt.Fprintln(stderr, "explain: computed here with this command's settings (set --metrics-addr to ask the running dockroute)")
	}
	log := cfg.logger(os.Stderr, max(cfg.LogLevel, slog.LevelError))
	cfg, src, err := withOperatorFiles(cfg, log)
	if err != nil {
		return err
	}
	fleet, cfg, _, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer fleet.Close()
	var fromFile []route.Backend
	if src != nil {
		fromFile = src.Value()
	}
	text, unknown, err := explainReport(ctx, fleet, cfg, fromFile)
	if err != nil {
		return err
	}
	io.WriteString(stdout, text)
	return unknownErr(unknown)
}

func unknownErr(unknown int) error {
	if unknown > 0 {
		return errUnknownContainer
	}
	return nil
}

// explainReport is explain's answer for cfg.Args (every container when
// none is named) and how many of the names are no container.
func explainReport(ctx context.Context, fleet *docker.Fleet, cfg config, fromFile []route.Backend) (string, int, error) {
	verdicts, err := fleet.Explain(ctx, cfg.Args)
	if err != nil {
		return "", 0, err
	}
	var all []route.Backend
	unknown := 0
	for _, v := range verdicts {
		all = append(all, v.Backends...)
		if v.Code == docker.CodeNoContainer {
			unknown++
		}
	}
	_, overridden := static.Merge(fromFile, all)
	delivered, answers := deliveryNotes(ctx, cfg), reachability()
	annotate := func(be route.Backend) string { return delivered(be) + answers(be) }
	var b strings.Builder
	for _, v := range verdicts {
		b.WriteString(formatVerdict(v, overridden, annotate))
	}
	return b.String(), unknown, nil
}

// Reachability: explain dials each routed backend, so that an app that
// listens on another port, or on 127.0.0.1 only, is named there rather
// than found as a 502 after Caddy's 5 s of retries. Bounded: each address
// once per explain, maxDials addresses at most, dialTimeout each.
const (
	dialTimeout = 300 * time.Millisecond
	maxDials    = 50
)

// reachability returns, for explain, what a dial of a route's backend
// says: nothing when it answers (or was not tried), else what is wrong.
func reachability() func(route.Backend) string {
	seen := map[string]string{}
	return func(be route.Backend) string {
		if note, ok := seen[be.Server]; ok {
			return note
		}
		if len(seen) >= maxDials {
			return ""
		}
		note := dialNote(be.Server)
		seen[be.Server] = note
		return note
	}
}

// dialNote dials addr and says what is wrong ("" when something accepts
// the connection).
func dialNote(addr string) string {
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	switch {
	case err == nil:
		conn.Close()
		return ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf(" (NOTHING LISTENS on %s: is the app listening on another port, or on 127.0.0.1 only? It must listen on 0.0.0.0 or the container's address)", addr)
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Sprintf(" (%s does not answer within %v, from where dockroute runs: a firewall, or a network it does not share with the container?)", addr, dialTimeout)
		}
		return fmt.Sprintf(" (dialing %s from where dockroute runs: %v)", addr, err)
	}
}

// serveExplain answers /explain?c=NAME&c=NAME... with the daemon's own
// settings and routes file.
func (d *daemon) serveExplain(rw http.ResponseWriter, r *http.Request) {
	cfg := d.config()
	cfg.Args = r.URL.Query()["c"]
	var fromFile []route.Backend
	if d.static != nil {
		fromFile = d.static.Value()
	}
	text, unknown, err := explainReport(r.Context(), d.fleet, cfg, fromFile)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadGateway)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Dockroute-Unknown", strconv.Itoa(unknown))
	io.WriteString(rw, text)
}

// daemonAddr is where a daemon with --metrics-addr addr answers locally:
// a wildcard listen address is reached on loopback. "" without one.
func daemonAddr(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func askDaemon(ctx context.Context, addr string, names []string) (string, int, error) {
	q := neturl.Values{"c": names}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/explain?"+q.Encode(), nil)
	if err != nil {
		return "", 0, err
	}
	// Connecting must be quick: nobody listening is the common case.
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	unknown, _ := strconv.Atoi(resp.Header.Get("X-Dockroute-Unknown"))
	return string(body), unknown, nil
}
