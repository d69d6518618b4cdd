package engine

import (
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestSocketHint: a socket dockroute may not open is named as a path, with
// what to do, not as the client's URL-encoded host.
func TestSocketHint(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: "/var/run/docker.sock", Net: "unix"}, Err: os.NewSyscallError("connect", syscall.EACCES)}
	err := WithSocketHint(&url.Error{Op: "Get", URL: "http://%2Fvar%2Frun%2Fdocker.sock/v1.41/_ping", Err: dial})
	msg := err.Error()
	if strings.Contains(msg, "%2F") || !strings.HasPrefix(msg, "dial unix /var/run/docker.sock: connect: permission denied") || !strings.Contains(msg, "--group-add") {
		t.Errorf("message %q", msg)
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Error("the cause is lost")
	}
	if other := errors.New("connection refused"); WithSocketHint(other) != other {
		t.Error("another error was changed")
	}
}
