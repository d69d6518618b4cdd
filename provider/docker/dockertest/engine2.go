package dockertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Engine2 is a second, real Docker Engine for the tests, standing for
// another machine: it runs in a network namespace of its own, reached from
// the host over a veth pair at Addr, with its own data and exec roots,
// socket and containerd namespace. It must never run in the host's
// network namespace: at start-up moby deletes the host's docker0 when
// given another bridge, which breaks the machine's own engine. Starting it
// needs root, ip and nsenter, as CI has.
type Engine2 struct {
	NS     string // the network namespace
	Addr   string // its address, as the host reaches it
	Socket string // its API socket, on the host's file system
	// TCP is, with TLS, its API on tcp://Addr:2376, verifying clients;
	// ClientCerts then holds ca.pem, cert.pem and key.pem for a client.
	TCP         string
	ClientCerts string
	dir         string
	hostIf      string
	cmd         *exec.Cmd
	done        chan struct{}
}

// StartEngine2 starts a second engine, loads the hello image into it, and
// tears everything down (containers, daemon, namespace, files) when the
// test ends, whatever happened.
// With tls, the engine also serves its API on TCP with TLS, as a remote
// engine does, with certificates made for the test.
func StartEngine2(t testing.TB, tls bool) *Engine2 {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	dir, err := os.MkdirTemp("/tmp", "dr2-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine2{NS: "drt" + id, hostIf: "vh" + id, dir: dir, Socket: filepath.Join(dir, "docker.sock"),
		Addr: fmt.Sprintf("10.201.%d.2", b[0])}
	t.Cleanup(e.destroy)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("second engine: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	nsIf := "vn" + id
	run("ip", "netns", "add", e.NS)
	run("ip", "link", "add", e.hostIf, "type", "veth", "peer", "name", nsIf)
	run("ip", "link", "set", nsIf, "netns", e.NS)
	run("ip", "addr", "add", fmt.Sprintf("10.201.%d.1/30", b[0]), "dev", e.hostIf)
	run("ip", "link", "set", e.hostIf, "up")
	run("ip", "netns", "exec", e.NS, "ip", "addr", "add", e.Addr+"/30", "dev", nsIf)
	run("ip", "netns", "exec", e.NS, "ip", "link", "set", nsIf, "up")
	run("ip", "netns", "exec", e.NS, "ip", "link", "set", "lo", "up")
	// The host engine's storage driver works on this machine's disks.
	driver := strings.TrimSpace(Docker(t, "info", "-f", "{{.Driver}}"))
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(fmt.Sprintf(`{"storage-driver": %q}`, driver)), 0o644); err != nil {
		t.Fatal(err)
	}
	if tls {
		e.TCP = "tcp://" + e.Addr + ":2376"
		e.ClientCerts = filepath.Join(dir, "client")
		if err := makeCerts(filepath.Join(dir, "server"), e.ClientCerts, e.Addr); err != nil {
			t.Fatal(err)
		}
	}
	e.Start(t)
	save := exec.Command("docker", "save", HelloImage)
	load := exec.Command("docker", "-H", e.Host(), "load", "-q")
	pipe, _ := save.StdoutPipe()
	load.Stdin = pipe
	if err := save.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("second engine: loading %s: %v\n%s", HelloImage, err, out)
	}
	save.Wait()
	return e
}

// Host is the DOCKER_HOST value that reaches the engine.
func (e *Engine2) Host() string { return "unix://" + e.Socket }

// Start starts the daemon (again) and waits until it answers.
func (e *Engine2) Start(t testing.TB) {
	t.Helper()
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
}

// start starts the daemon and waits until it answers. nsenter enters only
// the network namespace: `ip netns exec` would also remount /sys and hide
// the cgroup mounts dockerd needs.
func (e *Engine2) start() error {
	args := []string{"--net=/var/run/netns/" + e.NS, "dockerd"}
	if e.TCP != "" {
		srv := filepath.Join(e.dir, "server")
		args = append(args, "-H", "tcp://"+e.Addr+":2376", "--tlsverify", "--tlscacert", filepath.Join(srv, "ca.pem"),
			"--tlscert", filepath.Join(srv, "cert.pem"), "--tlskey", filepath.Join(srv, "key.pem"))
	}
	e.cmd = exec.Command("nsenter", append(args,
		"--config-file", filepath.Join(e.dir, "daemon.json"),
		"--data-root", filepath.Join(e.dir, "data"), "--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "docker.pid"), "-H", e.Host(),
		// iptables rules live in the namespace: published ports keep working
		// while the daemon is down, as on a real host.
		"--bip", "172.31.0.1/16",
		"--containerd-namespace", e.NS, "--containerd-plugins-namespace", e.NS+"p")...)
	log, err := os.OpenFile(filepath.Join(e.dir, "dockerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	e.cmd.Stdout, e.cmd.Stderr = log, log
	if err := e.cmd.Start(); err != nil {
		return err
	}
	e.done = make(chan struct{})
	go func() { e.cmd.Wait(); log.Close(); close(e.done) }()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if exec.Command("docker", "-H", e.Host(), "version").Run() == nil {
			return nil
		}
		select {
		case <-e.done:
			data, _ := os.ReadFile(filepath.Join(e.dir, "dockerd.log"))
			e.cmd = nil
			return fmt.Errorf("second engine exited at start:\n%s", data)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("second engine did not answer within 60 s")
		}
	}
}

// Stop stops the daemon as a service stop does (SIGTERM: it stops its
// containers, then exits), or as a crash does (SIGKILL).
func (e *Engine2) Stop(sig syscall.Signal) {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.cmd.Process.Signal(sig)
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
	e.cmd = nil
}

// Run starts a detached container on the engine, labelled as the tests'.
func (e *Engine2) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Docker(t, append([]string{"-H", e.Host(), "run", "-d", "--label", TestLabel}, args...)...)
}

func (e *Engine2) destroy() {
	if e.cmd == nil { // stopped by the test: start it to remove its containers
		e.start()
	}
	if e.cmd != nil {
		if ids, err := exec.Command("docker", "-H", e.Host(), "ps", "-aq").Output(); err == nil && len(ids) > 0 {
			exec.Command("docker", append([]string{"-H", e.Host(), "rm", "-f"}, strings.Fields(string(ids))...)...).Run()
		}
		e.Stop(syscall.SIGTERM)
	}
	// Whatever a killed daemon left mounted under its directory.
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, l := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], e.dir) {
				exec.Command("umount", "-l", f[1]).Run()
			}
		}
	}
	// A daemon killed and never restarted leaves containerd and its shims.
	exec.Command("pkill", "-9", "-f", e.dir).Run()
	exec.Command("ip", "netns", "del", e.NS).Run() // takes the veth pair with it
	exec.Command("ip", "link", "del", e.hostIf).Run()
	os.RemoveAll(e.dir)
}
