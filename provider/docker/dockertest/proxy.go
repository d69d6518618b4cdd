package dockertest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// Proxy is a Docker API proxy on a unix socket in front of the real engine.
// Tests point DOCKER_HOST at it and Stop it to make Docker vanish (every
// open connection, the event stream included, is cut) and Start it again to
// bring Docker back at the same address.
type Proxy struct {
	Socket string
	// Allow, when set, decides which requests pass; others get 403.
	Allow func(*http.Request) bool
	// Hook, when set, may answer a request itself (returning true) instead
	// of passing it on.
	Hook func(http.ResponseWriter, *http.Request) bool

	srv    *http.Server
	frozen enginetest.Gate
}

// NewProxy returns a stopped proxy whose socket lives in a test directory.
func NewProxy(t testing.TB) *Proxy {
	p := &Proxy{Socket: filepath.Join(t.TempDir(), "docker.sock")}
	t.Cleanup(p.Stop)
	return p
}

// Host is the DOCKER_HOST value that reaches the proxy.
func (p *Proxy) Host() string { return "unix://" + p.Socket }

// Start begins serving.
func (p *Proxy) Start(t testing.TB) {
	t.Helper()
	engine := engineSocket()
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "docker"})
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", engine)
		}},
		FlushInterval: -1, // stream /events as it comes
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.frozen.Wait(r.Context()) != nil {
			return
		}
		w = &freezable{ResponseWriter: w, p: p, ctx: r.Context()}
		if p.Allow != nil && !p.Allow(r) {
			http.Error(w, `{"message":"forbidden by test proxy"}`, http.StatusForbidden)
			return
		}
		if p.Hook != nil && p.Hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	})
	os.Remove(p.Socket)
	l, err := net.Listen("unix", p.Socket)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.srv = &http.Server{Handler: handler}
	go func() {
		if err := p.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("proxy: %v", err)
		}
	}()
}

// Freeze makes the engine look SIGSTOPped: connections stay open, new
// requests hang, and open streams (events) deliver nothing, until Thaw.
func (p *Proxy) Freeze() { p.frozen.Freeze() }

// Thaw undoes Freeze: everything held goes through.
func (p *Proxy) Thaw() { p.frozen.Thaw() }

// freezable holds every write of an answer while the proxy is frozen.
type freezable struct {
	http.ResponseWriter
	p   *Proxy
	ctx context.Context
}

func (f *freezable) Write(b []byte) (int, error) {
	if err := f.p.frozen.Wait(f.ctx); err != nil {
		return 0, err
	}
	return f.ResponseWriter.Write(b)
}

func (f *freezable) Flush() {
	if f.p.frozen.Wait(f.ctx) == nil {
		http.NewResponseController(f.ResponseWriter).Flush()
	}
}

// Unwrap lets the reverse proxy flush the stream through the wrapper.
func (f *freezable) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// Stop closes the socket and every connection through it.
func (p *Proxy) Stop() {
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

// engineSocket is the real engine's socket, from DOCKER_HOST or the default.
func engineSocket() string {
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		return h
	}
	return "/var/run/docker.sock"
}
