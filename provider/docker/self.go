package docker

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
)

// AutoNetwork is the --network value meaning "the network dockroute's own
// container is on": dockroute, run as a container beside the proxy on one
// network, routes (and considers) only containers on that network. It is
// how a Compose stack needs no network name written in it: Compose names
// networks after the project, so copies of a stack never collide.
const AutoNetwork = "auto"

// mountedContainerID finds the ID of the container this process runs in:
// Docker bind-mounts /etc/hostname, /etc/hosts and /etc/resolv.conf from
// the container's own directory, which names the ID.
var mountedContainerID = regexp.MustCompile(`/containers/([0-9a-f]{64})/`)

// OwnNetwork returns the one network of the container dockroute runs in.
func OwnNetwork(ctx context.Context, e engine.Engine) (string, error) {
	ref, err := ownContainer()
	if err != nil {
		return "", err
	}
	c, found, err := engine.Inspect(ctx, e, ref)
	if err != nil {
		return "", fmt.Errorf("--network auto: %w", err)
	}
	if !found {
		return "", fmt.Errorf("--network auto: dockroute does not run in a container of this engine (no container %s); name the network with --network", contract.Short(ref))
	}
	names := c.Networks.Names()
	if len(names) != 1 {
		return "", fmt.Errorf("--network auto: dockroute's container %s is on %d networks (%s); put it on the proxy's network only, or name the network with --network", c.Name, len(names), strings.Join(names, ", "))
	}
	return names[0], nil
}

// ownContainer is this process's container ID (or, failing that, its
// hostname, which Docker sets to the short ID unless told otherwise).
func ownContainer() (string, error) {
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if m := mountedContainerID.FindSubmatch(data); m != nil {
			return string(m[1]), nil
		}
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("--network auto: cannot tell which container dockroute runs in: %w", err)
	}
	return h, nil
}
