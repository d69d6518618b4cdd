package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
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
}

var _ Engine = (*client.Client)(nil)

// answerReader is an Engine that reads inspects and lists straight into
// what dockroute keeps of them (ClientEngine), skipping the client's
// types; a sync uses it where an engine has it.
type answerReader interface {
	ReadContainer(ctx context.Context, id string) (contract.Container, error)
	ReadList(ctx context.Context, opts container.ListOptions) ([]listEntry, error)
}

var _ answerReader = (*ClientEngine)(nil)

// Deadlines of the calls to the engine. No call may hang the watcher: a
// frozen engine (SIGSTOP, a wedged daemon) must show up as "unreachable"
// within seconds, not never.
const (
	// pingTimeout bounds a liveness probe; an engine that cannot answer
	// /_ping in this long is treated as gone.
	pingTimeout = 3 * time.Second
	// inspectTimeout bounds one inspect.
	inspectTimeout = 10 * time.Second
	// listTimeout bounds one container list, which for ten thousand
	// containers is a few megabytes of JSON.
	listTimeout = 30 * time.Second
	// subscribeTimeout bounds how long the engine may take to accept an
	// event subscription; the stream itself has no deadline (it is quiet
	// for as long as nothing happens) and is watched with pings instead.
	subscribeTimeout = 10 * time.Second
	// historyTimeout bounds a read of past events.
	historyTimeout = 10 * time.Second
)

// ping probes the engine with pingTimeout.
func ping(ctx context.Context, e Engine) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	_, err := e.Ping(ctx)
	return withSocketHint(err)
}

// withSocketHint adds, to an error of a socket dockroute may not open,
// what to do: the image runs as an unprivileged user, which reaches the
// socket only through its group.
func withSocketHint(err error) error {
	if err == nil || !errors.Is(err, fs.ErrPermission) && !strings.Contains(err.Error(), "permission denied") {
		return err
	}
	return fmt.Errorf("%w (dockroute runs as user %d, who may not open the socket: give it the socket's group, e.g. docker run --group-add $(stat -c %%g /var/run/docker.sock), DOCKER_GID in the compose stacks, or outside a container add the user to the docker group)", err, os.Getuid())
}

// subscribe opens an event stream that lives until stop is called or ctx
// ends, giving up if the engine does not accept it within subscribeTimeout.
// The returned error is a refusal (or a timeout) of the subscription itself.
func subscribe(ctx context.Context, e Engine, opts events.ListOptions) (msgs <-chan events.Message, errs <-chan error, stop func(), err error) {
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
		return nil, nil, nil, err
	default:
	}
	return msgs, errs, cancel, nil
}

// pastEvents reads the events matching f between since and until (both in
// the past) from the engine's event log.
func pastEvents(ctx context.Context, e Engine, since, until time.Time, f filters.Args) ([]events.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	msgs, errs := e.Events(ctx, events.ListOptions{Since: unixTime(since), Until: unixTime(until), Filters: f})
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

// unixTime formats t as the API's "seconds.nanoseconds".
func unixTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}
