//go:build e2e

package main

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// serveCurrentEngine serves a fake engine that answers as Docker 29 does
// (API 1.52, refusing clients below 1.44; inspects without the top-level
// addresses 1.52 removed; a health field in list entries) on a socket, and
// returns its --docker-host. A fake, because no Docker 29 can be installed
// here (Debian's is 20.10, and there is no registry); what it answers is
// taken from the Engine API's 1.52 reference.
func serveCurrentEngine(t *testing.T, e *enginetest.Engine) string {
	e.Current()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: enginetest.Handler(e)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

// TestCurrentDockerAPI: dockroute negotiates with an API 1.52 engine and
// routes from its answers; the health it lists is followed across
// resyncs; a DOCKER_API_VERSION below the engine's minimum is named in
// one line.
func TestCurrentDockerAPI(t *testing.T) {
	e := enginetest.New()
	host := serveCurrentEngine(t, e)
	mine := map[string]string{"dockroute.test": "1"} // the daemons' scope
	e.Run(enginetest.Container{Name: "web", IP: "10.0.0.2", Health: "healthy", Labels: mine, Env: []string{"VIRTUALHOST=web.test", "PORT=8080"}})
	sick := e.Run(enginetest.Container{Name: "sick", IP: "10.0.0.3", Health: "unhealthy", Labels: mine, Env: []string{"VIRTUALHOST=sick.test", "PORT=8080"}})
	d := startDaemon(t, nil, "--docker-host", host, "--resync", "1s")
	d.waitServers(t, "web.test", "http://10.0.0.2:8080")
	d.waitServers(t, "sick.test")
	// Healthy again, and no event says so: the next resync's list does.
	e.Update(sick, func(c *enginetest.Container) { c.Health = "healthy" })
	d.waitServers(t, "sick.test", "http://10.0.0.3:8080")
	d.waitLog(t, "Docker 29.1.2 (API 1.52, rootful)")

	old := startDaemon(t, []string{"DOCKER_API_VERSION=1.41"}, "--docker-host", host)
	old.waitLog(t, "the engine refuses API version 1.41, which DOCKER_API_VERSION pins: unset DOCKER_API_VERSION")
}
