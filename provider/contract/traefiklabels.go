package contract

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
)

// ParseTraefikLabels reads the common subset of Traefik's Docker-provider
// labels (--traefik-labels), so a compose file written for Traefik routes
// unchanged once the Docker socket moves from Traefik to dockroute:
//
//	traefik.enable=true|false
//	traefik.docker.network=NET
//	traefik.http.routers.R.rule=Host(`a`) || Host(`b`)  [&& PathPrefix(`/p`)]
//	traefik.http.routers.R.entrypoints=web,websecure
//	traefik.http.routers.R.tls=true
//	traefik.http.routers.R.tls.certresolver=NAME
//	traefik.http.routers.R.middlewares=SET,SET   (the operator's sets)
//	traefik.http.routers.R.service=S
//	traefik.http.services.S.loadbalancer.server.port=8080
//	traefik.http.services.S.loadbalancer.server.scheme=http|https|h2c
//
// Any other traefik.* label refuses the container with a reason naming it:
// labels that define middlewares or change how Traefik proxies would be a
// tenant injecting configuration, which dockroute never allows. Keys are
// case-insensitive, as Traefik reads them. optedIn is false without
// traefik.enable=true and without router labels.
func ParseTraefikLabels(labels map[string]string) (spec Spec, optedIn bool, err error) {
	tl := traefikLabels{routers: map[string]*traefikRouter{}, ports: map[string]uint16{}, schemes: map[string]string{}}
	enabled := false
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "traefik.") {
			continue
		}
		v := strings.TrimSpace(labels[k])
		if lk == "traefik.enable" {
			on, perr := strconv.ParseBool(v)
			if perr != nil {
				return spec, true, fmt.Errorf("label %s: %q is not true or false", k, v)
			}
			if !on {
				return spec, false, nil
			}
			enabled = true
			continue
		}
		if err == nil {
			err = tl.read(k, lk, v)
		}
	}
	if !enabled && len(tl.routers) == 0 {
		return spec, false, nil
	}
	if err != nil {
		return spec, true, err
	}
	return tl.spec()
}

type traefikLabels struct {
	network string
	routers map[string]*traefikRouter
	ports   map[string]uint16 // service → loadbalancer.server.port
	schemes map[string]string // service → its proto ("" for http)
}

type traefikRouter struct {
	rule, service, middlewares string
	edge                       route.Edge
	certResolver               string
	tlsSet                     bool
	tls                        bool
}

// read takes one label (key as written, lowercased, and its value).
func (tl *traefikLabels) read(k, lk, v string) error {
	if lk == "traefik.docker.network" {
		tl.network = v
		return nil
	}
	if rest, ok := strings.CutPrefix(lk, "traefik.http.services."); ok {
		name, key, _ := strings.Cut(rest, ".")
		if key == "loadbalancer.server.scheme" && name != "" {
			p, err := parseProto(v)
			if err != nil || strings.EqualFold(v, "grpc") || strings.EqualFold(v, "grpcs") {
				return fmt.Errorf("label %s: %q: want http, https or h2c", k, v)
			}
			tl.schemes[name] = p
			return nil
		}
		if key != "loadbalancer.server.port" || name == "" {
			return unsupportedTraefikLabel(k)
		}
		p, err := parsePort(v)
		if err != nil {
			return fmt.Errorf("label %s: %w", k, err)
		}
		tl.ports[name] = p
		return nil
	}
	rest, ok := strings.CutPrefix(lk, "traefik.http.routers.")
	name, key, _ := strings.Cut(rest, ".")
	if !ok || name == "" {
		return unsupportedTraefikLabel(k)
	}
	r := tl.routers[name]
	if r == nil {
		r = &traefikRouter{}
		tl.routers[name] = r
	}
	switch key {
	case "rule":
		r.rule = v
	case "service":
		r.service = strings.ToLower(v)
	case "entrypoints":
		eps, err := entryPointList(v)
		if err != nil {
			return fmt.Errorf("label %s: %w", k, err)
		}
		r.edge.EntryPoints = eps
	case "tls":
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("label %s: %q is not true or false", k, v)
		}
		r.tlsSet, r.tls = true, on
	case "tls.certresolver":
		name, err := route.ParseName(v)
		if err != nil {
			return fmt.Errorf("label %s: %w", k, err)
		}
		r.certResolver = name
	case "middlewares":
		for _, m := range strings.Split(v, ",") {
			if strings.Contains(m, "@") {
				return fmt.Errorf("label %s: %q names another provider's middleware; a container may only choose the operator's middleware sets (--middlewares-file) by name", k, strings.TrimSpace(m))
			}
		}
		mws, err := route.ParseMiddlewares(v)
		if err != nil {
			return fmt.Errorf("label %s: %w", k, err)
		}
		r.middlewares = mws
	default:
		return unsupportedTraefikLabel(k)
	}
	return nil
}

