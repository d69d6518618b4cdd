package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"

	"github.com/dockroute/dockroute/cmd/dockroute/explain"
)

// errUnknownContainer makes explain exit 1 when a name it was given is
// no container; its output has said which.
var errUnknownContainer = errors.New("unknown container")

// explainCmd is `dockroute explain`: it prints, for each container, whether it is routed and if not
// why. It asks the running daemon when one answers at --metrics-addr, so
// the answer is the daemon's own, with the daemon's settings; otherwise it
// computes the answer here, with this command's settings, and says so.
func explainCmd(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if addr := explain.DaemonAddr(cfg.MetricsAddr); addr != "" {
		text, unknown, err := explain.Ask(ctx, addr, cfg.Args)
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
	p, err := bringUp(ctx, cfg, log, false, false)
	if err != nil {
		return err
	}
	defer p.fleet.Close()
	fromFile, _ := p.operator.Routes()
	text, unknown, err := explain.Report(ctx, p.fleet, p.cfg.Args, fromFile, deliveryNotes(ctx, p.cfg), nil)
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

// serveExplain answers /explain?c=NAME&c=NAME... with the daemon's own
// settings and routes file.
func (d *daemon) serveExplain(rw http.ResponseWriter, r *http.Request) {
	cfg := d.config()
	cfg.Args = r.URL.Query()["c"]
	fromFile, _ := d.operator.Routes()
	notes := deliveryNotes(r.Context(), cfg)
	if dl := d.out.Delivery(); dl != nil {
		notes = dl.Notes(notes)
	}
	var sleeping func(string) string
	if d.sleeper != nil {
		sleeping = d.sleeper.Describe
	}
	text, unknown, err := explain.Report(r.Context(), d.fleet, cfg.Args, fromFile, notes, sleeping)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadGateway)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Dockroute-Unknown", strconv.Itoa(unknown))
	io.WriteString(rw, text)
}
