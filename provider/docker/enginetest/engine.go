// Package enginetest is an in-process fake Docker Engine for fault
// injection: it implements the watcher's engine.Engine interface and can be
// made to refuse or drop event streams, fail one container's inspect, hang
// every call (a frozen engine), go away and come back with containers at
// new addresses (a restarting engine). A real engine cannot safely be made
// to do any of that on a shared test machine, which is the only reason this
// fake exists; everything a real engine can show is tested against one.
// It is used by tests only.
package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/go-connections/nat"
)

// ErrDown is what every call returns while the engine is down, as a client
// finds a socket nobody listens on.
var ErrDown = errors.New("Cannot connect to the Docker daemon: connection refused (fake engine is down)")

// Container is a container of the fake engine.
type Container struct {
	ID, Name    string
	Env         []string
	Labels      map[string]string
	IP          string   // its address on the "bridge" network
	Exposed     []string // e.g. "8080/tcp"
	State       string   // running (default), paused, exited
	Health      string   // "" (no healthcheck), starting, healthy, unhealthy
	StopSignal  string
	StopTimeout int       // seconds; 0: unset
	Created     time.Time // default: when Run was called
	Started     time.Time // default: Created
	// Published maps container ports to the host ports they are
	// published on (-p).
	Published map[uint16]uint16
}

// Engine is the fake engine. Its zero value is not usable: call New.
type Engine struct {
	mu         sync.Mutex
	containers map[string]*Container
	log        []events.Message
	streams    map[*stream]bool
	down       bool
	infoFails  int // the next Info calls that fail
	frozen     Gate
	refuse     error
	dropAfter  int
	inspectErr map[string]error
	vanish     map[string]bool
	hang       map[string]*Gate
	calls      map[string]int
	services   map[string]*Service // nil: not a swarm manager
	// Version and SystemInfo are what /version and /info answer: a
	// Docker 20.10 by default.
	Version    types.Version
	SystemInfo system.Info
	// LogLimit, when positive, bounds the events kept for replay
	// (since/until) to the latest LogLimit to 2×LogLimit, as a real engine
	// keeps only recent ones in memory; scale runs set it.
	LogLimit int
}

// New returns a running engine with no containers.
func New() *Engine {
	return &Engine{
		containers: map[string]*Container{}, streams: map[*stream]bool{},
		inspectErr: map[string]error{}, vanish: map[string]bool{}, calls: map[string]int{}, hang: map[string]*Gate{},
		dropAfter:  -1,
		Version:    types.Version{Version: "20.10.24", APIVersion: "1.41", MinAPIVersion: "1.12"},
		SystemInfo: system.Info{SecurityOptions: []string{"name=seccomp,profile=default"}},
	}
}

// Calls tells how often a method (Ping, ContainerList, ContainerInspect,
// Events) was called; "ContainerInspect ID" counts the inspects of one
// container.
func (e *Engine) Calls(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[method]
}

// Run adds a running container and emits its start. Missing fields get
// defaults: an ID from the name, state running, port 8080 exposed.
func (e *Engine) Run(c Container) string {
	if c.ID == "" {
		sum := sha256.Sum256([]byte(c.Name))
		c.ID = hex.EncodeToString(sum[:])
	}
	if c.State == "" {
		c.State = "running"
	}
	if c.Exposed == nil {
		c.Exposed = []string{"8080/tcp"}
	}
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	if c.Started.IsZero() {
		c.Started = c.Created
	}
	e.mu.Lock()
	e.containers[c.ID] = &c
	e.emitLocked(events.ContainerEventType, events.ActionStart, c.ID, nil)
	e.mu.Unlock()
	return c.ID
}

// Age moves every container's creation and every logged event back by d,
// as if the fleet had been running that long: a subscription's replay of
// the recent past then holds none of them, as on an engine whose
// containers started long before.
func (e *Engine) Age(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.containers {
		c.Created, c.Started = c.Created.Add(-d), c.Started.Add(-d)
	}
	for i := range e.log {
		e.log[i].TimeNano -= d.Nanoseconds()
		e.log[i].Time = e.log[i].TimeNano / 1e9
	}
}

// Kill emits a kill event with signal (a number, as Docker reports it);
// the container keeps running, as one that ignores the signal does.
func (e *Engine) Kill(id string, signal int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitLocked(events.ContainerEventType, events.ActionKill, id, map[string]string{"signal": strconv.Itoa(signal)})
}

// Exit makes a container exit and emits die.
func (e *Engine) Exit(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.containers[id].State = "exited"
	e.emitLocked(events.ContainerEventType, events.ActionDie, id, nil)
}

