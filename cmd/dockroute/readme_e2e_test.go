//go:build e2e

package main

// The README's walkthroughs, run as written: the Traefik one with a real
// Traefik, the Caddy one with a bare `caddy run` of each Caddy version. A
// walkthrough that does not work for a newcomer fails here first.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/docker/dockertest"
	"github.com/dockroute/dockroute/render/caddy/caddytest"
	"github.com/dockroute/dockroute/render/traefik/traefiktest"
)

// readmeBlocks returns the fenced code blocks (language, text) of the
// README section headed heading.
func readmeBlocks(t *testing.T, heading string) [][2]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README has no section %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks [][2]string
	for {
		_, rest, ok := strings.Cut(section, "```")
		if !ok {
			return blocks
		}
		lang, rest, _ := strings.Cut(rest, "\n")
		body, after, _ := strings.Cut(rest, "```")
		blocks = append(blocks, [2]string{lang, body})
		section = after
	}
}

// walkthrough runs shell lines as a newcomer would, from a copy of the
// repository (symlinks to its files; bin/ and dynamic/ of its own): lines
// ending in "&" are left running until the test ends; a line whose comment
// shows the expected output ("# hello from <container> ...") is retried
// until its output starts so, as a newcomer retries a curl; every other
// line must succeed; a `cd DIR` line changes the directory of the lines
// after it. `docker run` gets the tests' label, through a wrapper on PATH,
// so what the walkthrough starts is cleaned up; where Docker has no Compose
// v2 plugin (this machine), the wrapper hands `docker compose` to Debian's
// docker-compose (v1), which the README names for that case.
type walkthrough struct {
	t    *testing.T
	dir  string   // the repository copy
	cwd  string   // the working directory, dir or below
	path []string // directories put first on PATH
	home string
}

func newWalkthrough(t *testing.T) *walkthrough {
	t.Helper()
	w := &walkthrough{t: t, dir: t.TempDir(), home: t.TempDir()}
	w.cwd = w.dir
	repo := mustAbs(t, filepath.Join("..", ".."))
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "bin" && n != "dynamic" && n != ".git" {
			if err := os.Symlink(filepath.Join(repo, n), filepath.Join(w.dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tools := t.TempDir()
	real, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = run ]; then shift; exec %s run --label %s \"$@\"; fi\n", real, dockertest.TestLabel)
	if c := compose(t); c[0] != "docker" {
		wrapper += fmt.Sprintf("if [ \"$1\" = compose ]; then shift; exec %s \"$@\"; fi\n", c[0])
	}
	wrapper += fmt.Sprintf("exec %s \"$@\"\n", real)
	if err := os.WriteFile(filepath.Join(tools, "docker"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	w.path = []string{tools}
	t.Cleanup(removeHellos)
	return w
}

// removeHellos removes the hello containers a walkthrough started. Tests
// run one at a time: every labelled hello is the walkthrough's.
func removeHellos() {
	ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+dockertest.TestLabel, "--filter", "ancestor="+dockertest.HelloImage).Output()
	for _, id := range strings.Fields(string(ids)) {
		exec.Command("docker", "rm", "-f", id).Run()
	}
}

// tool puts bin on PATH as name.
func (w *walkthrough) tool(name, bin string) {
	w.t.Helper()
	dir := w.t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, name)); err != nil {
		w.t.Fatal(err)
	}
	w.path = append([]string{dir}, w.path...)
}

func (w *walkthrough) run(script string) {
	t := w.t
	t.Helper()
	// Caddy keeps its autosave and certificates under XDG directories; Go
	// keeps its caches under HOME, which stays.
	env := append(os.Environ(), "PATH="+strings.Join(w.path, ":")+":"+os.Getenv("PATH"), "XDG_CONFIG_HOME="+w.home, "XDG_DATA_HOME="+w.home)
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		cmdText, comment, _ := strings.Cut(line, "#")
		cmdText = strings.TrimSpace(cmdText)
		if dir, ok := strings.CutPrefix(cmdText, "cd "); ok {
			w.cwd = filepath.Join(w.cwd, strings.TrimSpace(dir))
			continue
		}
		expect, _, _ := strings.Cut(strings.TrimSpace(comment), "<")
		expect = strings.TrimSpace(expect)
		if bg, ok := strings.CutSuffix(cmdText, "&"); ok {
			cmd := exec.Command("bash", "-c", bg)
			cmd.Dir, cmd.Env = w.cwd, env
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			log := &caddytest.Buffer{}
			cmd.Stdout, cmd.Stderr = log, log
			if err := cmd.Start(); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			t.Cleanup(func() {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				cmd.Wait()
				if t.Failed() {
					t.Logf("%s:\n%s", bg, log)
				}
			})
			continue
		}
		retry := strings.HasPrefix(cmdText, "curl") && expect != ""
		deadline := time.Now().Add(60 * time.Second) // the first `make run` compiles
		for {
			cmd := exec.Command("bash", "-c", cmdText)
			cmd.Dir, cmd.Env = w.cwd, env
			var out, errOut strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			switch {
			case err == nil && (!retry || strings.HasPrefix(out.String(), expect)):
			case retry && time.Now().Before(deadline):
				time.Sleep(100 * time.Millisecond)
				continue
			default:
				t.Fatalf("README line %q: %v\n%s%s", line, err, out.String(), errOut.String())
			}
			break
		}
	}
}

