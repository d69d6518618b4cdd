package enginetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/versions"
)

// Handler serves the part of the Docker Engine API dockroute calls (ping,
// container list and inspect, events) from e, so the real dockroute binary,
// with the real Docker client, can be driven by it. It exists for scale
// only: 10,000 containers and event storms do not fit on the test machine's
// real engine; correctness is tested against the real one.
func Handler(e *Engine) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) { ping(e, w, r) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		m := apiPath.FindStringSubmatch(r.URL.Path)
		if m == nil {
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
			return
		}
		if v := e.versions(); versions.LessThan(m[1], v.MinAPIVersion) {
			// As Docker 25 and later refuse a client below their minimum.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"message": fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", m[1], v.MinAPIVersion)})
			return
		}
		switch {
		case m[2] == "/_ping":
			ping(e, w, r)
		case m[2] == "/version":
			v, err := e.ServerVersion(r.Context())
			answer(w, v, err)
		case m[2] == "/info":
			info, err := e.Info(r.Context())
			answer(w, info, err)
		case m[2] == "/containers/json":
			list(e, w, r)
		case m[2] == "/events":
			serveEvents(e, w, r)
		case m[3] != "":
			inspect(e, w, r, m[3])
		default:
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
		}
	})
	return mux
}

// apiPath matches a versioned API path: /v1.41/containers/json,
// /v1.41/containers/ID/json, /v1.41/events, /v1.41/_ping, /v1.41/version,
// /v1.41/info.
var apiPath = regexp.MustCompile(`^/v([0-9.]+)(/_ping|/version|/info|/containers/json|/events|/containers/([^/]+)/json)$`)

// current tells whether the engine answers in API 1.52's shapes (Docker
// 29): no top-level addresses in an inspect's network settings, and a
// health field in every list entry.
func (e *Engine) current() bool { return !versions.LessThan(e.versions().APIVersion, "1.52") }

func (e *Engine) versions() types.Version {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.Version
}

func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, v)
}

func ping(e *Engine, w http.ResponseWriter, r *http.Request) {
	if _, err := e.Ping(r.Context()); err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Api-Version", e.versions().APIVersion)
	w.Header().Set("Ostype", "linux")
	w.Write([]byte("OK"))
}

func list(e *Engine, w http.ResponseWriter, r *http.Request) {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		http.Error(w, `{"message":"bad filters"}`, http.StatusBadRequest)
		return
	}
	all, _ := strconv.ParseBool(r.URL.Query().Get("all"))
	cs, err := e.ContainerList(r.Context(), container.ListOptions{All: all, Filters: f})
	if err != nil {
		fail(w, err)
		return
	}
	if !e.current() {
		reply(w, cs)
		return
	}
	// API 1.52 adds each container's health to its entry ("none":
	// no healthcheck).
	out := make([]map[string]any, len(cs))
	for i, c := range cs {
		m := asMap(c)
		health := "none"
		if h := e.healthOf(c.ID); h != "" {
			health = h
		}
		m["Health"] = map[string]any{"Status": health, "FailingStreak": 0}
		out[i] = m
	}
	reply(w, out)
}

// asMap is v as JSON would give it.
func asMap(v any) map[string]any {
	data, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(data, &m)
	return m
}

// deprecatedNetworkFields are the top-level fields of an inspect's
// NetworkSettings that API 1.52 no longer sends (each network's own stay).
var deprecatedNetworkFields = []string{"Bridge", "EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
	"HairpinMode", "IPAddress", "IPPrefixLen", "IPv6Gateway", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "MacAddress",
	"SecondaryIPAddresses", "SecondaryIPv6Addresses"}

func inspect(e *Engine, w http.ResponseWriter, r *http.Request, id string) {
	c, err := e.ContainerInspect(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	if !e.current() {
		reply(w, c)
		return
	}
	m := asMap(c)
	if ns, ok := m["NetworkSettings"].(map[string]any); ok {
		for _, k := range deprecatedNetworkFields {
			delete(ns, k)
		}
	}
	reply(w, m)
}

// serveEvents writes events as Docker does: one JSON object per message,
// flushed at once, until the client goes or the stream ends.
func serveEvents(e *Engine, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		http.Error(w, `{"message":"bad filters"}`, http.StatusBadRequest)
		return
	}
	msgs, errs := e.Events(r.Context(), events.ListOptions{Since: q.Get("since"), Until: q.Get("until"), Filters: f})
	select {
	case err := <-errs:
		fail(w, err)
		return
	default:
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case m := <-msgs:
			if enc.Encode(m) != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-errs:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fail answers as the engine would: 404 for a missing container, 500 for
// anything else, with Docker's {"message": ...} body.
func fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, errdefs.ErrNotFound) {
		status = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
}
