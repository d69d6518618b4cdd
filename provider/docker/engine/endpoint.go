package engine

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/docker/docker/client"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/route"
)

// Endpoint is one Docker Engine dockroute follows, and how the proxy
// reaches its containers. It is written as the engine's URL, as DOCKER_HOST
// takes it, with dockroute's settings as query parameters:
//
//	unix:///var/run/docker.sock
//	tcp://node2:2376?tls=/etc/dockroute/node2&addr=published&advertise=10.0.0.2&name=node2
//
// tls names a directory with ca.pem, cert.pem and key.pem, as the docker CLI
// reads DOCKER_CERT_PATH (the engine's certificate is verified). addr is
// network or published (default: network for a unix socket, published for
// tcp). advertise is the address the proxy reaches published ports at
// (default: the URL's host). name labels the engine in logs, metrics and
// explain (default: the URL's host, or "local").
type Endpoint struct {
	Name      string
	Host      string // the engine's URL, without dockroute's parameters
	TLSDir    string
	Address   contract.AddressMode
	Advertise string
}

// DefaultEndpoint is the engine the DOCKER_* environment names (the local
// socket by default), as the docker CLI finds it.
func DefaultEndpoint() Endpoint {
	return Endpoint{Name: "local"}
}

// ParseEndpoint reads an endpoint URL.
func ParseEndpoint(s string) (Endpoint, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker host %q: %w", s, err)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "tls", "addr", "advertise", "name":
		default:
			return Endpoint{}, fmt.Errorf("docker host %q: unknown parameter %q (want tls, addr, advertise or name)", s, k)
		}
	}
	u.RawQuery = ""
	e := Endpoint{Host: u.String(), TLSDir: q.Get("tls"), Address: contract.AddressMode(q.Get("addr")), Advertise: q.Get("advertise"), Name: q.Get("name")}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return Endpoint{}, fmt.Errorf("docker host %q: no socket path", s)
		}
		// No address mode: network, unless the engine says it is
		// rootless (the watcher then routes published ports).
		e.Name = cmp.Or(e.Name, "local")
	case "tcp":
		if u.Hostname() == "" || u.Port() == "" {
			return Endpoint{}, fmt.Errorf("docker host %q: want tcp://HOST:PORT", s)
		}
		e.Address = cmp.Or(e.Address, contract.AddrPublished)
		e.Advertise = cmp.Or(e.Advertise, u.Hostname())
		e.Name = cmp.Or(e.Name, u.Hostname())
	case "ssh":
		return Endpoint{}, fmt.Errorf("docker host %q: ssh:// needs the docker CLI's connection helper, which the Docker client library dockroute uses does not have; forward the socket (ssh -L /tmp/node.sock:/var/run/docker.sock node) and use unix://, or use tcp:// with TLS", s)
	default:
		return Endpoint{}, fmt.Errorf("docker host %q: want unix:// or tcp://", s)
	}
	if e.Address != "" && e.Address != contract.AddrNetwork && e.Address != contract.AddrPublished {
		return Endpoint{}, fmt.Errorf("docker host %q: addr=%q: want network or published", s, e.Address)
	}
	if e.Address == contract.AddrPublished && e.Advertise == "" {
		return Endpoint{}, fmt.Errorf("docker host %q: addr=published needs advertise=ADDRESS, where the proxy reaches this engine's published ports", s)
	}
	if e.Advertise != "" && net.ParseIP(e.Advertise) == nil && !validHostname(e.Advertise) {
		return Endpoint{}, fmt.Errorf("docker host %q: advertise=%q is neither an IP address nor a host name", s, e.Advertise)
	}
	return e, nil
}

// Engine connects to the endpoint, negotiating the API version.
func (e Endpoint) Engine() (*ClientEngine, error) {
	var tls bool
	cli, err := e.client(func(c *client.Client) error {
		tls = transportTLS(c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	eng, err := newClientEngine(cli, tls)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return eng, nil
}

// transportTLS tells whether the client's transport speaks TLS: the client
// then sends https, and says so nowhere else.
func transportTLS(c *client.Client) bool {
	tr, ok := c.HTTPClient().Transport.(*http.Transport)
	return ok && tr.TLSClientConfig != nil
}

// client is the Docker client for the endpoint; last runs after every
// other option, while the client's transport is still its own.
func (e Endpoint) client(last client.Opt) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation(),
		// The client wraps every request in OpenTelemetry instrumentation;
		// dockroute exports no traces, and building each request's span
		// and metric attributes was ~10% of the first sync's allocations
		// at 10,000 containers. A filter that refuses every request
		// bypasses it.
		client.WithTraceOptions(otelhttp.WithFilter(func(*http.Request) bool { return false }))}
	if e.Host != "" {
		opts = append(opts, client.WithHost(e.Host))
	}
	if e.TLSDir != "" {
		opts = append(opts, client.WithTLSClientConfig(filepath.Join(e.TLSDir, "ca.pem"), filepath.Join(e.TLSDir, "cert.pem"), filepath.Join(e.TLSDir, "key.pem")))
	}
	return client.NewClientWithOpts(append(opts, keepConnections, last)...)
}

// keepConnections lets the client keep a connection per inspect in flight
// (and the event stream's): its transport kept Go's default of 2 idle
// connections per host, so a sync's parallel inspects closed and dialed
// connections all along.
func keepConnections(c *client.Client) error {
	if tr, ok := c.HTTPClient().Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = InspectConcurrency + 2
		tr.MaxIdleConns = max(tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	}
	return nil
}

func (e Endpoint) String() string {
	if e.Host == "" {
		return e.Name + " (DOCKER_HOST or the local socket)"
	}
	return e.Name + " (" + e.Host + ")"
}

func validHostname(h string) bool {
	name, err := route.ParseHost(h)
	return err == nil && !route.IsWildcard(name)
}
