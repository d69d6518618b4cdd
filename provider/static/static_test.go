package static

import (
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
)

func TestParse(t *testing.T) {
	data := `routes:
  legacy.example.com:
    - http://10.0.0.5:8080
    - http://legacy-2.internal
  Example.com/api/: http://[fd00::7]:9000/
  bad_host.example.com: [http://10.0.0.1]
  tls.example.com: [https://10.0.0.1]
  grpc.example.com: h2c://10.0.0.2:50051
  mixed.example.com: [http://10.0.0.1, https://10.0.0.2]
  ftp.example.com: ftp://10.0.0.1
  other.example.com: {x: 1}
  evil.example.com: "http://a.com` + "`" + `) || Host(` + "`" + `b.com"
`
	backends, problems, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []route.Backend{
		{Name: Name, Host: "legacy.example.com", Server: "10.0.0.5:8080"},
		{Name: Name, Host: "legacy.example.com", Server: "legacy-2.internal:80"},
		{Name: Name, Host: "example.com", Path: "/api", Server: "[fd00::7]:9000"},
		{Name: Name, Host: "tls.example.com", Server: "10.0.0.1:443", Proto: "https"},
		{Name: Name, Host: "grpc.example.com", Server: "10.0.0.2:50051", Proto: "h2c"},
	}
	if len(backends) != len(want) {
		t.Fatalf("backends %+v", backends)
	}
	for i := range want {
		if backends[i] != want[i] {
			t.Errorf("backend %d = %+v, want %+v", i, backends[i], want[i])
		}
	}
	var lines []int
	for _, p := range problems {
		lines = append(lines, p.Line)
	}
	if len(problems) != 5 || lines[0] != 6 || lines[1] != 9 || lines[2] != 10 || lines[4] != 12 {
		t.Fatalf("problems %v", problems)
	}
}

func TestParseRefusesWholeFile(t *testing.T) {
	for data, want := range map[string]string{
		"routes: [":                       "did not find",
		"route:\n  a.com: http://1.2.3.4": "line 1: unknown key \"route\"",
		"- a":                             "want a mapping",
	} {
		if _, _, err := Parse([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) err = %v, want %q", data, err, want)
		}
	}
	if bs, _, err := Parse([]byte("")); err != nil || len(bs) != 0 {
		t.Errorf("empty file: %v %v", bs, err)
	}
}

func TestMergeStaticWins(t *testing.T) {
	static := []route.Backend{{Name: Name, Host: "a.com", Server: "10.0.0.1:80"}}
	containers := []route.Backend{{Name: "c1", Host: "a.com", Server: "172.17.0.2:80"}, {Name: "c1", Host: "a.com", Path: "/x", Server: "172.17.0.2:80"}}
	merged, over := Merge(static, containers)
	if len(merged) != 2 || len(over) != 1 || over[0].Path != "" {
		t.Fatalf("merged %+v overridden %+v", merged, over)
	}
}

// FuzzParse: whatever the file, Parse does not panic and every backend it
// returns is canonical. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		backends, _, err := Parse(data)
		if err != nil {
			return
		}
		for _, b := range backends {
			if h, err := route.ParseHost(b.Host); err != nil || h != b.Host {
				t.Fatalf("non-canonical host %q", b.Host)
			}
			if p, err := route.ParsePath(b.Path); err != nil || p != b.Path {
				t.Fatalf("non-canonical path %q", b.Path)
			}
			if strings.ContainsAny(b.Server, "`\"' {}\n") {
				t.Fatalf("unsafe server %q", b.Server)
			}
		}
	})
}
