package docker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
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
