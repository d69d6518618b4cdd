package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/dockroute/dockroute/provider/docker/engine"
)

// The write side of the Docker API, which only --sleep uses: starting and
// stopping containers. Everything else dockroute does reads.

// lifecycle is what an engine needs to start and stop containers; the
// Docker client is one.
type lifecycle interface {
	ContainerStart(ctx context.Context, id string, opts container.StartOptions) error
	ContainerStop(ctx context.Context, id string, opts container.StopOptions) error
}

// writeTimeout bounds a start or a stop. A stop waits for the container's
// own stop timeout (10 s unless it set another) before Docker kills it.
const writeTimeout = 2 * time.Minute

// StartContainer starts the container id on whichever engine has it.
func (f *Fleet) StartContainer(ctx context.Context, id string) error {
	return f.onEngineOf(ctx, id, func(ctx context.Context, lc lifecycle) error {
		return lc.ContainerStart(ctx, id, container.StartOptions{})
	})
}

// StopContainer stops the container id on whichever engine has it, as
// `docker stop` does (its stop signal, then SIGKILL after its timeout).
func (f *Fleet) StopContainer(ctx context.Context, id string) error {
	return f.onEngineOf(ctx, id, func(ctx context.Context, lc lifecycle) error {
		return lc.ContainerStop(ctx, id, container.StopOptions{})
	})
}

// ContainerExists tells whether some engine has the container id.
func (f *Fleet) ContainerExists(ctx context.Context, id string) (bool, error) {
	var firstErr error
	for _, m := range f.members {
		_, found, err := engine.Inspect(ctx, m.Engine, id)
		switch {
		case found:
			return true, nil
		case err != nil && firstErr == nil:
			firstErr = err
		}
	}
	return false, firstErr
}

// StoppedWithLabel lists the IDs of the exited containers in scope that
// carry label, on every engine.
func (f *Fleet) StoppedWithLabel(ctx context.Context, label string) ([]string, error) {
	var ids []string
	var firstErr error
	for _, m := range f.members {
		args := f.options().Scope.args()
		args.Add("label", label)
		cs, err := engine.List(ctx, m.Engine, container.ListOptions{All: true, Filters: args})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, c := range cs {
			// Filtered here rather than by the engine's status filter,
			// whose values Podman reads differently.
			if c.State == "exited" {
				ids = append(ids, c.ID)
			}
		}
	}
	return ids, firstErr
}

// onEngineOf runs do against the engine that has the container id: each
// in turn until one does not answer "no such container".
func (f *Fleet) onEngineOf(ctx context.Context, id string, do func(context.Context, lifecycle) error) error {
	var err error
	for _, m := range f.members {
		lc, ok := m.Engine.(lifecycle)
		if !ok {
			err = fmt.Errorf("engine %s: this client cannot start or stop containers", m.Endpoint.String())
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err = do(wctx, lc)
		cancel()
		if err == nil || !errdefs.IsNotFound(err) {
			break
		}
	}
	if err != nil && errdefs.IsPermissionDenied(err) {
		err = fmt.Errorf("%w: the Docker API refused it. --sleep needs POST /containers/{id}/start and /containers/{id}/stop; behind a socket proxy allow them (tecnativa/docker-socket-proxy: ALLOW_START=1 ALLOW_STOP=1)", err)
	}
	return engine.WithSocketHint(err)
}
