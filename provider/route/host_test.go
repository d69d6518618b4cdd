package route

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	good := map[string]string{
		"hello.local":                    "hello.local",
		"Hello.LOCAL":                    "hello.local",
		"localhost":                      "localhost",
		"a-b.c1.example":                 "a-b.c1.example",
		"*.example.com":                  "*.example.com",
		"*.Example.Com":                  "*.example.com",
		"1.2.3.example":                  "1.2.3.example",
		"a.123abc":                       "a.123abc",
		"0xfoo.com":                      "0xfoo.com",
		"xn--bcher-kva.ch":               "xn--bcher-kva.ch",
		strings.Repeat("a", 63) + ".com": strings.Repeat("a", 63) + ".com",
	}
	for in, want := range good {
		got, err := ParseHost(in)
		if err != nil || got != want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", ".", "a..b", ".a", "a.", "-a.com", "a-.com", "a_b.com", "a b", "a.com/x",
		"*", "*.", "a.*.com", "**.a.com", "*a.com", "a.com`) || Host(`b.com",
		"{{ env \"HOME\" }}", "a\nb", "a.com:80", "ümlaut.de", "a'b", "a\"b",
		// Letters that Unicode lower-cases to ASCII: the Kelvin sign (K)
		// and the dotted capital I would pass as k and i after ToLower.
		"\u212Aelvin.test", "\u0130.test",
		strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "ab",
		// IP literals, as browsers read them: a numeric last label.
		"1.2.3.4", "127.0.0.1", "127.1", "0x7f.1", "0x7f000001", "*.10.0.0", "2130706433",
	}
	for _, in := range bad {
		if got, err := ParseHost(in); err == nil {
			t.Errorf("ParseHost(%q) = %q, want an error", in, got)
		}
	}
	if _, err := ParseHost("127.0.0.1"); err == nil || !strings.Contains(err.Error(), "is an IP address, not a host name") {
		t.Errorf("an IP literal is refused without saying why: %v", err)
	}
}

func TestBuildGroupsSortsAndDedups(t *testing.T) {
	a := "172.17.0.3:8080"
	b := "172.17.0.2:8080"
	got := Build([]Backend{
		{Name: "x", Host: "b.local", Server: a},
		{Name: "x", Host: "a.local", Path: "/api", Strip: true, Server: a},
		{Name: "x", Host: "a.local", Server: a},
		{Name: "y", Host: "a.local", Server: b},
		{Name: "z", Host: "a.local", Server: b},               // same address twice
		{Name: "w", Host: "a.local", Path: "/api", Server: b}, // disagrees on Strip; "w" sorts first
	})
	want := Table{Routes: []Route{
		{Host: "a.local", Servers: []string{b, a}},
		{Host: "a.local", Path: "/api", Strip: false, Servers: []string{b, a}},
		{Host: "b.local", Servers: []string{a}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Build = %+v\nwant %+v", got, want)
	}
	if n := len(Build(nil).Routes); n != 0 {
		t.Fatalf("Build(nil) has %d routes", n)
	}
}

func TestParsePath(t *testing.T) {
	good := map[string]string{"": "", "/": "", "/api": "/api", "/api/": "/api", "/a/b.c_d~e-f": "/a/b.c_d~e-f", "/API": "/API"}
	for in, want := range good {
		if got, err := ParsePath(in); err != nil || got != want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"api", "/a b", "/a`)", "/{{x}}", "/a//b", "/a/../b", "/./a", "/a*", "/a%20", "/a:b", "/a?x", "/" + strings.Repeat("a", MaxPathLen)} {
		if got, err := ParsePath(in); err == nil {
			t.Errorf("ParsePath(%q) = %q, want an error", in, got)
		}
	}
	if _, err := ParseName("web-secure_2"); err != nil {
		t.Error(err)
	}
	for _, in := range []string{"", "a b", "a@file", "a.b", "a`"} {
		if _, err := ParseName(in); err == nil {
			t.Errorf("ParseName(%q) accepted", in)
		}
	}
}
