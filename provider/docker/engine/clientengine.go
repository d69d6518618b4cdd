package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/dockroute/dockroute/provider/contract"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ClientEngine is the Docker client, with its container inspects and
// lists read by dockroute. The client decodes an inspect answer into the whole
// container.InspectResponse: paths, mounts, cgroup and security settings,
// the storage driver's directories. A real engine's answer is about 5 kB
// of them; dockroute reads a dozen fields. Decoding everything was half of
// a first sync's CPU at 10,000 containers. So ReadContainer sends the
// request the client would, over the client's own connections, and
// decodes only those fields, straight into the Container routing keeps
// (through the client's type, they were twice the allocations of the
// decoding itself). A list is read the same way: its entries are smaller
// (800 bytes), but a sync's list is the one call no other runs beside.
// Every other call is the client's.
//
// It decodes with github.com/go-json-experiment/json, the code Go ships
// as encoding/json/v2 (still behind GOEXPERIMENT=jsonv2 in Go 1.26):
// per real answer (4.7 kB), the client's decoding took 72 µs and 24 kB,
// encoding/json into inspectAnswer 37 µs and 17 kB, v2 16 µs and 1.5 kB.
// When v2 is the standard library's, the import path is all that changes.
type ClientEngine struct {
	*client.Client
	http *http.Client // the client's: its transport, and so its connections
	base url.URL      // the scheme, host and base path the client sends requests to

	mu         sync.Mutex
	negotiated bool
}

// newClientEngine wraps cli; tls tells whether its transport speaks TLS,
// which is how the client picks https (it has no getter for it).
func newClientEngine(cli *client.Client, tls bool) (*ClientEngine, error) {
	u, err := client.ParseHostURL(cli.DaemonHost())
	if err != nil {
		return nil, err
	}
	base := url.URL{Scheme: "http", Host: u.Host, Path: u.Path}
	if tls {
		base.Scheme = "https"
	}
	if u.Scheme == "unix" || u.Scheme == "npipe" {
		base.Host = client.DummyHost // the client's transport dials the socket
	}
	return &ClientEngine{Client: cli, http: cli.HTTPClient(), base: base}, nil
}

// ReadContainer inspects a container by ID or name and reduces the
// answer to what routing keeps, as FromInspect reduces the client's. A
// container that does not exist is an error errdefs.IsNotFound tells, as
// the client's is. (ContainerInspect is the client's own.)
func (e *ClientEngine) ReadContainer(ctx context.Context, id string) (contract.Container, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return contract.Container{}, errors.New("inspect: no container named (an empty name or ID)")
	}
	var a inspectAnswer
	if err := e.get(ctx, "the inspect of "+id, "/containers/"+id+"/json", nil, func(r io.Reader) (err error) {
		a, err = decodeJSON[inspectAnswer](r)
		return err
	}); err != nil {
		return contract.Container{}, err
	}
	return a.container(), nil
}

// decodeJSON reads one answer into a T. Names repeated in an object are
// allowed, as the client's encoding/json allows them: v2 refuses them by
// default, and keeping every object's names to check was 5% of a first
// sync's CPU (BenchmarkDecodeInspect: about a tenth of a decode).
func decodeJSON[T any](r io.Reader) (T, error) {
	var v T
	err := jsonv2.UnmarshalRead(r, &v, jsontext.AllowDuplicateNames(true))
	return v, err
}

// get sends GET p (under the negotiated API version) as the client would,
// and has decode read a 200's body; any other status is an error with the
// engine's message. what names the request in errors.
func (e *ClientEngine) get(ctx context.Context, what, p string, query url.Values, decode func(io.Reader) error) error {
	if err := e.negotiate(ctx); err != nil {
		return err
	}
	u := e.base
	u.Path = path.Join(u.Path, "/v"+e.ClientVersion(), p)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		// Read what is left, so the connection goes back to the pool.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp, what)
	}
	if err := decode(resp.Body); err != nil {
		return fmt.Errorf("read the engine's answer to %s: %w", what, err)
	}
	return nil
}

// negotiate settles the API version once, as the client does before its
// first request: an inspect may be the first call (dockroute explain).
// Until it succeeds, every inspect tries again.
func (e *ClientEngine) negotiate(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.negotiated {
		return nil
	}
	p, err := e.Ping(ctx)
	if err != nil {
		return err
	}
	e.NegotiateAPIVersionPing(p)
	e.negotiated = true
	return nil
}

