// Package podmantest runs a real Podman for dockroute's tests: its API
// service (`podman system service`, Docker's API among it) on a socket of
// its own, rootful, with its storage, run state, networks and settings in
// a temporary directory, and the hello images copied in from Docker. It
// leaves the machine's Docker alone: Podman's bridge is its own (podman0,
// on a subnet Docker does not use) and netavark's firewall chains are
// Podman's; everything is removed when the test ends.
package podmantest

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
)

// Podman is a running Podman API service.
type Podman struct {
	Dir    string // everything of this Podman's: storage, run state, settings
	Socket string
	conf   string // its containers.conf
	svc    *exec.Cmd
	done   chan struct{}
	// chains: netavark's firewall chains were there before this Podman
	// (another Podman on the machine): they are left in place.
	chains bool
	// user runs a rootless Podman ("": rootful, as root).
	user string
}

// RootlessUser is the user a rootless Podman runs as; StartRootless creates
// it (with its subordinate IDs) when the machine lacks it.
const RootlessUser = "dockroute-rootless"

// Images are the hello images, as Podman names what it loaded from Docker.
const (
	HelloImage       = "localhost/" + dockertest.HelloImage
	HelloHealthImage = "localhost/" + dockertest.HelloHealthImage
)

// Start starts a rootful Podman API service and removes it, its
// containers, pods, networks and files when the test ends. Podman missing
// fails the test (CI installs it); only a human's DOCKROUTE_SKIP_PODMAN=1
// skips.
func Start(t testing.TB) *Podman { return start(t, "") }

// StartRootless starts a rootless Podman API service, as RootlessUser, as
// Start does. Its containers are on slirp4netns, which needs /dev/net/tun
// open to users (0666, as most machines have it): where it is not, the
// test opens it for its duration.
func StartRootless(t testing.TB) *Podman {
	t.Helper()
	requirePodman(t)
	if err := exec.Command("id", RootlessUser).Run(); err != nil {
		if out, err := exec.Command("useradd", "--create-home", RootlessUser).CombinedOutput(); err != nil {
			t.Fatalf("rootless Podman needs a user: useradd %s: %v\n%s", RootlessUser, err, out)
		}
	}
	if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
			t.Fatalf("rootless Podman needs /dev/net/tun open to users: %v", err)
		}
		t.Cleanup(func() { os.Chmod("/dev/net/tun", fi.Mode().Perm()) })
	}
	return start(t, RootlessUser)
}

// requirePodman fails (or skips) as Start says.
func requirePodman(t testing.TB) {
	t.Helper()
	if !e2e {
		t.Skip(unitLane)
	}
	if os.Getenv("DOCKROUTE_SKIP_PODMAN") == "1" {
		t.Skip("DOCKROUTE_SKIP_PODMAN=1: tests against Podman skipped")
	}
	dockertest.Require(t) // the images come from Docker
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("these tests need Podman (apt-get install podman; .ci/run installs it), or DOCKROUTE_SKIP_PODMAN=1 to skip them")
	}
}

