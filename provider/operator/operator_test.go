package operator

import (
	"slices"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/policy"
	"github.com/dockroute/dockroute/provider/route"
)

// TestAdmitReservesTheOperatorsNames: the routes file's hosts and every
// path under its routes, and the default host, are no container's; the
// default host is its policy owner's.
func TestAdmitReservesTheOperatorsNames(t *testing.T) {
	pol, _, err := policy.Parse([]byte("hosts: [{names: [home.test], owners: [{label: role=home}]}]"))
	if err != nil {
		t.Fatal(err)
	}
	files := Files{Policy: pol, Routes: []route.Backend{
		{Host: "static.test", Server: "10.0.0.1:80"},
		{Host: "mixed.test", Path: "/legacy", Server: "10.0.0.1:80"},
	}}
	owner := policy.Who{Labels: map[string]string{"role": "home"}}
	stranger := policy.Who{}
	for _, c := range []struct {
		defaultHost, host, path string
		who                     policy.Who
		want                    string // a part of the reason; "" admitted
	}{
		{"", "static.test", "", stranger, "routed by the operator's routes file (static.test)"},
		{"", "static.test", "/x", stranger, "static.test/x is routed by the operator's routes file"},
		{"", "mixed.test", "/legacy/x", stranger, "(mixed.test/legacy)"},
		{"", "mixed.test", "/legacy", stranger, "(mixed.test/legacy)"},
		{"", "mixed.test", "", stranger, ""}, // the rest of the host is free
		{"", "mixed.test", "/app", stranger, ""},
		{"", "mixed.test", "/legacyx", stranger, ""}, // whole segments: /legacy does not reach it
		{"other.test", "other.test", "", stranger, "is the operator's --default-host"},
		{"home.test", "home.test", "", stranger, "belongs, by the operator's policy file"},
		{"home.test", "home.test", "", owner, ""},
	} {
		code, reason := files.Admit(c.defaultHost)(c.host, c.path, c.who)
		if c.want == "" && code != "" || c.want != "" && !strings.Contains(reason, c.want) {
			t.Errorf("default %q, claim %s%s by %+v: %s %q; want %q", c.defaultHost, c.host, c.path, c.who, code, reason, c.want)
		}
	}
}

// TestPolicyCodesAreKnown: the codes the policy file's refusals carry
// (strings: the policy package cannot import docker's type) are codes
// contract.Codes knows, so metrics and scripts see one closed set.
func TestPolicyCodesAreKnown(t *testing.T) {
	pol, _, err := policy.Parse([]byte("domains: [example.org]\nreserved: [no.example.org]\nhosts: [{names: [team.example.org], owners: [{label: team=a}]}]"))
	if err != nil {
		t.Fatal(err)
	}
	admit := Files{Policy: pol}.Admit("home.example.org")
	for _, host := range []string{"else.test", "no.example.org", "team.example.org", "home.example.org"} {
		code, _ := admit(host, "", policy.Who{})
		if !slices.Contains(contract.Codes, code) {
			t.Errorf("%s: code %q is not in contract.Codes", host, code)
		}
	}
}
