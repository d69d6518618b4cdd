package enginetest

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// Service is a swarm service of the fake engine, with its running tasks'
// addresses on its one network.
type Service struct {
	ID, Name string
	Labels   map[string]string
	Network  string
	VIP      string
	Tasks    []string // running tasks' addresses
}

// Manager makes the engine a swarm manager (its Info says so).
func (e *Engine) Manager() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.services == nil {
		e.services = map[string]*Service{}
	}
}

// SetService creates or replaces a service and emits its event (create or
// update). Tasks that change without the service changing (on another
// node) are set with SetTasks, which emits nothing, as a real engine does.
func (e *Engine) SetService(s Service) {
	e.mu.Lock()
	defer e.mu.Unlock()
	action := events.ActionUpdate
	if _, ok := e.services[s.ID]; !ok {
		action = events.ActionCreate
	}
	e.services[s.ID] = &s
	e.emitLocked(events.ServiceEventType, action, s.ID, map[string]string{"name": s.Name})
}

// SetTasks changes a service's running tasks, emitting nothing.
func (e *Engine) SetTasks(id string, addrs ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.services[id].Tasks = addrs
}

// RemoveService removes a service and emits its event.
func (e *Engine) RemoveService(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.services, id)
	e.emitLocked(events.ServiceEventType, events.ActionRemove, id, nil)
}

// Info answers /info (SystemInfo), saying whether the engine is a swarm
// manager.
func (e *Engine) Info(ctx context.Context) (system.Info, error) {
	if err := e.enter(ctx, "Info"); err != nil {
		return system.Info{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.infoFails > 0 {
		e.infoFails--
		return system.Info{}, context.DeadlineExceeded
	}
	info := e.SystemInfo
	if e.services != nil {
		info.Swarm.LocalNodeState, info.Swarm.ControlAvailable = swarm.LocalNodeStateActive, true
	}
	return info, nil
}

// ServiceList lists the services (filter id honoured).
func (e *Engine) ServiceList(ctx context.Context, opts swarm.ServiceListOptions) ([]swarm.Service, error) {
	if err := e.enter(ctx, "ServiceList"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []swarm.Service
	for _, id := range slices.Sorted(maps.Keys(e.services)) {
		s := e.services[id]
		if ids := opts.Filters.Get("id"); len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		svc := swarm.Service{ID: s.ID}
		svc.Spec.Name, svc.Spec.Labels = s.Name, s.Labels
		svc.Endpoint.VirtualIPs = []swarm.EndpointVirtualIP{{NetworkID: "net-" + s.Network, Addr: s.VIP + "/24"}}
		out = append(out, svc)
	}
	return out, nil
}

// TaskList lists running tasks (filter service honoured; an unknown
// service is an error, as on a real engine).
func (e *Engine) TaskList(ctx context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error) {
	if err := e.enter(ctx, "TaskList"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	want := opts.Filters.Get("service")
	for _, id := range want {
		if _, ok := e.services[id]; !ok {
			return nil, fmt.Errorf("service %s not found: %w", id, errdefs.ErrNotFound)
		}
	}
	var out []swarm.Task
	for _, id := range slices.Sorted(maps.Keys(e.services)) {
		s := e.services[id]
		if len(want) > 0 && !slices.Contains(want, id) {
			continue
		}
		for i, addr := range s.Tasks {
			t := swarm.Task{ID: fmt.Sprintf("%s.%d", id, i), ServiceID: id, DesiredState: swarm.TaskStateRunning}
			t.Status.State = swarm.TaskStateRunning
			na := swarm.NetworkAttachment{Addresses: []string{addr + "/24"}}
			na.Network.ID, na.Network.Spec.Name = "net-"+s.Network, s.Network
			t.NetworksAttachments = []swarm.NetworkAttachment{na}
			out = append(out, t)
		}
	}
	return out, nil
}
