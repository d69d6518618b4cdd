package enginetest

import (
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/storage"
	"github.com/docker/go-connections/nat"
)

// The fields below are the ones dockroute does not read but a real engine
// sends anyway, shaped as Docker Engine 20.10 sends them for a container
// of a small image. They are here for the cost of reading an answer, not
// for its meaning: an inspect of the fake was 2.7 kB of mostly empty
// fields, a real one 4.7 kB with paths, IDs and lists, and decoding it
// took the Docker client twice as long (72 vs 31 µs here). A benchmark
// of the fake's answers would have shown a first sync of 10,000
// containers cheaper than a real engine allows.

const realisticImage = "dockroute/hello:dev"

// The IDs the answers hold, as constants: hashing them on every answer was
// harness CPU taken from the two cores dockroute is measured on. They are
// 64 hex digits, as a real engine's are, and mean nothing (they were
// sha256 of "image:dockroute/hello:dev" and "network:bridge"). A
// container's own IDs (layer, sandbox, endpoint) are its ID, which has
// their length.
const (
	imageID   = "f6b7e4e0bb3952159c24d50ecc8c497db44221e9eff4617b0ed59ba3f7a8b4c8"
	networkID = "39d8b63b425b45d8ace7da5bb9765395172d694ae73a18869531b8f270eafcba"
)

// realisticHostConfig is what a real engine reports of a plain docker run.
func realisticHostConfig() *container.HostConfig {
	return &container.HostConfig{
		NetworkMode:   "bridge",
		LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-file": "3", "max-size": "10m"}},
		RestartPolicy: container.RestartPolicy{Name: "no"},
		CgroupnsMode:  "host",
		IpcMode:       "private",
		Runtime:       "runc",
		ConsoleSize:   [2]uint{0, 0},
		Resources:     container.Resources{},
		ShmSize:       64 << 20,
		MaskedPaths: []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
	}
}

// fill adds to an inspect answer what a real engine also sends.
func (c *Container) fill(in *container.InspectResponse) {
	dir := "/var/lib/docker/containers/" + c.ID
	overlay := "/var/lib/docker/overlay2/" + c.ID
	b := in.ContainerJSONBase
	b.Path, b.Args = "/hello", []string{}
	b.Image = "sha256:" + imageID
	b.ResolvConfPath, b.HostnamePath, b.HostsPath = dir+"/resolv.conf", dir+"/hostname", dir+"/hosts"
	b.LogPath = dir + "/" + c.ID + "-json.log"
	b.Driver, b.Platform = "overlay2", "linux"
	b.GraphDriver = storage.DriverData{Name: "overlay2", Data: map[string]string{
		"LowerDir":  overlay + "-init/diff:/var/lib/docker/overlay2/" + imageID + "/diff",
		"MergedDir": overlay + "/merged", "UpperDir": overlay + "/diff", "WorkDir": overlay + "/work"}}
	b.State.Pid = 4242
	b.State.StartedAt = c.Created.Format(time.RFC3339Nano)
	b.State.FinishedAt = "0001-01-01T00:00:00Z"
	in.Mounts = []container.MountPoint{}
	cf := in.Config
	cf.Hostname, cf.Image, cf.Entrypoint = c.ID[:min(12, len(c.ID))], realisticImage, []string{"/hello"}
	cf.Env = append(cf.Env[:len(cf.Env):len(cf.Env)], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	ns := in.NetworkSettings
	ns.SandboxID = c.ID
	ns.SandboxKey = "/var/run/docker/netns/" + c.ID[:min(12, len(c.ID))]
	if ep := ns.Networks["bridge"]; ep != nil {
		ns.EndpointID, ns.Gateway, ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen, ep.MacAddress
	}
}

// endpoint is a container's attachment to the fake's one network, with
// the IDs and addresses a real engine reports.
func (c *Container) endpoint() *network.EndpointSettings {
	return &network.EndpointSettings{
		NetworkID:  networkID,
		EndpointID: c.ID,
		Gateway:    "10.0.0.1", IPAddress: c.IP, IPPrefixLen: 8,
		MacAddress: "02:42:0a:00:00:02",
	}
}

// fillSummary adds to a list entry what a real engine also sends.
func (c *Container) fillSummary(s *container.Summary) {
	s.Image, s.ImageID = realisticImage, "sha256:"+imageID
	s.Command = "/hello"
	s.Mounts = []container.MountPoint{}
	// A real list names every exposed port, published or not.
	for _, p := range c.Exposed {
		port := nat.Port(p)
		if _, published := c.Published[uint16(port.Int())]; !published {
			s.Ports = append(s.Ports, container.Port{PrivatePort: uint16(port.Int()), Type: port.Proto()})
		}
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
}
