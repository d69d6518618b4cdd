//go:build e2e

package main

// TLS passthrough end to end (dockroute.tcp): through a real Traefik,
// connections are routed by SNI to a container that terminates TLS
// itself; the Caddy output refuses such containers with a reason.

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// viaSNI sends GET / over TLS to addr with SNI host, and returns the
// body and the subject of the certificate that answered.
func viaSNI(addr, host string) (body, subject string, err error) {
	var cert string
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		ServerName: host, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			cert = cs.PeerCertificates[0].Subject.String()
			return nil
		},
	}}}
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "", cert, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), cert, nil
}

// TestTLSPassthrough: dockroute.tcp=HOST:PORT routes TLS connections for
// HOST, still encrypted, to the container (it presents its own
// certificate and sees TLS); an HTTP route on the same entrypoint keeps
// Traefik's TLS; the route goes when the container stops.
func TestTLSPassthrough(t *testing.T) {
	dockertest.Require(t)
	sni := dockertest.Unique("sni") + ".test"
	plain := dockertest.Unique("tplain") + ".test"
	id := dockertest.Run(t, "-e", "LISTEN=8443", "-e", "PROTO=https", "--expose", "8443",
		"--label", "dockroute.tcp="+sni+":8443", dockertest.HelloImage)[:12]
	dockertest.Run(t, hello(plain)...)

	tr := traefiktest.Start(t, t.TempDir()+"/dynamic")
	startDaemonDir(t, tr.Dir, nil)
	eventually(t, 15*time.Second, func() (bool, string) {
		body, subject, err := viaSNI(tr.WebSecure, sni)
		return err == nil && strings.Contains(body, "hello from "+id) && strings.Contains(body, "proto https") && !strings.Contains(subject, "TRAEFIK"),
			fmt.Sprintf("%s: %q from certificate %q, %v", sni, body, subject, err)
	})
	body, subject, err := viaSNI(tr.WebSecure, plain)
	if err != nil || !strings.Contains(body, "proto http HTTP/1.1") || !strings.Contains(subject, "TRAEFIK DEFAULT CERT") {
		t.Errorf("%s beside it: %q from %q, %v; want Traefik's TLS and the plain backend", plain, body, subject, err)
	}
	dockertest.Docker(t, "stop", id)
	eventually(t, 15*time.Second, func() (bool, string) {
		body, subject, err := viaSNI(tr.WebSecure, sni)
		return !strings.Contains(body, "hello from "+id), fmt.Sprintf("after stop: %q from %q, %v", body, subject, err)
	})

	// Caddy cannot pass TLS through: the container is refused, saying so.
	c := caddytest.Start(t, caddytest.Binaries(t)[0], nil)
	d := startCaddyDaemon(t, c, fmt.Sprintf("127.0.0.1:%d", caddytest.FreePort(t)))
	dockertest.Docker(t, "start", id)
	d.waitLog(t, "TLS passthrough routes need Traefik")
}
