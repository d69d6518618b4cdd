package contract

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func svc(labels map[string]string, tasks ...string) Service {
	s := Service{ID: "svc1", Name: "web", Labels: labels,
		VIPs:      map[string]netip.Addr{"front": netip.MustParseAddr("10.0.1.2"), "ingress": netip.MustParseAddr("10.255.0.5")},
		Published: map[uint16]uint16{8080: 30080}}
	for i, a := range tasks {
		s.Tasks = append(s.Tasks, Task{ID: string(rune('a' + i)), Addrs: map[string]netip.Addr{"front": netip.MustParseAddr(a), "ingress": netip.MustParseAddr("10.255.0.9")}})
	}
	return s
}

func verdictServers(v Verdict) []string {
	var out []string
	for _, b := range v.Backends {
		out = append(out, b.Server)
	}
	slices.Sort(out)
	return out
}

func TestDecideService(t *testing.T) {
	labels := map[string]string{"dockroute.host": "app.test", "dockroute.port": "8080"}
	if v := DecideService(svc(labels, "10.0.1.7", "10.0.1.8"), Options{}); !slices.Equal(verdictServers(v), []string{"10.0.1.2:8080"}) {
		t.Errorf("vip: %+v", v)
	}
	tasks := map[string]string{"dockroute.host": "app.test", "dockroute.port": "8080", "dockroute.lb": "tasks"}
	if v := DecideService(svc(tasks, "10.0.1.7", "10.0.1.8"), Options{}); !slices.Equal(verdictServers(v), []string{"10.0.1.7:8080", "10.0.1.8:8080"}) {
		t.Errorf("tasks: %+v", v)
	}
	if v := DecideService(svc(labels), Options{}); v.Routed() || v.Code != "no_tasks" || !v.Lifecycle {
		t.Errorf("no running task: %+v", v)
	}
	if v := DecideService(svc(labels, "10.0.1.7"), Options{Address: AddrPublished, Advertise: "192.0.2.1", Engine: "mgr"}); !slices.Equal(verdictServers(v), []string{"192.0.2.1:30080"}) {
		t.Errorf("published: %+v", v)
	}
	other := map[string]string{"dockroute.host": "app.test", "dockroute.port": "9000"}
	if v := DecideService(svc(other, "10.0.1.7"), Options{Address: AddrPublished, Advertise: "192.0.2.1"}); v.Code != "port_not_published" {
		t.Errorf("unpublished: %+v", v)
	}
	bad := map[string]string{"dockroute.host": "app.test", "dockroute.lb": "random"}
	if v := DecideService(svc(bad, "10.0.1.7"), Options{}); v.Code != "invalid_request" || !strings.Contains(v.Reason, "want vip or tasks") {
		t.Errorf("bad lb: %+v", v)
	}
	// The port rule applies to the published targets: one published, none set.
	if v := DecideService(svc(map[string]string{"dockroute.host": "app.test"}, "10.0.1.7"), Options{}); !slices.Equal(verdictServers(v), []string{"10.0.1.2:8080"}) {
		t.Errorf("default port: %+v", v)
	}
}
