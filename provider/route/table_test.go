package route

import "testing"

func TestHasHost(t *testing.T) {
	tb := Build([]Backend{
		{Host: "a.test", Path: "/api", Server: "10.0.0.1:80"},
		{Host: "b.test", Server: "10.0.0.2:80"},
		{Host: "c.test", TCP: true, Server: "10.0.0.3:443"},
		{Host: "*.d.test", Server: "10.0.0.4:80"},
	})
	for host, want := range map[string]bool{
		"a.test": true, "b.test": true, "*.d.test": true,
		"c.test": false, // passthrough only: no HTTP route
		"a.tes":  false, "b.test.": false, "x.d.test": false, "": false,
	} {
		if got := tb.HasHost(host); got != want {
			t.Errorf("HasHost(%q) = %v, want %v", host, got, want)
		}
	}
}
