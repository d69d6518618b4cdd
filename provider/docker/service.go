package docker

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/docker/docker/api/types/swarm"
	"github.com/dockroute/dockroute/provider/contract"
)

// fromService reduces a service and its tasks. networks names network IDs
// (the API gives virtual IPs by network ID).
func fromService(s swarm.Service, tasks []swarm.Task, networks map[string]string) contract.Service {
	svc := contract.Service{ID: s.ID, Name: s.Spec.Name, Created: s.CreatedAt, Labels: s.Spec.Labels,
		VIPs: map[string]netip.Addr{}, Published: map[uint16]uint16{}}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		svc.Env = cs.Env
	}
	for _, vip := range s.Endpoint.VirtualIPs {
		if name, ok := networks[vip.NetworkID]; ok {
			svc.VIPs[name] = prefixAddr(vip.Addr)
		}
	}
	for _, p := range s.Endpoint.Ports {
		if p.Protocol == swarm.PortConfigProtocolTCP && p.PublishedPort != 0 {
			svc.Published[uint16(p.TargetPort)] = uint16(p.PublishedPort)
		}
	}
	for _, t := range tasks {
		if t.ServiceID != s.ID || t.DesiredState != swarm.TaskStateRunning || t.Status.State != swarm.TaskStateRunning {
			continue
		}
		task := contract.Task{ID: t.ID, Addrs: map[string]netip.Addr{}}
		for _, na := range t.NetworksAttachments {
			if len(na.Addresses) > 0 {
				task.Addrs[na.Network.Spec.Name] = prefixAddr(na.Addresses[0])
			}
		}
		svc.Tasks = append(svc.Tasks, task)
	}
	slices.SortFunc(svc.Tasks, func(a, b contract.Task) int { return cmp.Compare(a.ID, b.ID) })
	return svc
}

// networkNames maps network IDs to names from what tasks are attached to.
func networkNames(tasks []swarm.Task) map[string]string {
	m := map[string]string{}
	for _, t := range tasks {
		for _, na := range t.NetworksAttachments {
			m[na.Network.ID] = na.Network.Spec.Name
		}
	}
	return m
}

// prefixAddr reads "10.0.1.5/24" (or a bare address).
func prefixAddr(s string) netip.Addr {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr()
	}
	a, _ := netip.ParseAddr(s)
	return a
}
