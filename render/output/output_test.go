package output

import (
	"strings"
	"testing"
	"time"
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
