package policy

import (
	"os"
	"strings"
	"testing"
)

func mustParse(t *testing.T, data string) *Policy {
	t.Helper()
	p, problems, err := Parse([]byte(data))
	if err != nil || len(problems) > 0 {
		t.Fatalf("Parse: %v %v", err, problems)
	}
	return p
}

func TestAdmit(t *testing.T) {
	data, err := os.ReadFile("testdata/policy.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, string(data))
	shopTeam := Who{Labels: map[string]string{"com.example.team": "shop"}}
	onShopNet := Who{Networks: []string{"bridge", "shop-net"}}
	blog := Who{Labels: map[string]string{"com.docker.compose.project": "blog"}, Engine: "edge-2"}
	stranger := Who{Labels: map[string]string{"com.example.team": "blog"}, Networks: []string{"bridge"}}
	for _, c := range []struct {
		host string
		who  Who
		code string
	}{
		{"app.apps.example.com", stranger, ""},
		{"apps.example.com", stranger, ""},
		{"*.apps.example.com", stranger, "reserved_host"}, // it would serve admin.apps.example.com
		{"example.com", stranger, "outside_domains"},
		{"evil-apps.example.com", stranger, "outside_domains"},
		{"victim.test", stranger, "outside_domains"},
		{"admin.apps.example.com", shopTeam, "reserved_host"},
		{"x.internal.apps.example.com", shopTeam, "reserved_host"},
		{"*.internal.apps.example.com", shopTeam, "reserved_host"},
		{"internal.apps.example.com", shopTeam, ""},
		{"shop.apps.example.com", stranger, "not_owner"},
		{"shop.apps.example.com", shopTeam, ""},
		{"shop.apps.example.com", onShopNet, ""},
		{"a.b.shop.apps.example.com", stranger, "not_owner"},
		{"*.shop.apps.example.com", stranger, "not_owner"},
		{"*.shop.apps.example.com", shopTeam, ""},
		{"blog.example.org", blog, ""},
		{"blog.example.org", Who{Labels: blog.Labels, Engine: "edge-1"}, "not_owner"}, // every field of an owner must hold
		{"*.example.org", stranger, "not_owner"},
	} {
		code, reason := p.Admit(c.host, c.who)
		if code != c.code || (code == "") != (reason == "") {
			t.Errorf("Admit(%s, %+v) = %s %q; want code %q", c.host, c.who, code, reason, c.code)
		}
	}
	_, reason := p.Admit("shop.apps.example.com", stranger)
	if want := "shop.apps.example.com belongs, by the operator's policy file (line 13), to containers with label com.example.team=shop, or network shop-net; this container is none of them"; reason != want {
		t.Errorf("reason %q\nwant   %q", reason, want)
	}
	var none *Policy
	if code, _ := none.Admit("anything.test", stranger); code != "" {
		t.Errorf("no policy refused a claim: %s", code)
	}
}

// TestBadEntriesFailClosed: an entry the operator meant to limit claims
// never admits more when it cannot be read.
func TestBadEntriesFailClosed(t *testing.T) {
	p, problems, err := Parse([]byte(`
hosts:
  - names: [shop.test]
    owners:
      - label: "no-value"
  - names: [blog.test]
  - names: ["bad name"]
    owners: [{network: x}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 3 {
		t.Errorf("problems: %v; want 3 (owner label, no owners, bad name)", problems)
	}
	for _, host := range []string{"shop.test", "blog.test"} {
		if code, reason := p.Admit(host, Who{Labels: map[string]string{"no-value": ""}}); code == "" {
			t.Errorf("%s admitted under a broken policy", host)
		} else if host == "shop.test" && !strings.Contains(reason, "could not be read") {
			t.Errorf("shop.test: %s", reason)
		}
	}
	if p, problems, _ := Parse([]byte(`domains: ["not a name"]`)); len(problems) != 1 {
		t.Errorf("a bad domain: %v", problems)
	} else if code, _ := p.Admit("other.test", Who{}); code != "outside_domains" {
		t.Errorf("a file whose only domain is unreadable admitted other.test (%q)", code)
	}
	for _, bad := range []string{"domains: {a: b}", "hosts: [{names: [a.test], ownrs: []}]", "unknown: 1", "[1, 2"} {
		if _, _, err := Parse([]byte(bad)); err == nil && bad != "hosts: [{names: [a.test], ownrs: []}]" {
			t.Errorf("Parse(%q) gave no error", bad)
		}
	}
	if p, _, err := Parse(nil); err != nil || len(p.Rules) > 0 {
		t.Errorf("an empty file: %v %+v", err, p)
	}
}

// FuzzParse: no file crashes the parser, and whatever it admits, it
// admits only names inside the domains it read.
func FuzzParse(f *testing.F) {
	data, _ := os.ReadFile("testdata/policy.yml")
	f.Add(data)
	f.Add([]byte("hosts: [{names: ['*.a.test'], owners: [{label: a=b}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, err := Parse(data)
		if err != nil {
			return
		}
		for _, host := range []string{"a.test", "*.a.test", "shop.apps.example.com", "x.example.org"} {
			code, reason := p.Admit(host, Who{})
			if (code == "") != (reason == "") {
				t.Fatalf("Admit(%s): code %q reason %q", host, code, reason)
			}
		}
	})
}
