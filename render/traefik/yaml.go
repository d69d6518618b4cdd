package traefik

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
)

// writeYAML writes cfg as YAML, by hand: the shape is fixed and small, and
// yaml.v3's reflection cost 0.3 s for 10,000 routes on every change. The
// output is deterministic (keys sorted), every string is double-quoted
// (Go's quoting of the ASCII dockroute writes is valid YAML), and the file
// still decodes into Traefik's configuration as before (the golden files
// go through Traefik's own loader).
func writeYAML(buf *bytes.Buffer, cfg config) {
	if cfg.HTTP == nil {
		buf.WriteString("{}\n")
		return
	}
	h := cfg.HTTP
	buf.WriteString("http:\n")
	if len(h.Routers) > 0 {
		buf.WriteString("  routers:\n")
		for _, name := range slices.Sorted(maps.Keys(h.Routers)) {
			r := h.Routers[name]
			line(buf, 4, name+":")
			kv(buf, 6, "rule", quote(r.Rule))
			kv(buf, 6, "service", quote(r.Service))
			kv(buf, 6, "priority", strconv.Itoa(r.Priority))
			if len(r.EntryPoints) > 0 {
				kv(buf, 6, "entryPoints", flow(r.EntryPoints))
			}
			if len(r.Middlewares) > 0 {
				kv(buf, 6, "middlewares", flow(r.Middlewares))
			}
			if r.TLS != nil {
				if r.TLS.CertResolver == "" && len(r.TLS.Domains) == 0 {
					kv(buf, 6, "tls", "{}")
					continue
				}
				line(buf, 6, "tls:")
				if r.TLS.CertResolver != "" {
					kv(buf, 8, "certResolver", quote(r.TLS.CertResolver))
				}
				if len(r.TLS.Domains) > 0 {
					line(buf, 8, "domains:")
					for _, d := range r.TLS.Domains {
						line(buf, 10, "- main: "+quote(d.Main))
					}
				}
			}
		}
	}
	if len(h.Middlewares) > 0 {
		buf.WriteString("  middlewares:\n")
		for _, name := range slices.Sorted(maps.Keys(h.Middlewares)) {
			m := h.Middlewares[name]
			line(buf, 4, name+":")
			if m.StripPrefix != nil {
				line(buf, 6, "stripPrefix:")
				kv(buf, 8, "prefixes", flow(m.StripPrefix.Prefixes))
			}
			if m.RedirectScheme != nil {
				line(buf, 6, "redirectScheme:")
				kv(buf, 8, "scheme", quote(m.RedirectScheme.Scheme))
				kv(buf, 8, "permanent", strconv.FormatBool(m.RedirectScheme.Permanent))
			}
		}
	}
	if len(h.Services) > 0 {
		buf.WriteString("  services:\n")
		for _, name := range slices.Sorted(maps.Keys(h.Services)) {
			line(buf, 4, name+":")
			line(buf, 6, "loadBalancer:")
			line(buf, 8, "servers:")
			for _, s := range h.Services[name].LoadBalancer.Servers {
				line(buf, 10, "- url: "+quote(s.URL))
			}
		}
	}
}

func line(buf *bytes.Buffer, indent int, s string) {
	for range indent {
		buf.WriteByte(' ')
	}
	buf.WriteString(s)
	buf.WriteByte('\n')
}

func kv(buf *bytes.Buffer, indent int, key, value string) {
	line(buf, indent, key+": "+value)
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
