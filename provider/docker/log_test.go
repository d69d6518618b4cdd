package docker

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/enginetest"
	"github.com/dockroute/dockroute/provider/route"
)

// Routes are objects in JSON logs and readable text in text logs.
func TestLogRoutes(t *testing.T) {
	rs := logRoutes{{Host: "a.test", Path: "/api", Server: "10.0.0.2:8080"}, {Host: "b.test", Server: "10.0.0.3:80"}}
	var js, txt bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("routed", "routes", rs)
	slog.New(slog.NewTextHandler(&txt, nil)).Info("routed", "routes", rs)
	if want := `"routes":[{"host":"a.test","path":"/api","server":"10.0.0.2:8080"},{"host":"b.test","server":"10.0.0.3:80"}]`; !strings.Contains(js.String(), want) {
		t.Errorf("JSON: %s\nwant %s", js.String(), want)
	}
	if want := `routes="a.test/api -> 10.0.0.2:8080, b.test -> 10.0.0.3:80"`; !strings.Contains(txt.String(), want) {
		t.Errorf("text: %s\nwant %s", txt.String(), want)
	}
}

// A publish after a full sync logs the first routedLines routed
// containers at Info, the rest at Debug with one line counting them;
// every container that is not routed gets its warning, and a start after
// the sync its Info line at the next publish.
func TestSyncBoundsRoutedLines(t *testing.T) {
	e := enginetest.New()
	const routed, broken = routedLines + 10, 3
	for i := range routed {
		e.Run(app(fmt.Sprintf("a%d", i), fmt.Sprintf("10.0.1.%d", i+1)))
	}
	for i := range broken {
		e.Run(enginetest.Container{Name: fmt.Sprintf("bad%d", i), IP: fmt.Sprintf("10.0.2.%d", i+1), Env: []string{"VIRTUALHOST=bad_host!", "PORT=8080"}})
	}
	e.Age(time.Hour) // long running: the sync, not their start events, finds them
	f, rec := fleetOf(t, 0, map[string]*enginetest.Engine{"local": e})
	waitFleet(t, f, 5*time.Second, "a0.test", "10.0.1.1:8080")
	if _, ok := f.Changes(); !ok {
		t.Fatal("the fleet is not publishable after its sync")
	}
	if got := rec.count("INFO routed more containers count=10"); got != 1 {
		t.Errorf("the count of quiet routed lines was logged %d times, want once:\n%s", got, rec)
	}
	if got := rec.count("INFO routed container="); got != routedLines {
		t.Errorf("the sync logged %d routed containers at Info, want %d", got, routedLines)
	}
	if got := rec.count("DEBUG routed container="); got != routed-routedLines {
		t.Errorf("the sync logged %d routed containers at Debug, want %d", got, routed-routedLines)
	}
	if got := rec.count("WARN not routed"); got != broken {
		t.Errorf("%d not-routed warnings, want one per broken container (%d)", got, broken)
	}

	e.Run(app("late", "10.0.3.1"))
	waitFleet(t, f, 5*time.Second, "late.test", "10.0.3.1:8080")
	f.Changes()
	if got := rec.count("INFO routed container=late"); got != 1 {
		t.Errorf("a start after the sync logged %d Info lines, want 1", got)
	}
}

// A container with many routes, or a long reason, makes a bounded line.
func TestLogLinesAreBounded(t *testing.T) {
	var rs logRoutes
	for i := range 500 {
		rs = append(rs, route.Backend{Host: fmt.Sprintf("h%d.test", i), Path: "/" + strings.Repeat("p", 3000), Server: "10.0.0.2:80"})
	}
	var js, txt bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("routed", "routes", rs, "reason", cut(strings.Repeat("r", 20000), logValueMax))
	slog.New(slog.NewTextHandler(&txt, nil)).Info("routed", "routes", rs, "reason", cut(strings.Repeat("r", 20000), logValueMax))
	for name, line := range map[string]string{"JSON": js.String(), "text": txt.String()} {
		if len(line) > 8000 || !strings.Contains(line, "and 490 more") || !strings.Contains(line, "(18976 more bytes)") {
			t.Errorf("%s line of %d bytes: %.300s", name, len(line), line)
		}
	}
}
