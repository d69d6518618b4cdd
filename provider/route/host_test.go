package route

import (
	"net/netip"
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
		"1.2.3.4":                        "1.2.3.4",
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
		strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "ab",
	}
	for _, in := range bad {
		if got, err := ParseHost(in); err == nil {
			t.Errorf("ParseHost(%q) = %q, want an error", in, got)
		}
	}
}

func TestBuildGroupsSortsAndDedups(t *testing.T) {
	a := netip.MustParseAddrPort("172.17.0.3:8080")
	b := netip.MustParseAddrPort("172.17.0.2:8080")
	got := Build([]Backend{
		{Name: "x", Hosts: []string{"b.local", "a.local"}, Addr: a},
		{Name: "y", Hosts: []string{"a.local"}, Addr: b},
		{Name: "z", Hosts: []string{"a.local"}, Addr: b}, // same address twice
	})
	want := Table{Routes: []Route{
		{Host: "a.local", Servers: []netip.AddrPort{b, a}},
		{Host: "b.local", Servers: []netip.AddrPort{a}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Build = %+v\nwant %+v", got, want)
	}
	if n := len(Build(nil).Routes); n != 0 {
		t.Fatalf("Build(nil) has %d routes", n)
	}
}