func start(t testing.TB, user string) *Podman {
	t.Helper()
	requirePodman(t)
	dir, err := os.MkdirTemp("/tmp", "drp-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{Dir: dir, Socket: filepath.Join(dir, "podman.sock"), conf: filepath.Join(dir, "containers.conf"), user: user,
		chains: exec.Command("iptables", "-S", "NETAVARK_FORWARD").Run() == nil}
	t.Cleanup(p.destroy)
	// Podman's root defaults raise every container's open-files and
	// process limits to the maximum, which a sandbox without
	// CAP_SYS_RESOURCE (this machine's) refuses; healthchecks need systemd
	// timers, which tests stand in for (Healthcheck). Its networks' files
	// stay in the directory, not in /etc.
	b := make([]byte, 1)
	rand.Read(b)
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[network]
network_backend = "netavark"
network_config_dir = %q
default_subnet = "10.89.%d.0/24"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = %q
`, filepath.Join(dir, "networks"), 100+int(b[0])%100, filepath.Join(dir, "tmp"))
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	images := saveImages(t, dir)
	if user != "" {
		if out, err := exec.Command("chown", "-R", user, dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v\n%s", err, out)
		}
		os.Mkdir(filepath.Join(dir, "xdg"), 0o700)
		exec.Command("chown", user, filepath.Join(dir, "xdg")).Run()
	}
	if out, err := p.local("load", "-i", images).CombinedOutput(); err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	p.StartService(t)
	return p
}

// saveImages writes the hello images, as Docker has them, to a file in dir.
func saveImages(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "hello.tar")
	if out, err := exec.Command("docker", "save", "-o", path, dockertest.HelloImage, dockertest.HelloHealthImage).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	os.Chmod(path, 0o644)
	return path
}

// local is the podman CLI on this Podman's storage directly, as its user.
func (p *Podman) local(args ...string) *exec.Cmd {
	args = append([]string{"--root", filepath.Join(p.Dir, "root"), "--runroot", filepath.Join(p.Dir, "run"),
		"--storage-driver", "overlay"}, args...)
	if p.user == "" {
		cmd := exec.Command("podman", args...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
		return cmd
	}
	env := []string{"HOME=/home/" + p.user, "XDG_RUNTIME_DIR=" + filepath.Join(p.Dir, "xdg"), "CONTAINERS_CONF=" + p.conf, "PATH=" + os.Getenv("PATH")}
	cmd := exec.Command("runuser", append(append([]string{"-u", p.user, "--", "env", "-i"}, env...), append([]string{"podman"}, args...)...)...)
	cmd.Dir = p.Dir
	return cmd
}

// Host is the service's address, as dockroute's --docker-host takes it.
func (p *Podman) Host() string { return "unix://" + p.Socket }

// StartService starts the API service (again, after StopService) and
// waits until it answers.
func (p *Podman) StartService(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(p.Dir, "service.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.svc = p.local("system", "service", "--time=0", p.Host())
	p.svc.Stdout, p.svc.Stderr = log, log
	if err := p.svc.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.svc.Wait(); log.Close(); close(p.done) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if p.remote("version").Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(filepath.Join(p.Dir, "service.log"))
			t.Fatalf("podman system service did not answer within 30 s:\n%s", data)
		}
	}
}

// StopService stops the API service (its containers keep running, as
// when systemd restarts podman.socket's service).
func (p *Podman) StopService() {
	if p.svc == nil || p.svc.Process == nil {
		return
	}
	p.svc.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.svc.Process.Kill()
		<-p.done
	}
	p.svc = nil
}

// remote is the podman CLI talking to the service, as a user's would.
func (p *Podman) remote(args ...string) *exec.Cmd {
	cmd := exec.Command("podman", append([]string{"--remote", "--url", p.Host()}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return cmd
}

// Podman runs the podman CLI against the service and returns its trimmed
// standard output.
func (p *Podman) Podman(t testing.TB, args ...string) string {
	t.Helper()
	return output(t, p.remote(args...), args)
}

// output runs cmd and returns its trimmed standard output, failing the
// test with its standard error.
func output(t testing.TB, cmd *exec.Cmd, args []string) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return strings.TrimSpace(string(out))
}

// Run starts a detached container (podman run -d ARGS...), labelled as the
// tests', and returns its ID.
func (p *Podman) Run(t testing.TB, args ...string) string {
	t.Helper()
	return p.Podman(t, append([]string{"run", "-d", "--label", dockertest.TestLabel}, args...)...)
}

// RunLocal starts a detached container with the podman CLI on the storage
// itself, as `podman run` does on a host: it needs no API service (it
// works while the service is stopped).
func (p *Podman) RunLocal(t testing.TB, args ...string) string {
	t.Helper()
	args = append([]string{"run", "-d", "--label", dockertest.TestLabel}, args...)
	return output(t, p.local(args...), args)
}

// IP is the container's address on network.
func (p *Podman) IP(t testing.TB, id, network string) string {
	t.Helper()
	return p.Podman(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, id)
}

// Healthcheck runs a container's healthcheck once, as the systemd timer
// Podman sets up would (there is no systemd here).
func (p *Podman) Healthcheck(t testing.TB, id string) {
	t.Helper()
	p.remote("healthcheck", "run", id).Run() // an unhealthy result exits 1
}

func (p *Podman) destroy() {
	for _, args := range [][]string{{"pod", "rm", "-af", "-t", "0"}, {"rm", "-af", "-t", "0"}, {"network", "prune", "-f"}} {
		p.local(args...).Run()
	}
	p.StopService()
	p.local("system", "reset", "-f").Run()
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, l := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], p.Dir) {
				exec.Command("umount", "-l", f[1]).Run()
			}
		}
	}
	exec.Command("pkill", "-9", "-f", p.Dir).Run() // conmon of a container left behind
	if p.user != "" {
		exec.Command("pkill", "-9", "-u", p.user).Run() // its pause process, slirp4netns
	}
	os.RemoveAll(p.Dir)
	if !p.chains {
		removeNetavarkChains()
	}
}

// removeNetavarkChains removes the firewall chains netavark leaves behind
// (its base chains stay once its last container is gone, and a container
// killed under it leaves its port chains), with the rules that jump to
// them; Docker's own chains are never touched.
func removeNetavarkChains() {
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables", "-t", table, "-S").Output()
		if err != nil {
			continue
		}
		var chains []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "NETAVARK"):
				chains = append(chains, f[1])
			case len(f) > 2 && f[0] == "-A" && !strings.HasPrefix(f[1], "NETAVARK") && strings.Contains(line, "-j NETAVARK"):
				// A jump from a chain of someone else's: delete that rule
				// (as iptables -S quotes it, for the shell).
				exec.Command("sh", "-c", "iptables -t "+table+" -D "+strings.TrimPrefix(line, "-A ")).Run()
			}
		}
		for _, c := range chains {
			exec.Command("iptables", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			exec.Command("iptables", "-t", table, "-X", c).Run()
		}
	}
}