func unsupportedTraefikLabel(k string) error {
	return fmt.Errorf("label %s is not read by --traefik-labels, which reads traefik.enable, traefik.docker.network, routers' rule, entrypoints, tls, tls.certresolver, middlewares (the operator's sets) and service, and services' loadbalancer.server.port and scheme; a container may not define middlewares or proxy settings", k)
}

// spec turns the routers into one Spec: their targets, and the edge and
// middlewares they must agree on (dockroute gives a container one edge).
func (tl *traefikLabels) spec() (Spec, bool, error) {
	spec := Spec{Network: tl.network}
	services := tl.services()
	names := slices.Sorted(maps.Keys(tl.routers))
	for i, name := range names {
		r := tl.routers[name]
		if r.rule == "" {
			return spec, true, fmt.Errorf("router %s has no rule: dockroute does not apply Traefik's defaultRule; set traefik.http.routers.%s.rule=Host(`...`)", name, name)
		}
		rr, err := parseTraefikRule(r.rule)
		if err != nil {
			return spec, true, fmt.Errorf("label traefik.http.routers.%s.rule: %w", name, err)
		}
		svc, err := serviceOf(name, r, services)
		if err != nil {
			return spec, true, err
		}
		// No port set: the container's only exposed port, or 80, as
		// Traefik does.
		port, set := tl.ports[svc]
		unset := !set
		if unset {
			port = DefaultPort
		}
		proto := tl.schemes[svc]
		for _, h := range rr.Hosts {
			spec.Targets = append(spec.Targets, Target{Host: h, Path: rr.Path, Port: port, Unset: unset})
		}
		edge, err := r.routeEdge(name)
		if err != nil {
			return spec, true, err
		}
		if i == 0 {
			spec.Edge, spec.Middlewares, spec.Proto = edge, r.middlewares, proto
		} else if edge != spec.Edge || r.middlewares != spec.Middlewares || proto != spec.Proto {
			return spec, true, fmt.Errorf("routers %s and %s differ in entrypoints, tls, middlewares or scheme; dockroute gives a container's routes one setting: keep the TLS router, and let --traefik-redirect redirect plain HTTP", names[0], name)
		}
	}
	slices.SortFunc(spec.Targets, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Port, b.Port))
	})
	spec.Targets = slices.Compact(spec.Targets)
	for i := 1; i < len(spec.Targets); i++ {
		if a, b := spec.Targets[i-1], spec.Targets[i]; a.Host == b.Host && a.Path == b.Path {
			return spec, true, fmt.Errorf("%s%s is routed twice, to ports %d and %d", a.Host, a.Path, a.Port, b.Port)
		}
	}
	return spec, true, nil
}

// services lists the services the labels define (by port or scheme).
func (tl *traefikLabels) services() map[string]bool {
	services := map[string]bool{}
	for s := range tl.ports {
		services[s] = true
	}
	for s := range tl.schemes {
		services[s] = true
	}
	return services
}

// serviceOf names the service a router uses: its own, else the one the
// container defines ("" when none).
func serviceOf(name string, r *traefikRouter, services map[string]bool) (string, error) {
	switch {
	case r.service != "" && !services[r.service]:
		return "", fmt.Errorf("router %s names service %s, which no traefik.http.services.%s.loadbalancer.server label defines", name, r.service, r.service)
	case r.service != "":
		return r.service, nil
	case len(services) > 1:
		return "", fmt.Errorf("router %s names no service and the container defines %d; set traefik.http.routers.%s.service", name, len(services), name)
	}
	for s := range services {
		return s, nil
	}
	return "", nil
}

func (r *traefikRouter) routeEdge(name string) (route.Edge, error) {
	e := route.Edge{EntryPoints: r.edge.EntryPoints}
	switch {
	case r.tlsSet && r.tls, r.certResolver != "":
		e.TLS = route.TLSOn
	case r.tlsSet:
		e.TLS = route.TLSOff
	}
	if r.certResolver != "" && r.tlsSet && !r.tls {
		return e, fmt.Errorf("router %s sets tls.certresolver but tls=false", name)
	}
	e.CertResolver = r.certResolver
	return e, nil
}

// entryPointList canonicalizes a comma-separated list of entrypoints.
func entryPointList(v string) (string, error) {
	var names []string
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		name, err := route.ParseName(n)
		if err != nil {
			return "", err
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ","), nil
}