// The client's calls below are made once the API version is settled: the
// client settles it on its first request without a lock, so any two first
// calls from two goroutines race (the race detector found the event
// stream's against the sleeper's list at start, and earlier a start
// against the event stream). Ping settles nothing and needs no wrapper.

// settled runs call once the API version is settled.
func settled[T any](ctx context.Context, e *ClientEngine, call func() (T, error)) (T, error) {
	if err := e.negotiate(ctx); err != nil {
		var zero T
		return zero, err
	}
	return call()
}

func (e *ClientEngine) ContainerStart(ctx context.Context, id string, opts container.StartOptions) error {
	_, err := settled(ctx, e, func() (struct{}, error) { return struct{}{}, e.Client.ContainerStart(ctx, id, opts) })
	return err
}

func (e *ClientEngine) ContainerStop(ctx context.Context, id string, opts container.StopOptions) error {
	_, err := settled(ctx, e, func() (struct{}, error) { return struct{}{}, e.Client.ContainerStop(ctx, id, opts) })
	return err
}

func (e *ClientEngine) ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error) {
	return settled(ctx, e, func() ([]container.Summary, error) { return e.Client.ContainerList(ctx, opts) })
}

func (e *ClientEngine) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	return settled(ctx, e, func() (container.InspectResponse, error) { return e.Client.ContainerInspect(ctx, id) })
}

func (e *ClientEngine) ServerVersion(ctx context.Context) (types.Version, error) {
	return settled(ctx, e, func() (types.Version, error) { return e.Client.ServerVersion(ctx) })
}

func (e *ClientEngine) Info(ctx context.Context) (system.Info, error) {
	return settled(ctx, e, func() (system.Info, error) { return e.Client.Info(ctx) })
}

func (e *ClientEngine) ServiceList(ctx context.Context, opts swarm.ServiceListOptions) ([]swarm.Service, error) {
	return settled(ctx, e, func() ([]swarm.Service, error) { return e.Client.ServiceList(ctx, opts) })
}

func (e *ClientEngine) TaskList(ctx context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error) {
	return settled(ctx, e, func() ([]swarm.Task, error) { return e.Client.TaskList(ctx, opts) })
}

// Events is the client's once the API version is settled; a failure to
// settle it is the stream's error, as a refused subscription's is.
func (e *ClientEngine) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	if err := e.negotiate(ctx); err != nil {
		errs := make(chan error, 1)
		errs <- err
		return make(chan events.Message), errs
	}
	return e.Client.Events(ctx, opts)
}

// answerError is the engine's refusal: its {"message": ...}, and for a
// 404 an error errdefs.IsNotFound tells.
func answerError(resp *http.Response, what string) error {
	var body struct{ Message string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	msg := body.Message
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", msg, errdefs.ErrNotFound)
	}
	return fmt.Errorf("engine answered %d to %s: %s", resp.StatusCode, what, msg)
}

// ReadList lists containers as the client's ContainerList does, each
// entry holding only what dockroute reads. (ContainerList is the
// client's own.)
func (e *ClientEngine) ReadList(ctx context.Context, opts container.ListOptions) ([]Entry, error) {
	if opts.Limit > 0 || opts.Size || opts.Since != "" || opts.Before != "" {
		return nil, errors.New("list: only a filter and all are read") // dockroute asks none of these
	}
	query := url.Values{}
	if opts.All {
		query.Set("all", "1")
	}
	if opts.Filters.Len() > 0 {
		f, err := filters.ToJSON(opts.Filters)
		if err != nil {
			return nil, err
		}
		query.Set("filters", f)
	}
	var entries []Entry
	err := e.get(ctx, "the container list", "/containers/json", query, func(r io.Reader) (err error) {
		entries, err = decodeJSON[[]Entry](r)
		return err
	})
	return entries, err
}

// PodmanRootless asks a Podman engine's own API (/libpod/info) whether it
// runs rootless: its Docker-compatible /info does not say (4.3).
func (e *ClientEngine) PodmanRootless(ctx context.Context) (bool, error) {
	type libpodInfo struct {
		Host struct {
			Security struct {
				Rootless bool `json:"rootless"`
			} `json:"security"`
		} `json:"host"`
	}
	var ans libpodInfo
	err := e.get(ctx, "podman's info", "/libpod/info", nil, func(r io.Reader) (err error) {
		ans, err = decodeJSON[libpodInfo](r)
		return err
	})
	return ans.Host.Security.Rootless, err
}