// Remove deletes a container and emits destroy.
func (e *Engine) Remove(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitLocked(events.ContainerEventType, events.ActionDestroy, id, nil)
	delete(e.containers, id)
}

// Delete deletes a container and emits nothing: what a watcher sees when
// the die and destroy of a removal have not reached it yet (held behind a
// slow inspect, or lost with a broken stream), which a real engine cannot
// be made to do on demand.
func (e *Engine) Delete(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.containers, id)
}

// Update changes a container in place, emitting nothing (a change Docker
// would announce with an event the test emits itself, if any).
func (e *Engine) Update(id string, f func(*Container)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.containers[id])
}

// Emit emits a container event.
func (e *Engine) Emit(id string, action events.Action, attrs map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitLocked(events.ContainerEventType, action, id, attrs)
}

// Down makes the engine unreachable, as a stopped or restarting dockerd
// is: every open event stream breaks and every call fails at once.
func (e *Engine) Down() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = true
	for s := range e.streams {
		s.end(io.ErrUnexpectedEOF)
	}
	clear(e.streams)
}

// Up makes the engine answer again.
func (e *Engine) Up() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = false
}

// Freeze makes every call, and every open stream, hang until Thaw, as a
// SIGSTOPped dockerd does: connections stay open and nothing is said.
func (e *Engine) Freeze() { e.frozen.Freeze() }

// Thaw undoes Freeze.
func (e *Engine) Thaw() { e.frozen.Thaw() }

// Gate holds its callers while frozen, as a SIGSTOPped process holds the
// requests sent to it. The zero value is open.
type Gate struct {
	mu     sync.Mutex
	thawed chan struct{} // nil unless frozen; closed on Thaw
}

// Freeze closes the gate.
func (g *Gate) Freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.thawed == nil {
		g.thawed = make(chan struct{})
	}
}

// Thaw opens the gate, letting everyone held through.
func (g *Gate) Thaw() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.thawed != nil {
		close(g.thawed)
		g.thawed = nil
	}
}

// Wait returns at once when the gate is open, else when it opens or ctx
// ends (with ctx's error).
func (g *Gate) Wait(ctx context.Context) error {
	g.mu.Lock()
	thawed := g.thawed
	g.mu.Unlock()
	if thawed == nil {
		return nil
	}
	select {
	case <-thawed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RefuseEvents makes event subscriptions fail with err (nil: accept them).
func (e *Engine) RefuseEvents(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refuse = err
}

// DropStreamsAfter makes every new event stream break after n events
// (0: at once; negative: never).
func (e *Engine) DropStreamsAfter(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropAfter = n
}

// FailInfo makes the next n /info calls fail, as a rootless Podman's
// first /info can time out while it sets its storage up.
func (e *Engine) FailInfo(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.infoFails = n
}

// FailInspect makes inspecting id fail with err (nil: succeed again).
func (e *Engine) FailInspect(id string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		delete(e.inspectErr, id)
	} else {
		e.inspectErr[id] = err
	}
}

// HangInspect makes inspects of id wait for g to open (or their
// deadline), as on an engine too loaded to answer them; nil undoes it.
func (e *Engine) HangInspect(id string, g *Gate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g == nil {
		delete(e.hang, id)
	} else {
		e.hang[id] = g
	}
}

// EmitNetwork emits a network event about container id (connect,
// disconnect): as Docker's, it names the container and the network only.
func (e *Engine) EmitNetwork(id string, action events.Action) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitLocked(events.NetworkEventType, action, "bridge-network-id", map[string]string{"container": id, "name": "bridge", "type": "bridge"})
}

// VanishOnInspect makes id disappear the moment it is inspected, as a
// container removed between a list and an inspect does.
func (e *Engine) VanishOnInspect(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.vanish[id] = true
}

// enter counts a call and applies the engine's state to it: it waits out a
// freeze (or ctx) and fails while the engine is down.
func (e *Engine) enter(ctx context.Context, method string) error {
	e.mu.Lock()
	e.calls[method]++
	e.mu.Unlock()
	if err := e.frozen.Wait(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return ErrDown
	}
	return ctx.Err()
}

// Ping answers /_ping.
func (e *Engine) Ping(ctx context.Context) (types.Ping, error) {
	if err := e.enter(ctx, "Ping"); err != nil {
		return types.Ping{}, err
	}
	return types.Ping{APIVersion: e.versions().APIVersion}, nil
}

// Current makes the engine answer as Docker 29 does (API 1.52, refusing
// clients below 1.44), in 1.52's shapes over Handler.
func (e *Engine) Current() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Version = types.Version{Version: "29.1.2", APIVersion: "1.52", MinAPIVersion: "1.44"}
}

