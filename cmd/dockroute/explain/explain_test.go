package explain

import (
	"net"
	"strings"
	"testing"

	"github.com/dockroute/dockroute/provider/route"
)

// TestReachability: explain names a backend nothing listens on, and says
// nothing of one that answers; each address is dialled once.
func TestReachability(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := l.Addr().String()
	defer l.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shut := closed.Addr().String()
	closed.Close()

	check := reachability()
	if note := check(route.Backend{Server: open}); note != "" {
		t.Errorf("a listening backend: %q", note)
	}
	note := check(route.Backend{Server: shut})
	if !strings.Contains(note, "NOTHING LISTENS on "+shut) || !strings.Contains(note, "127.0.0.1 only") {
		t.Errorf("a backend nothing listens on: %q", note)
	}
	l.Close() // dialled again, it would now be refused: the first answer is kept
	if note := check(route.Backend{Server: open}); note != "" {
		t.Errorf("the same address asked again: %q, want the first answer", note)
	}
}
