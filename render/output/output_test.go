package output

import (
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/route"
)

// TestDeliveryGrace: a proxy is given DeliveryGrace to load a publish
// before it is blamed; once it runs everything, it is delivered.
func TestDeliveryGrace(t *testing.T) {
	var d Delivery
	if ok, _, why := d.State(); ok || why != "" {
		t.Fatalf("before any read-back: %v %q, want unconfirmed and no blame", ok, why)
	}
	d.Published()
	d.Set(2, []string{"r1 not loaded"})
	if ok, n, why := d.State(); ok || n != 1 || why != "" {
		t.Fatalf("within the grace: %v %d %q, want 1 undelivered and no blame yet", ok, n, why)
	}
	d.pending = time.Now().Add(-DeliveryGrace - time.Second)
	if _, _, why := d.State(); !strings.Contains(why, "does not run 1 of the 2 routes dockroute published (r1 not loaded)") {
		t.Fatalf("past the grace: %q", why)
	}
	d.Set(-1, nil)
	if ok, n, why := d.State(); !ok || n != 0 || why != "" {
		t.Fatalf("delivered: %v %d %q", ok, n, why)
	}
}

// A route the proxy does not run while a publish is on its way is "not
// delivered yet" (explain said "NOT delivered" for a second after every
// start); past the grace, or with nothing on its way, it is NOT delivered.
func TestNotesWithinTheGrace(t *testing.T) {
	var d Delivery
	notes := d.Notes(func(b route.Backend) string {
		if b.Host == "run.test" {
			return " (delivered: the proxy runs it)"
		}
		return " (NOT delivered: not loaded)"
	})
	if got := notes(route.Backend{Host: "new.test"}); got != " (NOT delivered: not loaded)" {
		t.Errorf("with nothing published: %q", got)
	}
	d.Published()
	if got := notes(route.Backend{Host: "new.test"}); !strings.HasPrefix(got, " (not delivered yet: published ") || !strings.HasSuffix(got, "the proxy has yet to load it; not loaded)") {
		t.Errorf("just published: %q", got)
	}
	if got := notes(route.Backend{Host: "run.test"}); got != " (delivered: the proxy runs it)" {
		t.Errorf("a delivered route: %q", got)
	}
	d.pending = time.Now().Add(-DeliveryGrace - time.Second)
	if got := notes(route.Backend{Host: "new.test"}); got != " (NOT delivered: not loaded)" {
		t.Errorf("past the grace: %q", got)
	}
}
