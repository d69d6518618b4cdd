package caddy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Admin is a client of Caddy's admin API, over TCP or a unix socket. It
// opens a connection per request: Caddy (2.6) replaces its admin server on
// every config load, and a kept-alive connection to the old one is reset
// under the next request.
type Admin struct {
	origin string // scheme://host used in request URLs
	unix   bool
	hc     *http.Client
	// Slow, when set, is told of every request Caddy took longer than
	// slowAfter to answer (or to fail): a Caddy that answers slowly holds
	// up every publish behind it, and the operator should hear of it.
	Slow      func(method, path string, took time.Duration, err error)
	slowAfter time.Duration
}

// requestTimeout bounds one admin request, and slowRequest is when one is
// reported as slow. A full load of 10,000 routes took Caddy 1.6 s; a
// frozen Caddy held a publish for 45 s (three tries of 30 s each), with no
// word of it.
const (
	requestTimeout = 10 * time.Second
	slowRequest    = 3 * time.Second
)

// NewAdmin accepts "http://127.0.0.1:2019", "127.0.0.1:2019", and unix
// sockets as Caddy writes them ("unix//run/caddy/admin.sock") or as a URL
// ("unix:///run/caddy/admin.sock").
func NewAdmin(addr string) (*Admin, error) {
	if path, ok := unixPath(addr); ok {
		if path == "" || path == "/" {
			return nil, fmt.Errorf("caddy admin address %q names no socket path", addr)
		}
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}
		return &Admin{origin: "http://unixsocket", unix: true, hc: &http.Client{Transport: tr, Timeout: requestTimeout}, slowAfter: slowRequest}, nil
	}
	origin := addr
	if !strings.Contains(addr, "://") {
		origin = "http://" + addr
	}
	if !strings.HasPrefix(origin, "http://") && !strings.HasPrefix(origin, "https://") {
		return nil, fmt.Errorf("caddy admin address %q: want http://HOST:PORT or unix//PATH", addr)
	}
	return &Admin{origin: strings.TrimSuffix(origin, "/"), hc: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{DisableKeepAlives: true}}, slowAfter: slowRequest}, nil
}

func unixPath(addr string) (string, bool) {
	// "unix://" first: in "unix:///run/x.sock" the path starts after it,
	// while Caddy's "unix//run/x.sock" is "unix/" and then the path.
	for _, p := range []string{"unix://", "unix/"} {
		if rest, ok := strings.CutPrefix(addr, p); ok {
			return rest, true
		}
	}
	return "", false
}

// APIError is Caddy refusing a request, with the message Caddy gave.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("caddy %s %s: %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// attempts bounds how often a request cut off before Caddy answered is
// sent. Caddy replaces its admin server after every config load, a refused
// one's rollback included, and the requests in flight on the old one end
// in EOF or a reset (seen with 2.11.9, a GET right after a refused PATCH,
// and with 2.6.2, a PATCH right after a refused one).
const attempts = 3

// again runs req until it gets an answer (nil, or Caddy's refusal as an
// *APIError), attempts times at most, pausing a little longer each time.
// A request that timed out is not sent again: Caddy is slow, not
// restarting its admin server, and asking again only waits longer.
func again(ctx context.Context, req func() error) error {
	for attempt := 1; ; attempt++ {
		err := req()
		var refused *APIError
		if err == nil || errors.As(err, &refused) || attempt == attempts || timedOut(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

// Get reads the config at path and the ETag Caddy gives it. Caddy 2.6 sends
// the ETag as an HTTP trailer (it hashes while streaming), Caddy ≥ 2.8 as a
// header; the trailer is readable once the body is. A read cut off before
// Caddy answered is safe to ask again, and is; an answer (a 404, say) is
// returned as it is.
func (a *Admin) Get(ctx context.Context, path string) (body []byte, etag string, err error) {
	err = again(ctx, func() (err error) {
		body, etag, err = a.get(ctx, path)
		return err
	})
	return body, etag, err
}

func (a *Admin) get(ctx context.Context, path string) (body []byte, etag string, err error) {
	resp, err := a.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("caddy GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", apiError(http.MethodGet, path, resp.StatusCode, body)
	}
	etag = resp.Header.Get("Etag")
	if etag == "" {
		etag = resp.Trailer.Get("Etag")
	}
	return body, etag, nil
}

// Send makes a change (POST, PUT, PATCH, DELETE) at path. With ifMatch set,
// Caddy applies it only if the config at the ETag's path is unchanged, and
// answers 412 otherwise; such a change cut off before Caddy answered is
// sent again, which is safe: if the first one was applied, the config's
// ETag moved on and Caddy answers the second with 412, which the
// publisher meets by reading again. A change without ifMatch is sent once.
func (a *Admin) Send(ctx context.Context, method, path string, body []byte, ifMatch string) error {
	if ifMatch == "" {
		return a.send(ctx, method, path, body, "")
	}
	return again(ctx, func() error { return a.send(ctx, method, path, body, ifMatch) })
}

func (a *Admin) send(ctx context.Context, method, path string, body []byte, ifMatch string) error {
	resp, err := a.do(ctx, method, path, body, ifMatch)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return apiError(method, path, resp.StatusCode, msg)
	}
	return nil
}

func (a *Admin) do(ctx context.Context, method, path string, body []byte, ifMatch string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.origin+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if a.unix {
		// Caddy's admin socket accepts only an empty Host (there is no
		// host:port for a socket); Go sends the request's Host unless the
		// URL's host is blank, the same trick Caddy's own CLI uses.
		req.URL.Host, req.Host = " ", ""
	} else {
		req.Header.Set("Origin", a.origin)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	start := time.Now()
	resp, err := a.hc.Do(req)
	if took := time.Since(start); a.Slow != nil && took > a.slowAfter {
		a.Slow(method, path, took, err)
	}
	if err != nil {
		return nil, fmt.Errorf("caddy %s %s: %w", method, path, err)
	}
	return resp, nil
}

// timedOut tells whether err is a request's deadline running out.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func apiError(method, path string, status int, body []byte) *APIError {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &APIError{Method: method, Path: path, Status: status, Message: msg}
}
