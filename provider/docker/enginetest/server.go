package enginetest

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
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
		switch {
		case m == nil:
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
		case m[1] == "/_ping":
			ping(e, w, r)
		case m[1] == "/containers/json":
			list(e, w, r)
		case m[1] == "/events":
			serveEvents(e, w, r)
		case m[2] != "":
			inspect(e, w, r, m[2])
		default:
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
		}
	})
	return mux
}

// apiPath matches a versioned API path: /v1.41/containers/json,
// /v1.41/containers/ID/json, /v1.41/events, /v1.41/_ping.
var apiPath = regexp.MustCompile(`^/v[0-9.]+(/_ping|/containers/json|/events|/containers/([^/]+)/json)$`)

func ping(e *Engine, w http.ResponseWriter, r *http.Request) {
	p, err := e.Ping(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Api-Version", p.APIVersion)
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
	reply(w, cs)
}

func inspect(e *Engine, w http.ResponseWriter, r *http.Request, id string) {
	c, err := e.ContainerInspect(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, c)
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
