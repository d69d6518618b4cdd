// Command hello is the demo backend for dockroute: a tiny HTTP server that
// answers every request with its own hostname (the container ID in Docker),
// the Host the request was sent to and the path it arrived with, so a test or
// a person can see which replica served a request and whether a prefix was
// stripped on the way.
//
// It listens on every port named in $LISTEN (comma-separated, default
// "8080"), so one container can stand in for an app serving several ports.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ports := strings.Split(envOr("LISTEN", "8080"), ",")
	host, _ := os.Hostname()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, len(ports))
	var servers []*http.Server
	for _, p := range ports {
		p = strings.TrimSpace(p)
		srv := &http.Server{
			Addr:              ":" + p,
			Handler:           handler(host, p),
			ReadHeaderTimeout: 5 * time.Second,
		}
		servers = append(servers, srv)
		go func() { errc <- srv.ListenAndServe() }()
	}
	slog.Info("hello listening", "ports", ports, "hostname", host)

	select {
	case err := <-errc:
		slog.Error("listen", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	// Finish in-flight requests, as a well-behaved app does during the stop
	// grace period.
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("shutdown", "err", err)
		}
	}
}

func handler(hostname, port string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		fmt.Fprintf(w, "hello from %s port %s host %s path %s\n", hostname, port, r.Host, r.URL.Path)
	})
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
