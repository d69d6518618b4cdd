package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/dockroute/dockroute/provider/contract"
)

// Engine is the part of the Docker Engine API the watcher uses, and all of
// it: a *client.Client is one. Keeping it this narrow lets the watcher's
// failure policy be driven by an in-process fake engine (refused streams,
// failing inspects, a hung or restarting engine), which a real engine cannot
// safely be made to do in a test.
type Engine interface {
	Ping(ctx context.Context) (types.Ping, error)
	ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	// Events streams events matching opts. It returns once the engine has
	// accepted the subscription (or refused it: the error is then on the
	// error channel). With opts.Until in the past, the stream holds only
	// past events and ends with io.EOF.
	Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error)
	// ServerVersion and Info say what the engine is (Identify).
	ServerVersion(ctx context.Context) (types.Version, error)
	Info(ctx context.Context) (system.Info, error)
}

var _ Engine = (*client.Client)(nil)

// answerReader is an Engine that reads inspects and lists straight into
// what dockroute keeps of them (ClientEngine), skipping the client's
// types; a sync uses it where an engine has it.
type answerReader interface {
	ReadContainer(ctx context.Context, id string) (contract.Container, error)
	ReadList(ctx context.Context, opts container.ListOptions) ([]Entry, error)
}

var _ answerReader = (*ClientEngine)(nil)

// Deadlines of the calls to the engine. No call may hang the watcher: a
// frozen engine (SIGSTOP, a wedged daemon) must show up as "unreachable"
// within seconds, not never.
const (
	// PingTimeout bounds a liveness probe; an engine that cannot answer
	// /_ping in this long is treated as gone.
	PingTimeout = 3 * time.Second
	// inspectTimeout bounds one inspect.
	inspectTimeout = 10 * time.Second
	// ListTimeout bounds one container list, which for ten thousand
	// containers is a few megabytes of JSON.
	ListTimeout = 30 * time.Second
	// subscribeTimeout bounds how long the engine may take to accept an
	// event subscription; the stream itself has no deadline (it is quiet
	// for as long as nothing happens) and is watched with pings instead.
	subscribeTimeout = 10 * time.Second
	// historyTimeout bounds a read of past events.
	historyTimeout = 10 * time.Second
)

// Ping probes the engine with PingTimeout.
func Ping(ctx context.Context, e Engine) error {
	ctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	_, err := e.Ping(ctx)
	return WithSocketHint(err)
}

// WithSocketHint adds, to an error of a socket dockroute may not open,
// what to do: the image runs as an unprivileged user, which reaches the
// socket only through its group.
func WithSocketHint(err error) error {
	if err == nil || !errors.Is(err, fs.ErrPermission) && !strings.Contains(err.Error(), "permission denied") {
		return err
	}
	// The client's error names the socket as a URL-encoded host
	// (http://%2Fvar%2Frun%2Fdocker.sock/v1.41/_ping); the dial's own
	// error names it as a path.
	var op *net.OpError
	if errors.As(err, &op) {
		err = op
	}
	return fmt.Errorf("%w (dockroute runs as user %d, who may not open the socket: give it the socket's group, e.g. docker run --group-add $(stat -c %%g /var/run/docker.sock), DOCKER_GID in the compose stacks, or outside a container add the user to the docker group)", err, os.Getuid())
}

// Subscribe opens an event stream that lives until stop is called or ctx
// ends, giving up if the engine does not accept it within subscribeTimeout.
// The returned error is a refusal (or a timeout) of the subscription itself.
func Subscribe(ctx context.Context, e Engine, opts events.ListOptions) (msgs <-chan events.Message, errs <-chan error, stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(subscribeTimeout, cancel)
	msgs, errs = e.Events(ctx, opts)
	if !timer.Stop() {
		cancel()
		return nil, nil, nil, fmt.Errorf("the engine did not accept the event subscription within %v", subscribeTimeout)
	}
	select {
	case err := <-errs:
		cancel()
		if err == nil {
			err = errors.New("the event stream ended at once")
		}
		return nil, nil, nil, PinnedTooOld(err)
	default:
	}
	return msgs, errs, cancel, nil
}

// PinnedTooOld names the cause of an engine's refusal of the client's API
// version: DOCKER_API_VERSION turns the client's negotiation off, and
// Docker 25 and later refuse every call below their minimum (1.44 on
// Docker 29), which a Docker 20.10 era setting pins. Other errors are
// returned as they are.
func PinnedTooOld(err error) error {
	pinned := os.Getenv("DOCKER_API_VERSION")
	if err == nil || pinned == "" || !strings.Contains(err.Error(), "Minimum supported API version is") {
		return err
	}
	return fmt.Errorf("the engine refuses API version %s, which DOCKER_API_VERSION pins: unset DOCKER_API_VERSION and dockroute negotiates the version with the engine (%w)", pinned, err)
}

// PastEvents reads the events matching f between since and until (both in
// the past) from the engine's event log.
func PastEvents(ctx context.Context, e Engine, since, until time.Time, f filters.Args) ([]events.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	msgs, errs := e.Events(ctx, events.ListOptions{Since: UnixTime(since), Until: UnixTime(until), Filters: f})
	var out []events.Message
	for {
		select {
		case m := <-msgs:
			out = append(out, m)
		case err := <-errs:
			if err == nil || errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("read past events: %w", err)
		}
	}
}

// UnixTime formats t as the API's "seconds.nanoseconds".
func UnixTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// List lists containers, read as a Entry each.
func List(ctx context.Context, e Engine, opts container.ListOptions) ([]Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, ListTimeout)
	defer cancel()
	var entries []Entry
	var err error
	if r, ok := e.(answerReader); ok {
		entries, err = r.ReadList(ctx, opts)
	} else {
		var summaries []container.Summary
		summaries, err = e.ContainerList(ctx, opts)
		entries = make([]Entry, len(summaries))
		for i, s := range summaries {
			entries[i] = EntryOf(s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", PinnedTooOld(err))
	}
	return entries, nil
}

// Inspect fetches one container; found is false when it no longer exists.
func Inspect(ctx context.Context, e Engine, id string) (c contract.Container, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	c, err = readContainer(ctx, e, id)
	if errdefs.IsNotFound(err) {
		return contract.Container{}, false, nil
	}
	if err != nil {
		return contract.Container{}, false, fmt.Errorf("inspect container %s: %w", contract.Short(id), PinnedTooOld(err))
	}
	return c, true, nil
}

// readContainer inspects a container, read as a Container.
func readContainer(ctx context.Context, e Engine, id string) (contract.Container, error) {
	if r, ok := e.(answerReader); ok {
		return r.ReadContainer(ctx, id)
	}
	in, err := e.ContainerInspect(ctx, id)
	if err != nil {
		return contract.Container{}, err
	}
	return FromInspect(in), nil
}

// InspectConcurrency bounds the inspects a sync has in flight: one at a
// time, a first sync of 10,000 containers waited out 10,000 round trips
// (3.7 s here); the engine serves a few at once without strain.
const InspectConcurrency = 8
