package docker

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dockroute/dockroute/provider/route"
)

// logRoutes is a log attribute for a container's routes: structured
// objects in JSON logs, "host/path -> server" in text logs.
type logRoutes []route.Backend

// logRoutesMax bounds the routes one log line lists (and logValueMax the
// length of a reason or note): a container with 5,000 hosts made a log
// line of 184 KB. explain shows everything.
const (
	logRoutesMax = 10
	logValueMax  = 1024
)

func (rs logRoutes) MarshalText() ([]byte, error) {
	shown := rs[:min(len(rs), logRoutesMax)]
	parts := make([]string, len(shown))
	for i, b := range shown {
		parts[i] = cut(b.Host+b.Path, logValueMax/4) + " -> " + b.Server
	}
	if more := len(rs) - len(shown); more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more (dockroute explain lists them all)", more))
	}
	return []byte(strings.Join(parts, ", ")), nil
}

// cut shortens s to about max bytes for a log line, saying how much was
// left out.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s… (%d more bytes)", strings.ToValidUTF8(s[:max], ""), len(s)-max)
}

func (rs logRoutes) MarshalJSON() ([]byte, error) {
	type out struct {
		Host   string `json:"host"`
		Path   string `json:"path,omitempty"`
		Server string `json:"server"`
	}
	shown := rs[:min(len(rs), logRoutesMax)]
	list := make([]out, len(shown), len(shown)+1)
	for i, b := range shown {
		list[i] = out{b.Host, cut(b.Path, logValueMax/4), b.Server}
	}
	if more := len(rs) - len(shown); more > 0 {
		list = append(list, out{Host: fmt.Sprintf("and %d more (dockroute explain lists them all)", more)})
	}
	return json.Marshal(list)
}
