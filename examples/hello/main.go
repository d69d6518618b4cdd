// Command hello is the demo backend for dockroute: a tiny HTTP server that
// answers every request with its own hostname (the container ID in Docker),
// the port it was reached on, the Host the request was sent to, the path
// it arrived with and the protocol it was spoken, so a test or a person can
// see which replica and port served a request, whether a prefix was
// stripped on the way and how the proxy talked to it. The header
// X-Hello-Authorization says whether credentials reached it.
//
// Environment:
//
//	LISTEN         ports to serve, comma-separated (default 8080)
//	HEALTHY_AFTER  /healthz answers 503 until this long after start (e.g. 3s)
//	DRAIN          after SIGTERM keep serving this long before shutting down,
//	               as an app behind a load balancer does (e.g. 2s)
//	ABRUPT         1: exit at once on SIGTERM, dropping requests in flight,
//	               as an app without graceful shutdown does
//	IGNORE         signals to ignore, comma-separated (e.g. TERM,QUIT), as
//	               an app that survives its stop signal does
//	PROTO          http (default); h2c: also cleartext HTTP/2, as a gRPC
//	               server; https: TLS with a fresh self-signed certificate,
//	               as most containers that serve TLS themselves
//
// Subcommands, for `docker exec` and HEALTHCHECK (the image has no shell):
//
//	hello healthcheck   exit 0 if /healthz answers 200
//	hello unhealthy     make /healthz answer 503 from now on
//	hello healthy       undo that
//	hello crash         make the server exit at once with status 2, as a
//	                    crashing app does (no stop signal, no kill event)
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// unhealthyMarker is the file whose presence makes /healthz fail.
const unhealthyMarker = "/tmp/hello-unhealthy"

func main() {
	ports := strings.Split(envOr("LISTEN", "8080"), ",")
	if len(os.Args) > 1 {
		os.Exit(subcommand(os.Args[1], strings.TrimSpace(ports[0])))
	}
	healthyAfter := envDuration("HEALTHY_AFTER")
	drain := envDuration("DRAIN")
	host, _ := os.Hostname()
	ignored := ignoreSignals(os.Getenv("IGNORE"))
	var stopSignals []os.Signal
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		if !ignored[sig] {
			stopSignals = append(stopSignals, sig)
		}
	}
	crash := make(chan os.Signal, 1)
	signal.Notify(crash, syscall.SIGUSR2)
	go func() { <-crash; os.Exit(2) }() // `hello crash`
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()

	ready := time.Now().Add(healthyAfter)
	proto := envOr("PROTO", "http")
	errc := make(chan error, len(ports))
	var servers []*http.Server
	for _, p := range ports {
		p = strings.TrimSpace(p)
		srv := &http.Server{
			Addr:              ":" + p,
			Handler:           handler(host, p, ready),
			ReadHeaderTimeout: 5 * time.Second,
		}
		serve, err := server(srv, proto, host)
		if err != nil {
			slog.Error("PROTO", "err", err)
			os.Exit(2)
		}
		servers = append(servers, srv)
		go func() { errc <- serve() }()
	}
	slog.Info("hello listening", "ports", ports, "hostname", host, "proto", proto)

	select {
	case err := <-errc:
		slog.Error("listen", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	if os.Getenv("ABRUPT") == "1" {
		slog.Info("stop signal; exiting at once")
		os.Exit(0)
	}
	slog.Info("stop signal; draining", "for", drain)
	time.Sleep(drain)
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("shutdown", "err", err)
		}
	}
}

// server prepares srv to speak proto and returns the call that serves.
func server(srv *http.Server, proto, hostname string) (func() error, error) {
	switch proto {
	case "http":
		return srv.ListenAndServe, nil
	case "h2c":
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		return srv.ListenAndServe, nil
	case "https":
		cert, err := selfSigned(hostname)
		if err != nil {
			return nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		return func() error { return srv.ListenAndServeTLS("", "") }, nil
	}
	return nil, fmt.Errorf("%q: want http, h2c or https", proto)
}

// selfSigned makes a throwaway certificate for name: a container serving
// TLS itself rarely has one a proxy could verify.
func selfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ignoreSignals ignores the named signals (TERM, QUIT, ...) and returns
// them.
func ignoreSignals(names string) map[os.Signal]bool {
	ignored := map[os.Signal]bool{}
	byName := map[string]os.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1}
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(n)), "SIG")
		if n == "" {
			continue
		}
		sig, ok := byName[n]
		if !ok {
			slog.Error("IGNORE: unknown signal", "signal", n)
			os.Exit(2)
		}
		signal.Ignore(sig)
		ignored[sig] = true
	}
	return ignored
}

func handler(hostname, port string, ready time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.URL.Path == "/healthz" {
			if _, err := os.Stat(unhealthyMarker); err == nil || time.Now().Before(ready) {
				http.Error(w, "unhealthy", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
			return
		}
		// Whether credentials reached the app: a proxy doing basic auth
		// should have removed them.
		w.Header().Set("X-Hello-Authorization", map[bool]string{true: "present", false: "absent"}[r.Header.Get("Authorization") != ""])
		// Which address the proxy came from: an IPv6 one shows the proxy
		// dialled the container's IPv6 address.
		w.Header().Set("X-Hello-Client", r.RemoteAddr)
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		fmt.Fprintf(w, "hello from %s port %s host %s path %s proto %s %s\n", hostname, port, r.Host, r.URL.Path, scheme, r.Proto)
	})
}

func subcommand(cmd, port string) int {
	switch cmd {
	case "healthcheck":
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
		if err != nil {
			return 1
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 1
		}
		return 0
	case "unhealthy":
		os.MkdirAll("/tmp", 0o777)
		if err := os.WriteFile(unhealthyMarker, nil, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "healthy":
		os.Remove(unhealthyMarker)
		return 0
	case "crash":
		// PID 1 gets only the signals it handles: main handles SIGUSR2.
		if err := syscall.Kill(1, syscall.SIGUSR2); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "hello: unknown subcommand %q\n", cmd)
	return 2
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envDuration(key string) time.Duration {
	d, err := time.ParseDuration(envOr(key, "0s"))
	if err != nil {
		slog.Error("bad duration", "var", key, "err", err)
		os.Exit(2)
	}
	return d
}
