package traefik

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/auth"
	mw "github.com/dockroute/dockroute/render/middleware"
)

// The built-in sets' Traefik definitions. The redirects keep the scheme,
// path and query and drop the port (the target host is served on the
// default ports); Traefik answers 301 to GET and 308 to other methods.
var builtins = map[string]json.RawMessage{
	mw.HSTS:         json.RawMessage(`{"headers":{"stsIncludeSubdomains":true,"stsSeconds":31536000}}`),
	mw.WWWRedirect:  json.RawMessage(`{"redirectRegex":{"permanent":true,"regex":"^(https?)://([^/:]+)(?::[0-9]+)?(.*)$","replacement":"${1}://www.${2}${3}"}}`),
	mw.ApexRedirect: json.RawMessage(`{"redirectRegex":{"permanent":true,"regex":"^(https?)://www\\.([^/:]+)(?::[0-9]+)?(.*)$","replacement":"${1}://${2}${3}"}}`),
}

// setPrefix starts the names of the middlewares dockroute writes for the
// operator's sets: dockroute-mw-NAME-I for a set's I-th definition. A set
// name ends in a letter or digit and I is digits, so names never collide.
const setPrefix = NamePrefix + "mw-"

// authPrefix starts the names of basic-auth middlewares, one per group.
const authPrefix = NamePrefix + "auth-"

// guards returns the middlewares a route runs through, in order (its auth
// group, then its sets), adding the definitions to h. A set or group
// missing from the operator's files (removed since the container was
// checked) is named with a ".missing" suffix, which nothing defines (the
// names dockroute writes hold no dot): Traefik then refuses the router, so
// the route fails closed instead of running without its protection.
func guards(h *httpConfig, r route.Route, opt Options) []string {
	var names []string
	if r.Auth != "" {
		names = append(names, authMiddleware(h, r.Auth, opt.Auth))
	}
	for _, set := range route.Middlewares(r.Middlewares) {
		names = append(names, setMiddlewares(h, set, r.Host, opt.Middlewares)...)
	}
	return names
}

func authMiddleware(h *httpConfig, group string, groups *auth.Groups) string {
	name := authPrefix + group
	users, ok := groups.Users(group)
	if !ok {
		return name + ".missing"
	}
	if _, done := h.Middlewares[name]; done {
		return name
	}
	var def struct {
		BasicAuth struct {
			Users        []string `json:"users"`
			Realm        string   `json:"realm"`
			RemoveHeader bool     `json:"removeHeader"`
		} `json:"basicAuth"`
	}
	for _, u := range users {
		def.BasicAuth.Users = append(def.BasicAuth.Users, u.Name+":"+u.Hash)
	}
	// The backend never sees the credentials; it trusts the proxy.
	def.BasicAuth.Realm, def.BasicAuth.RemoveHeader = group, true
	raw, _ := json.Marshal(def)
	h.Middlewares[name] = middleware{Raw: raw}
	return name
}

func setMiddlewares(h *httpConfig, set, host string, c *mw.Catalog) []string {
	if def, ok := builtins[set]; ok {
		if !builtinApplies(set, host) {
			return nil
		}
		name := setPrefix + set
		h.Middlewares[name] = middleware{Raw: def}
		return []string{name}
	}
	s, ok := c.Lookup(set)
	if !ok || len(s.Traefik) == 0 {
		return []string{setPrefix + set + ".missing"}
	}
	names := make([]string, 0, len(s.Traefik))
	for i, m := range s.Traefik {
		if m.Ref != "" {
			names = append(names, m.Ref)
			continue
		}
		name := setPrefix + set + "-" + strconv.Itoa(i)
		h.Middlewares[name] = middleware{Raw: m.Def}
		names = append(names, name)
	}
	return names
}

// builtinApplies tells whether a built-in set does anything on host: the
// redirects act on exact hosts without (www-redirect) or with
// (apex-redirect) the www. label.
func builtinApplies(set, host string) bool {
	www := strings.HasPrefix(host, "www.")
	switch set {
	case mw.WWWRedirect:
		return !www && !route.IsWildcard(host)
	case mw.ApexRedirect:
		return www
	}
	return true
}
