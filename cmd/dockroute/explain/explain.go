// Package explain says, for each container, whether it is routed and how,
// or why not: computed from a fleet, or asked of the running daemon.
package explain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/static"
)

// Report is explain's answer for the containers named (every container
// when none is), and how many of the names are no container. fromFile are
// the routes file's routes, which win where both name a route; delivered
// says what the proxy says of a route.
func Report(ctx context.Context, fleet *docker.Fleet, names []string, fromFile []route.Backend, delivered func(route.Backend) string, sleeping func(id string) string) (string, int, error) {
	verdicts, err := fleet.Explain(ctx, names)
	if err != nil {
		return "", 0, err
	}
	var all []route.Backend
	unknown := 0
	for _, v := range verdicts {
		all = append(all, v.Backends...)
		if v.Code == contract.CodeNoContainer {
			unknown++
		}
	}
	_, overridden := static.Merge(fromFile, all)
	answers := reachability()
	annotate := func(be route.Backend) string { return delivered(be) + answers(be) }
	var b strings.Builder
	for _, v := range verdicts {
		if sleeping != nil {
			if note := sleeping(v.ID); note != "" {
				v.Notes = append(v.Notes, note)
			}
		}
		b.WriteString(Format(v, overridden, annotate))
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

// Format is one container's (or service's) verdict as explain says it:
// routed, and how, or why not. overridden are its routes the routes file
// takes; annotate adds to each route what the proxy and a dial say.
func Format(v contract.Verdict, overridden []route.Backend, annotate func(route.Backend) string) string {
	var b strings.Builder
	name := v.Name
	if v.ID != "" {
		name += " (" + v.ID[:min(12, len(v.ID))] + ")"
	}
	if v.Service {
		name = "service " + name
	}
	if v.Engine != "" {
		name += " on " + v.Engine
	}
	switch {
	case v.Routed():
		fmt.Fprintf(&b, "%s: routed\n", name)
		for _, be := range v.Backends {
			note := ""
			if be.Strip && be.Path != "" {
				note = " (prefix " + be.Path + " stripped)"
			}
			for _, o := range overridden {
				if o.Host == be.Host && o.Path == be.Path && o.Server == be.Server {
					note += " (NOT used: the routes file has a static route for " + be.Host + be.Path + ", and static routes win)"
				}
			}
			target := map[string]string{"": "http://", "https": "https://", "h2c": "h2c://"}[be.Proto] + be.Server
			if be.TCP {
				target = be.Server + " (TLS passthrough, by SNI)"
			}
			fmt.Fprintf(&b, "  %s%s -> %s%s%s\n", be.Host, be.Path, target, note, annotate(be))
		}
	case v.Code == contract.CodeInspectFailed:
		fmt.Fprintf(&b, "%s: UNKNOWN: %s\n", name, v.Reason)
	case v.Code == contract.CodeClaimConflict:
		fmt.Fprintf(&b, "%s: NOT routed: every route it asks for is held by another container, with other settings\n", name)
	case v.OptedIn:
		fmt.Fprintf(&b, "%s: NOT routed: %s\n", name, v.Reason)
	default:
		fmt.Fprintf(&b, "%s: ignored: %s\n", name, v.Reason)
	}
	for _, c := range v.Conflicts {
		fmt.Fprintf(&b, "  NOT routed: %s%s: %s\n", c.Backend.Host, c.Backend.Path, c.Reason)
	}
	for _, n := range v.Info {
		fmt.Fprintf(&b, "  chosen: %s\n", n)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// DaemonAddr is where a daemon with --metrics-addr addr answers locally:
// a wildcard listen address is reached on loopback. "" without one.
func DaemonAddr(addr string) string {
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

// Ask has the daemon answering at addr explain the containers named,
// with its own settings.
func Ask(ctx context.Context, addr string, names []string) (string, int, error) {
	q := url.Values{"c": names}
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
