package traefik

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The writers below write dockroute's YAML by hand, one named block at a
// time (Renderer assembles them): the shape is fixed and small, and
// yaml.v3's reflection cost 0.3 s for 10,000 routes on every change. The
// output is deterministic, every string is double-quoted (Go's quoting of
// the ASCII dockroute writes is valid YAML), and the file decodes into
// Traefik's configuration (the golden files go through Traefik's own
// loader).

// writeRouterHead writes what HTTP and TCP routers have alike.
func writeRouterHead(buf *bytes.Buffer, name, rule, service string, priority int, entryPoints []string) {
	key(buf, 4, name)
	kq(buf, 6, "rule", rule)
	kq(buf, 6, "service", service)
	kv(buf, 6, "priority", strconv.Itoa(priority))
	if len(entryPoints) > 0 {
		kv(buf, 6, "entryPoints", flow(entryPoints))
	}
}

func writeTCPRouter(buf *bytes.Buffer, name string, r tcpRouter) {
	writeRouterHead(buf, name, r.Rule, r.Service, r.Priority, r.EntryPoints)
	kv(buf, 6, "tls", "{passthrough: true}")
}

func writeTCPService(buf *bytes.Buffer, name string, s tcpService) {
	key(buf, 4, name)
	line(buf, 6, "loadBalancer:")
	line(buf, 8, "servers:")
	for _, a := range s.Servers {
		kq(buf, 10, "- address", a)
	}
}

func writeRouter(buf *bytes.Buffer, name string, r router) {
	writeRouterHead(buf, name, r.Rule, r.Service, r.Priority, r.EntryPoints)
	if len(r.Middlewares) > 0 {
		kv(buf, 6, "middlewares", flow(r.Middlewares))
	}
	if r.TLS == nil {
		return
	}
	if r.TLS.CertResolver == "" && len(r.TLS.Domains) == 0 {
		kv(buf, 6, "tls", "{}")
		return
	}
	line(buf, 6, "tls:")
	if r.TLS.CertResolver != "" {
		kq(buf, 8, "certResolver", r.TLS.CertResolver)
	}
	if len(r.TLS.Domains) > 0 {
		line(buf, 8, "domains:")
		for _, d := range r.TLS.Domains {
			line(buf, 10, "- main: "+quote(d.Main))
		}
	}
}

func writeMiddleware(buf *bytes.Buffer, name string, m middleware) {
	if m.Raw != nil {
		kv(buf, 4, name, string(m.Raw))
		return
	}
	key(buf, 4, name)
	if m.StripPrefix != nil {
		line(buf, 6, "stripPrefix:")
		kv(buf, 8, "prefixes", flow(m.StripPrefix.Prefixes))
	}
	if m.RedirectScheme != nil {
		line(buf, 6, "redirectScheme:")
		kq(buf, 8, "scheme", m.RedirectScheme.Scheme)
		kv(buf, 8, "permanent", strconv.FormatBool(m.RedirectScheme.Permanent))
	}
	if m.Retry != nil {
		line(buf, 6, "retry:")
		kv(buf, 8, "attempts", strconv.Itoa(m.Retry.Attempts))
		if len(m.Retry.Status) > 0 {
			kv(buf, 8, "status", `["`+strings.Join(m.Retry.Status, `", "`)+`"]`)
			kv(buf, 8, "maxRequestBodyBytes", strconv.FormatInt(m.Retry.MaxRequestBodyBytes, 10))
		}
	}
}

func writeService(buf *bytes.Buffer, name string, svc service) {
	key(buf, 4, name)
	line(buf, 6, "loadBalancer:")
	lb := svc.LoadBalancer
	if len(lb.Servers) == 0 {
		// A down route: Traefik answers 503 for a service without servers.
		line(buf, 8, "servers: []")
	} else {
		line(buf, 8, "servers:")
	}
	for _, s := range lb.Servers {
		kq(buf, 10, "- url", s.URL)
		if s.Weight != nil {
			kv(buf, 12, "weight", strconv.Itoa(*s.Weight))
		}
		if s.PreservePath {
			kv(buf, 12, "preservePath", "true")
		}
	}
	if lb.ServersTransport != "" {
		kq(buf, 8, "serversTransport", lb.ServersTransport)
	}
	if p := lb.PassiveHealthCheck; p != nil {
		key(buf, 8, "passiveHealthCheck")
		kq(buf, 10, "failureWindow", p.FailureWindow)
		kv(buf, 12-2, "maxFailedAttempts", strconv.Itoa(p.MaxFailedAttempts))
	}
}

func writeTransports(buf *bytes.Buffer, ts map[string]serversTransport) {
	buf.WriteString("  serversTransports:\n")
	for _, name := range slices.Sorted(maps.Keys(ts)) {
		key(buf, 4, name)
		kv(buf, 6, "insecureSkipVerify", strconv.FormatBool(ts[name].InsecureSkipVerify))
		if ft := ts[name].ForwardingTimeouts; ft != nil {
			key(buf, 6, "forwardingTimeouts")
			kq(buf, 8, "dialTimeout", ft.DialTimeout)
		}
	}
}

const spaces = "            "

func line(buf *bytes.Buffer, indent int, s string) {
	buf.WriteString(spaces[:indent])
	buf.WriteString(s)
	buf.WriteByte('\n')
}

// key writes "name:", opening a mapping.
func key(buf *bytes.Buffer, indent int, name string) {
	buf.WriteString(spaces[:indent])
	buf.WriteString(name)
	buf.WriteString(":\n")
}

// kv writes "key: value"; value is written as is (already quoted or a
// number).
func kv(buf *bytes.Buffer, indent int, key, value string) {
	buf.WriteString(spaces[:indent])
	buf.WriteString(key)
	buf.WriteString(": ")
	buf.WriteString(value)
	buf.WriteByte('\n')
}

// kq writes "key: "value"", quoting value without allocating.
func kq(buf *bytes.Buffer, indent int, key, value string) {
	buf.WriteString(spaces[:indent])
	buf.WriteString(key)
	buf.WriteString(": ")
	buf.Write(strconv.AppendQuote(buf.AvailableBuffer(), value))
	buf.WriteByte('\n')
}

func quote(s string) string { return strconv.Quote(s) }

func flow(items []string) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(s))
	}
	b.WriteByte(']')
	return b.String()
}