// healthOf is a container's health ("": no healthcheck).
func (e *Engine) healthOf(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.containers[id]; ok {
		return c.Health
	}
	return ""
}

// ServerVersion answers /version.
func (e *Engine) ServerVersion(ctx context.Context) (types.Version, error) {
	if err := e.enter(ctx, "ServerVersion"); err != nil {
		return types.Version{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.Version, nil
}

// ContainerList lists running and paused containers (opts.All: all).
func (e *Engine) ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error) {
	if err := e.enter(ctx, "ContainerList"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []container.Summary
	for _, id := range slices.Sorted(maps.Keys(e.containers)) {
		c := e.containers[id]
		if !opts.All && c.State != "running" && c.State != "paused" || !c.matches(opts.Filters) {
			continue
		}
		s := container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Created: c.Created.Unix(), State: container.ContainerState(c.State), Status: c.status(),
			Labels: c.Labels, NetworkSettings: &container.NetworkSettingsSummary{Networks: c.networks()}}
		s.HostConfig.NetworkMode = "bridge"
		c.fillSummary(&s)
		for p, hp := range c.Published {
			s.Ports = append(s.Ports, container.Port{PrivatePort: p, PublicPort: hp, Type: "tcp"})
		}
		out = append(out, s)
	}
	return out, nil
}

// ContainerInspect inspects a container by ID or name.
func (e *Engine) ContainerInspect(ctx context.Context, ref string) (container.InspectResponse, error) {
	e.mu.Lock()
	e.calls["ContainerInspect "+ref]++
	e.mu.Unlock()
	if err := e.enter(ctx, "ContainerInspect"); err != nil {
		return container.InspectResponse{}, err
	}
	e.mu.Lock()
	g := e.hang[ref]
	e.mu.Unlock()
	if g != nil {
		if err := g.Wait(ctx); err != nil {
			return container.InspectResponse{}, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(ref)
	if c == nil {
		return container.InspectResponse{}, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	if err := e.inspectErr[c.ID]; err != nil {
		return container.InspectResponse{}, err
	}
	if e.vanish[c.ID] {
		e.emitLocked(events.ContainerEventType, events.ActionDestroy, c.ID, nil)
		delete(e.containers, c.ID)
		return container.InspectResponse{}, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	ports := nat.PortSet{}
	for _, p := range c.Exposed {
		ports[nat.Port(p)] = struct{}{}
	}
	var timeout *int
	if c.StopTimeout > 0 {
		timeout = &c.StopTimeout
	}
	in := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.ID, Name: "/" + c.Name, Created: c.Created.Format(time.RFC3339Nano),
			State:      c.state(),
			HostConfig: realisticHostConfig()},
		Config: &container.Config{Env: c.Env, Labels: c.Labels, ExposedPorts: ports,
			StopSignal: c.StopSignal, StopTimeout: timeout},
		NetworkSettings: &container.NetworkSettings{Networks: c.networks(), NetworkSettingsBase: container.NetworkSettingsBase{Ports: c.portMap()}},
	}
	c.fill(&in)
	return in, nil
}

func (e *Engine) find(ref string) *Container {
	if c, ok := e.containers[ref]; ok {
		return c
	}
	for _, c := range e.containers {
		if c.Name == ref || strings.HasPrefix(c.ID, ref) {
			return c
		}
	}
	return nil
}

func (c *Container) state() *container.State {
	st := &container.State{Status: container.ContainerState(c.State), Running: c.State == "running", Paused: c.State == "paused", StartedAt: c.Started.Format(time.RFC3339Nano)}
	if c.Health != "" {
		st.Health = &container.Health{Status: container.HealthStatus(c.Health)}
	}
	return st
}

// matches applies the list filters dockroute uses: every label filter, a
// status filter (as Podman is asked), and any network filter (the fake's
// only network is "bridge").
func (c *Container) matches(f filters.Args) bool {
	for _, l := range f.Get("label") {
		k, v, hasValue := strings.Cut(l, "=")
		if got, ok := c.Labels[k]; !ok || hasValue && got != v {
			return false
		}
	}
	if st := f.Get("status"); len(st) > 0 && !slices.Contains(st, c.State) {
		return false
	}
	nets := f.Get("network")
	return len(nets) == 0 || slices.Contains(nets, "bridge")
}

func (c *Container) portMap() nat.PortMap {
	m := nat.PortMap{}
	for p, hp := range c.Published {
		m[nat.Port(strconv.Itoa(int(p))+"/tcp")] = []nat.PortBinding{{HostIP: "0.0.0.0", HostPort: strconv.Itoa(int(hp))}}
	}
	return m
}

func (c *Container) networks() map[string]*network.EndpointSettings {
	return map[string]*network.EndpointSettings{"bridge": c.endpoint()}
}

// status is the list's status line, which carries the health as a real
// engine's does ("Up 2 hours (healthy)").
func (c *Container) status() string {
	switch c.Health {
	case "":
		return "Up 2 hours"
	case "starting":
		return "Up 2 hours (health: starting)"
	}
	return "Up 2 hours (" + c.Health + ")"
}

// Events streams the events matching opts: the past ones from opts.Since
// first, then, unless opts.Until has passed, live ones.
func (e *Engine) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	msgs, errs := make(chan events.Message), make(chan error, 1)
	if err := e.enter(ctx, "Events"); err != nil {
		errs <- err
		return msgs, errs
	}
	since, until := parseTime(opts.Since), parseTime(opts.Until)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refuse != nil {
		errs <- e.refuse
		return msgs, errs
	}
	s := &stream{ctx: ctx, msgs: msgs, errs: errs, filter: opts.Filters, left: e.dropAfter, wake: make(chan struct{}, 1), engine: e}
	for _, m := range e.log {
		at := time.Unix(0, m.TimeNano)
		if (since.IsZero() || !at.Before(since)) && (until.IsZero() || !at.After(until)) {
			s.push(m)
		}
	}
	if !until.IsZero() && !until.After(time.Now()) {
		s.final = io.EOF
	} else {
		e.streams[s] = true
	}
	go s.run()
	return msgs, errs
}

func (e *Engine) emitLocked(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	if c := e.containers[id]; typ == events.ContainerEventType && c != nil {
		// As Docker does: a container event carries the container's
		// labels, name and image beside its own attributes.
		all := map[string]string{"name": c.Name, "image": "fake"}
		maps.Copy(all, c.Labels)
		maps.Copy(all, attrs)
		attrs = all
	}
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}, Time: now.Unix(), TimeNano: now.UnixNano()}
	e.log = append(e.log, m)
	if e.LogLimit > 0 && len(e.log) > 2*e.LogLimit {
		e.log = slices.Clone(e.log[len(e.log)-e.LogLimit:])
	}
	for s := range e.streams {
		s.push(m)
	}
}

