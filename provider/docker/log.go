package docker

import (
	"encoding/json"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
)

// logRoutes is a log attribute for a container's routes: structured
// objects in JSON logs, "host/path -> server" in text logs.
type logRoutes []route.Backend

func (rs logRoutes) MarshalText() ([]byte, error) {
	parts := make([]string, len(rs))
	for i, b := range rs {
		parts[i] = b.Host + b.Path + " -> " + b.Server
	}
	return []byte(strings.Join(parts, ", ")), nil
}

func (rs logRoutes) MarshalJSON() ([]byte, error) {
	type out struct {
		Host   string `json:"host"`
		Path   string `json:"path,omitempty"`
		Server string `json:"server"`
	}
	list := make([]out, len(rs))
	for i, b := range rs {
		list[i] = out{b.Host, b.Path, b.Server}
	}
	return json.Marshal(list)
}
