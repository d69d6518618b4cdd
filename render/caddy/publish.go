package caddy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sync"

	"github.com/dockroute/dockroute/provider/route"
)

// maxConflicts bounds how often one push re-reads after a 412, so two
// writers fighting over the config cannot spin forever.
const maxConflicts = 5

// Publisher keeps dockroute's server in one Caddy equal to the last table it
// was given. It only ever writes at "/id/<ID>" or, when that server does not
// exist, creates the missing objects with PUT (which never replaces): the
// user's other servers, apps and admin block are never written.
type Publisher struct {
	admin *Admin
	opt   Options
	log   *slog.Logger

	mu     sync.Mutex
	pushed *Server // what Caddy last accepted; nil before the first push
	writes int     // config changes Caddy accepted (each one is a reload)
}

// NewPublisher returns a publisher for the Caddy behind admin.
func NewPublisher(admin *Admin, opt Options, log *slog.Logger) *Publisher {
	return &Publisher{admin: admin, opt: opt, log: log}
}

// Options returns the server options in use.
func (p *Publisher) Options() Options {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opt
}

// SetOptions changes the server options (a reloaded config); the next
// Publish applies them. The server's ID cannot change: it is how dockroute
// finds what it owns.
func (p *Publisher) SetOptions(opt Options) {
	p.mu.Lock()
	defer p.mu.Unlock()
	opt.ID = p.opt.ID
	p.opt = opt
}

// Writes is the number of config changes Caddy accepted from this publisher.
func (p *Publisher) Writes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes
}

// Publish makes Caddy serve t. If Caddy refuses the server, Publish finds
// the routes it refuses by bisection, logs Caddy's message for each and
// publishes all the others. It fails only when nothing could be published
// (Caddy unreachable, or refusing even a server without routes); Caddy then
// keeps its previous config and the caller retries.
func (p *Publisher) Publish(ctx context.Context, t route.Table) error {
	return p.publish(ctx, Render(t, p.Options()))
}

func (p *Publisher) publish(ctx context.Context, want Server) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.ensure(ctx, want)
	if !isRefusal(err) {
		return err
	}
	p.log.Warn("caddy refused dockroute's routes; looking for the route it refuses", "caddy_error", err)
	return p.publishAccepted(ctx, want)
}

// Check restores what was last published if Caddy lost it (restarted
// without --resume, a Caddyfile reload) or someone changed it. It costs one
// GET when all is well.
func (p *Publisher) Check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pushed == nil {
		return nil
	}
	return p.ensure(ctx, *p.pushed)
}

// ensure makes Caddy's copy of the server equal to want. Every write carries
// the ETag of what it read; on 412 someone changed the config in between,
// so it reads again and decides again.
func (p *Publisher) ensure(ctx context.Context, want Server) error {
	body := want.JSON()
	for attempt := 1; ; attempt++ {
		wrote, err := p.sync(ctx, body)
		if isStatus(err, http.StatusPreconditionFailed) && attempt < maxConflicts {
			p.log.Info("caddy config changed concurrently; re-reading", "attempt", attempt)
			continue
		}
		if err != nil {
			return err
		}
		p.pushed = &want
		if wrote {
			p.writes++
		}
		return nil
	}
}

// sync does one read and, if needed, one write. wrote tells whether Caddy
// accepted a change.
func (p *Publisher) sync(ctx context.Context, want []byte) (wrote bool, err error) {
	idPath := "/id/" + p.opt.ID
	cur, etag, err := p.admin.Get(ctx, idPath)
	if isStatus(err, http.StatusNotFound) {
		if p.pushed != nil {
			p.log.Warn("dockroute's server is gone from caddy (restarted without --resume, or its config was reloaded); restoring it", "id", p.opt.ID)
		}
		return true, p.create(ctx, want)
	}
	if err != nil {
		return false, err
	}
	if sameJSON(cur, want) {
		return false, nil
	}
	if p.pushed != nil && !sameJSON(cur, p.pushed.JSON()) {
		p.log.Warn("dockroute's server in caddy was changed by someone else; replacing it, as dockroute owns it", "id", p.opt.ID)
	}
	return true, p.admin.Send(ctx, http.MethodPatch, idPath, want, etag)
}

// create adds the server under apps.http.servers, creating whichever of
// apps, apps.http and apps.http.servers is missing, with PUT at the
// deepest existing level and the ETag of the whole config it inspected.
func (p *Publisher) create(ctx context.Context, server []byte) error {
	raw, etag, err := p.admin.Get(ctx, "/config/")
	if err != nil {
		return err
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return fmt.Errorf("caddy GET /config/: unreadable answer: %w", err)
	}
	method, path := http.MethodPut, "/config/"
	var value any = json.RawMessage(server)
	keys := []string{"apps", "http", "servers", p.opt.ID}
	level := root
	for i, k := range keys {
		next, ok := level[k]
		if !ok || next == nil {
			// Wrap the server in the objects missing from here down.
			for j := len(keys) - 1; j > i; j-- {
				value = map[string]any{keys[j]: value}
			}
			path += k
			break
		}
		if i == len(keys)-1 {
			return fmt.Errorf("caddy already has a server named %q that dockroute did not create (it has no \"@id\": %q); choose another --caddy-server", k, p.opt.ID)
		}
		m, isMap := next.(map[string]any)
		if !isMap {
			return fmt.Errorf("caddy config at %s%s is not an object", path, k)
		}
		level, path = m, path+k+"/"
	}
	if root == nil {
		// An empty Caddy (config null) has no key to PUT under; POST sets
		// the root. There is no admin block to lose: it had no config.
		method, path = http.MethodPost, "/config/"
	}
	body, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return p.admin.Send(ctx, method, path, body, etag)
}

// publishAccepted publishes every route Caddy accepts, finding refused ones
// by bisection: each refused route costs about log2(n) trial loads, and the
// good routes keep being served meanwhile.
func (p *Publisher) publishAccepted(ctx context.Context, want Server) error {
	proxied, fallback := want.Routes[:len(want.Routes)-1], want.Routes[len(want.Routes)-1]
	with := func(routes []Route) Server {
		s := want
		s.Routes = append(slices.Clone(routes), fallback)
		return s
	}
	if err := p.ensure(ctx, with(nil)); err != nil {
		p.log.Error("caddy refuses dockroute's server even without routes; check --caddy-listen and the rest of caddy's config", "caddy_error", err)
		return err
	}
	var accepted []Route
	var try func(chunk []Route) error
	try = func(chunk []Route) error {
		if len(chunk) == 0 {
			return nil
		}
		err := p.ensure(ctx, with(append(slices.Clone(accepted), chunk...)))
		switch {
		case err == nil:
			accepted = append(accepted, chunk...)
			return nil
		case !isRefusal(err):
			return err
		case len(chunk) == 1:
			p.log.Error("caddy refused the route; publishing the others without it", "hosts", chunk[0].Hosts(), "caddy_error", err)
			return nil
		}
		mid := len(chunk) / 2
		if err := try(chunk[:mid]); err != nil {
			return err
		}
		return try(chunk[mid:])
	}
	if err := try(proxied); err != nil {
		return err
	}
	return p.ensure(ctx, with(accepted))
}

// isRefusal tells whether Caddy rejected a config change as invalid (400 or
// 500 with its reason), as opposed to being unreachable or in conflict.
func isRefusal(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Method != http.MethodGet &&
		(e.Status == http.StatusBadRequest || e.Status == http.StatusInternalServerError)
}

func isStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// sameJSON compares two JSON documents by value: Caddy re-encodes what it
// stores, so bytes differ while meaning does not.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}
