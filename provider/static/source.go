package static

import (
	"log/slog"

	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/provider/watchfile"
)

// Source is the routes file kept loaded.
type Source = watchfile.Source[[]route.Backend]

// NewSource returns a source for the routes file at path; call Load, then
// Run. Bad entries are logged and skipped; a file that is not YAML keeps
// the previous routes.
func NewSource(path string, log *slog.Logger) *Source {
	return watchfile.NewSource(path, "routes file", func(data []byte) ([]route.Backend, error) {
		backends, problems, err := Parse(data)
		if err != nil {
			return nil, err
		}
		for _, p := range problems {
			log.Warn("routes file entry skipped", "file", path, "line", p.Line, "key", p.Key, "reason", p.Reason)
		}
		log.Info("routes file loaded", "file", path, "backends", len(backends), "skipped", len(problems))
		return backends, nil
	}, log)
}
