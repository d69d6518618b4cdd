package route

import (
	"strings"
	"testing"
)

func TestParseMiddlewares(t *testing.T) {
	got, err := ParseMiddlewares(" auth , hsts,secure-headers")
	if err != nil || got != "auth,hsts,secure-headers" {
		t.Fatalf("%v %v", got, err)
	}
	for in, want := range map[string]string{
		"":          "1 to 63",
		"a,,b":      "1 to 63",
		"a,a":       "listed twice",
		"A":         "lowercase",
		"a@file":    "lowercase",
		"-a":        "inner hyphens",
		"a`) || Ho": "lowercase",
	} {
		if _, err := ParseMiddlewares(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMiddlewares(%q) = %v, want %q", in, err, want)
		}
	}
}

// FuzzParseMiddlewares: every accepted list is of valid, distinct names.
func FuzzParseMiddlewares(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		field, err := ParseMiddlewares(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, n := range Middlewares(field) {
			if ValidName(n) != nil || seen[n] {
				t.Fatalf("accepted %q from %q", n, s)
			}
			seen[n] = true
		}
	})
}
