package caddy

import (
	"encoding/json"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/auth"
	mw "github.com/dockroute/dockroute/render/middleware"
)

// The built-in sets as Caddy handlers, with the meaning of their Traefik
// forms: HSTS only on responses over HTTPS, redirects that keep the
// scheme, path and query, drop the port, and answer 301 to GET and 308 to
// other methods.
var hsts = json.RawMessage(`{"handler":"subroute","routes":[{"match":[{"protocol":"https"}],"handle":[{"handler":"headers","response":{"set":{"Strict-Transport-Security":["max-age=31536000; includeSubDomains"]}}}]}]}`)

// redirect answers with a permanent redirect to host (a placeholder
// expression), keeping the scheme, path and query.
func redirect(host string) json.RawMessage {
	location := map[string][]string{"Location": {"{http.request.scheme}://" + host + "{http.request.uri}"}}
	respond := func(status int) map[string]any {
		return map[string]any{"handle": []any{map[string]any{"handler": "static_response", "status_code": status, "headers": location}}}
	}
	get := respond(301)
	get["match"] = []any{map[string]any{"method": []string{"GET"}}}
	raw, _ := json.Marshal(map[string]any{"handler": "subroute", "routes": []any{get, respond(308)}})
	return raw
}

// dropAuthorization keeps the credentials from the backend, as Traefik's
// removeHeader does: the backend trusts the proxy.
var dropAuthorization = json.RawMessage(`{"handler":"headers","request":{"delete":["Authorization"]}}`)

// guards returns the handlers a route runs before its own (its auth group,
// then its sets), or, when a set or group is missing from the operator's
// files (removed since the container was checked), why the route must
// fail closed.
func guards(r route.Route, opt Options) (hs []Handler, missing string) {
	if r.Auth != "" {
		users, ok := opt.Auth.Users(r.Auth)
		if !ok {
			return nil, "auth group " + r.Auth
		}
		hs = append(hs, Handler{Raw: basicAuth(r.Auth, users)}, Handler{Raw: dropAuthorization})
	}
	for _, set := range route.Middlewares(r.Middlewares) {
		switch set {
		case mw.HSTS:
			hs = append(hs, Handler{Raw: hsts})
			continue
		case mw.WWWRedirect:
			if !strings.HasPrefix(r.Host, "www.") && !route.IsWildcard(r.Host) {
				hs = append(hs, Handler{Raw: redirect("www.{http.request.host}")})
			}
			continue
		case mw.ApexRedirect:
			if apex, ok := strings.CutPrefix(r.Host, "www."); ok {
				hs = append(hs, Handler{Raw: redirect(apex)})
			}
			continue
		}
		s, ok := opt.Middlewares.Lookup(set)
		if !ok || len(s.Caddy) == 0 {
			return nil, "middleware " + set
		}
		for _, h := range s.Caddy {
			hs = append(hs, Handler{Raw: h})
		}
	}
	return hs, ""
}

// basicAuth is Caddy's http_basic authentication for a group. Caddy reads
// a hash starting with "$" as is; the hash cache spares a bcrypt
// comparison on every request of a known client.
func basicAuth(group string, users []auth.User) json.RawMessage {
	type account struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	accounts := make([]account, len(users))
	for i, u := range users {
		accounts[i] = account{u.Name, u.Hash}
	}
	raw, _ := json.Marshal(map[string]any{
		"handler": "authentication",
		"providers": map[string]any{"http_basic": map[string]any{
			"accounts": accounts, "hash": map[string]string{"algorithm": "bcrypt"}, "realm": group, "hash_cache": map[string]any{},
		}},
	})
	return raw
}
