package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Identity is what an engine says it is: Docker or Podman (whose
// Docker-compatible API differs in ways dockroute works around), its
// version, and whether it runs rootless (its containers' addresses are
// then in a network namespace the host cannot reach).
type Identity struct {
	Podman   bool
	Version  string // the engine's own: Docker's or Podman's
	API      string // the newest API version it speaks
	Rootless bool
}

// Identify asks the engine what it is (/version and /info).
func Identify(ctx context.Context, e Engine) (Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	v, err := e.ServerVersion(ctx)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Version: v.Version, API: v.APIVersion}
	for _, c := range v.Components {
		if strings.HasPrefix(c.Name, "Podman") {
			id.Podman, id.Version = true, c.Version
		}
	}
	info, err := e.Info(ctx)
	if err != nil {
		return id, err
	}
	id.Rootless = slices.ContainsFunc(info.SecurityOptions, func(o string) bool {
		return o == "name=rootless" || strings.HasPrefix(o, "name=rootless,")
	})
	if r, ok := e.(interface {
		PodmanRootless(context.Context) (bool, error)
	}); ok && id.Podman && !id.Rootless {
		if id.Rootless, err = r.PodmanRootless(ctx); err != nil {
			return id, err
		}
	}
	return id, nil
}

func (id Identity) String() string {
	name := "Docker " + id.Version
	if id.Podman {
		name = "Podman " + id.Version
	}
	mode := "rootful"
	if id.Rootless {
		mode = "rootless"
	}
	return fmt.Sprintf("%s (API %s, %s)", name, id.API, mode)
}