// stream is one event subscription.
type stream struct {
	ctx    context.Context
	msgs   chan events.Message
	errs   chan error
	filter filters.Args
	engine *Engine

	mu    sync.Mutex
	queue []events.Message
	left  int   // events before the stream breaks; negative: never
	final error // ends the stream once the queue is sent
	wake  chan struct{}
}

func (s *stream) push(m events.Message) {
	action := string(m.Action)
	if a, _, ok := strings.Cut(action, ": "); ok {
		action = a // Docker matches "health_status: healthy" as health_status
	}
	if !s.filter.ExactMatch("type", string(m.Type)) || !s.filter.ExactMatch("event", action) {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, m)
	s.mu.Unlock()
	s.poke()
}

// end breaks the stream: what was not delivered yet is lost, as on a
// connection that drops.
func (s *stream) end(err error) {
	s.mu.Lock()
	s.queue, s.final = nil, err
	s.mu.Unlock()
	s.poke()
}

func (s *stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers the queue, honouring freezes, drops and the end.
func (s *stream) run() {
	defer close(s.errs)
	defer func() {
		s.engine.mu.Lock()
		delete(s.engine.streams, s)
		s.engine.mu.Unlock()
	}()
	for {
		if err := s.engine.frozen.Wait(s.ctx); err != nil {
			s.errs <- err
			return
		}
		s.mu.Lock()
		var next *events.Message
		if len(s.queue) > 0 && s.left != 0 {
			next = &s.queue[0]
			s.queue = s.queue[1:]
			if s.left > 0 {
				s.left--
			}
		}
		final := s.final
		if s.left == 0 && final == nil {
			final = io.ErrUnexpectedEOF
		}
		s.mu.Unlock()
		switch {
		case next != nil:
			select {
			case s.msgs <- *next:
			case <-s.ctx.Done():
				s.errs <- s.ctx.Err()
				return
			}
		case final != nil:
			s.errs <- final
			return
		default:
			select {
			case <-s.wake:
			case <-s.ctx.Done():
				s.errs <- s.ctx.Err()
				return
			}
		}
	}
}

// parseTime reads the API's "seconds[.nanoseconds]"; zero when empty.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(sec, 10, 64)
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(n, ns)
}