// TestReadmeQuickStart runs the README's first commands as written: the
// Traefik stack, built from the repository by Compose (dockroute's image
// and the demo app's, compiled in the golang image), serves its demo host
// and a container the user starts; then the same with the Caddy stack the
// README names beside it. The proxies are traefik:v3 and caddy:2 (real
// images where a registry answers, `make standins` stand-ins here).
func TestReadmeQuickStart(t *testing.T) {
	dockertest.Require(t)
	blocks := readmeBlocks(t, "Quick start")
	if len(blocks) != 1 || blocks[0][0] != "sh" || !strings.Contains(blocks[0][1], "cd compose/traefik") {
		t.Fatalf("the quick start is no longer one sh block starting in compose/traefik: %v", blocks)
	}
	for _, proxy := range []string{"traefik", "caddy"} {
		t.Run(proxy, func(t *testing.T) {
			freePort80(t)
			w := newWalkthrough(t)
			script := strings.NewReplacer("compose/traefik", "compose/"+proxy, "traefik_routed", proxy+"_routed").Replace(blocks[0][1])
			// Compose names the project after the stack's directory, as
			// the README's network name says.
			t.Cleanup(func() {
				removeHellos() // the user's app, on the stack's network
				c := compose(t)
				down := exec.Command(c[0], append(c[1:], "-p", proxy, "down", "-v", "--remove-orphans")...)
				down.Dir = filepath.Join(w.dir, "compose", proxy)
				if out, err := down.CombinedOutput(); err != nil {
					t.Errorf("compose down: %v\n%s", err, out)
				}
			})
			w.run(script)
		})
	}
}

// TestReadmeTraefik runs "60 seconds with Traefik" as written, with the
// Traefik configuration the repository ships.
func TestReadmeTraefik(t *testing.T) {
	dockertest.Require(t)
	freePort80(t)
	w := newWalkthrough(t)
	w.tool("traefik", traefiktest.Binary(t))
	blocks := readmeBlocks(t, "60 seconds with Traefik")
	if len(blocks) < 2 || blocks[0][0] != "yaml" || blocks[1][0] != "sh" {
		t.Fatalf("the walkthrough is no longer a yaml block then a sh block: %v", blocks)
	}
	// The configuration the README shows is the one it runs, which ships.
	shipped, err := os.ReadFile(filepath.Join(w.dir, "examples", "traefik.yml"))
	if err != nil || !strings.HasSuffix(string(shipped), blocks[0][1]) {
		t.Fatalf("examples/traefik.yml is not the README's configuration (%v):\n%s", err, shipped)
	}
	w.run(blocks[1][1])
}

// TestReadmeCaddy runs "Beside Caddy" as written, with each Caddy.
func TestReadmeCaddy(t *testing.T) {
	dockertest.Require(t)
	caddytest.Each(t, func(t *testing.T, bin string) {
		freePort80(t)
		w := newWalkthrough(t)
		w.tool("caddy", bin)
		blocks := readmeBlocks(t, "Beside Caddy")
		if len(blocks) == 0 || blocks[0][0] != "sh" {
			t.Fatalf("the walkthrough is no longer a sh block: %v", blocks)
		}
		w.run(blocks[0][1])
	})
}

// freePort80 fails the test when port 80, which the walkthroughs use as
// written, is taken.
func freePort80(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/80").Run() != nil {
			return // nobody listens
		}
		if time.Now().After(deadline) {
			t.Fatal("port 80, which the README's walkthroughs use, is taken")
		}
	}
}
