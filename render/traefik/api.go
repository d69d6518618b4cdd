package traefik

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// API reads back what a running Traefik loaded, through its API
// (`api: {}` in Traefik's static configuration, on its API entrypoint): a
// file Traefik never read, or read and refused, must not pass for routes
// that are served. File-provider delivery fails silently otherwise, e.g.
// with a single bind-mounted file that Traefik never sees change.
type API struct {
	base string
	hc   *http.Client
}

// NewAPI takes the API entrypoint's URL, e.g. http://127.0.0.1:8080.
func NewAPI(base string) (*API, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("traefik API address %q: want http://HOST:PORT", base)
	}
	return &API{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Timeout: 10 * time.Second}}, nil
}

// RouterStatus is one router as Traefik runs it.
type RouterStatus struct {
	Name   string   `json:"name"`
	Status string   `json:"status"` // enabled, disabled or warning
	Errors []string `json:"error"`
}

// Routers returns the routers Traefik runs whose names contain "dockroute",
// by name, following the API's pages.
func (a *API) Routers(ctx context.Context) (map[string]RouterStatus, error) {
	out := map[string]RouterStatus{}
	for page := 1; ; {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/http/routers?search=dockroute&per_page=500&page=%d", a.base, page), nil)
		if err != nil {
			return nil, err
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("traefik API: %w", err)
		}
		var rs []RouterStatus
		err = json.NewDecoder(resp.Body).Decode(&rs)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("traefik API: GET /api/http/routers: %s", resp.Status)
		}
		if err != nil {
			return nil, fmt.Errorf("traefik API: unreadable routers: %w", err)
		}
		for _, r := range rs {
			out[r.Name] = r
		}
		next, _ := strconv.Atoi(resp.Header.Get("X-Next-Page"))
		if next <= page {
			return out, nil
		}
		page = next
	}
}

// Undelivered compares the routers dockroute wrote (want, named as in the
// file: from Routers) with what Traefik runs (named as its API names
// them, "NAME@file"), and describes each one Traefik does not run
// enabled, by Traefik's name: missing, or in another state with
// Traefik's errors. They come sorted, whatever the order of want (a
// Renderer's Routers promises none), so health reads the same each time.
func Undelivered(want []string, running map[string]RouterStatus) []string {
	var out []string
	for _, n := range want {
		n += "@file"
		r, ok := running[n]
		switch {
		case !ok:
			out = append(out, n+": not loaded")
		case r.Status != "enabled":
			out = append(out, fmt.Sprintf("%s: %s %s", n, r.Status, strings.Join(r.Errors, "; ")))
		}
	}
	slices.Sort(out)
	return out
}
