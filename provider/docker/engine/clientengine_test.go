package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// readOfEntry is what dockroute reads of a list entry.
func readOfEntry(e Entry) contract.Container { return Refresh(contract.Container{ID: e.ID}, e) }

// TestInspectNegotiatesFirst is an inspect as the first call of a fresh
// engine (dockroute explain does that), against the fake engine, which
// speaks API 1.41 only: without settling the version first, the request
// names the client's newest and the engine refuses it.
func TestInspectNegotiatesFirst(t *testing.T) {
	e := enginetest.New()
	e.Run(enginetest.Container{ID: strings.Repeat("ab", 32), Name: "first", Env: []string{"VIRTUALHOST=first.test"}, IP: "10.0.0.2"})
	sock := serveEngine(t, onlyVersion("1.41", enginetest.Handler(e)))
	eng, err := Endpoint{Host: "unix://" + sock}.Engine()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	c, err := eng.ReadContainer(context.Background(), "first")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "first" || !slices.Contains(c.Env, "VIRTUALHOST=first.test") || c.Networks[0].Addr.String() != "10.0.0.2" {
		t.Fatalf("read %#v", c)
	}
}

// TestInspectRefusalsAreErrors is an engine refusing an inspect with
// something other than 404: its message must reach the operator, and the
// container must not count as gone. The real engine cannot be made to
// fail an inspect; the fake engine can.
func TestInspectRefusalsAreErrors(t *testing.T) {
	e := enginetest.New()
	id := strings.Repeat("cd", 32)
	e.Run(enginetest.Container{ID: id, Name: "sick", IP: "10.0.0.3"})
	e.FailInspect(id, errors.New("layer store unavailable"))
	eng, err := Endpoint{Host: "unix://" + serveEngine(t, enginetest.Handler(e))}.Engine()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	_, err = eng.ReadContainer(context.Background(), id)
	if err == nil || errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "layer store unavailable") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("got %v, want the engine's 500 and its message", err)
	}
}

// TestInspectAnswerIsTheClientsType reads an answer shaped by the Docker
// types themselves (every field dockroute uses, set), as the engine
// writes it, and wants what the client's decoding gives.
func TestInspectAnswerIsTheClientsType(t *testing.T) {
	timeout := 9
	in := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: strings.Repeat("ef", 32), Name: "/full", Created: "2026-12-02T08:00:00.123456789Z",
			State:      &container.State{Status: "running", Running: true, Health: &container.Health{Status: "healthy"}},
			HostConfig: &container.HostConfig{NetworkMode: "app_net"}},
		Config: &container.Config{Env: []string{"VIRTUALHOST=full.test", "PORT=81"}, Labels: map[string]string{"dockroute.path": "/x"},
			StopSignal: "SIGQUIT", StopTimeout: &timeout, ExposedPorts: nat.PortSet{"81/tcp": {}, "53/udp": {}}},
		NetworkSettings: &container.NetworkSettings{
			NetworkSettingsBase: container.NetworkSettingsBase{Ports: nat.PortMap{"81/tcp": {{HostIP: "0.0.0.0", HostPort: "32768"}}, "53/udp": nil}},
			Networks:            map[string]*network.EndpointSettings{"app_net": {IPAddress: "10.1.2.3", GlobalIPv6Address: "fd00::3"}, "empty": nil}},
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var full container.InspectResponse
	if err := json.Unmarshal(data, &full); err != nil {
		t.Fatal(err)
	}
	a, err := decodeJSON[inspectAnswer](bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.container(), FromInspect(full); !reflect.DeepEqual(got, want) {
		t.Fatalf("read\n%+v\nthe client's decoding reads\n%+v", got, want)
	}
}

// FuzzInspectAnswer feeds arbitrary answers to the decoding, which must
// never panic. What the client's decoding takes of them is written again
// as an engine writes it (encoding/json, Docker's names) and must reduce
// to the same Container through both decodings.
func FuzzInspectAnswer(f *testing.F) {
	fuzzAnswers(f, "testdata/inspect/*.json", func(t *testing.T, a inspectAnswer, full container.InspectResponse) {
		if got, want := a.container(), FromInspect(full); !reflect.DeepEqual(got, want) {
			t.Fatalf("read\n%+v\nthe client's decoding reads\n%+v", got, want)
		}
	})
}

// FuzzListAnswer is FuzzInspectAnswer for container lists.
func FuzzListAnswer(f *testing.F) {
	fuzzAnswers(f, "testdata/list/*.json", func(t *testing.T, l []Entry, full []container.Summary) {
		if len(l) != len(full) {
			t.Fatalf("%d entries read, the client's decoding reads %d", len(l), len(full))
		}
		for i := range full {
			if got, want := readOfEntry(l[i]), readOfEntry(EntryOf(full[i])); !reflect.DeepEqual(got, want) {
				t.Fatalf("entry %d read\n%+v\nthe client's decoding reads\n%+v", i, got, want)
			}
		}
	})
}

// fuzzAnswers seeds f with the answers in the files matching glob and
// feeds it arbitrary ones: decoding them into a Lite must never panic,
// and what the client's decoding takes of one (into a Full), written
// again as an engine writes it, must be read by dockroute's decoding and
// then pass same.
func fuzzAnswers[Lite, Full any](f *testing.F, glob string, same func(t *testing.T, lite Lite, full Full)) {
	addAnswers(f, glob)
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeJSON[Lite](bytes.NewReader(data))
		var full Full
		if json.Unmarshal(data, &full) != nil {
			return
		}
		written, err := json.Marshal(full)
		if err != nil {
			return
		}
		lite, err := decodeJSON[Lite](bytes.NewReader(written))
		if err != nil {
			t.Fatalf("an answer as the engine writes it was refused: %v\n%s", err, written)
		}
		same(t, lite, full)
	})
}

// addAnswers seeds f with the answers the files matching glob hold.
func addAnswers(f *testing.F, glob string) {
	seeds, _ := filepath.Glob(glob)
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// serveEngine serves h on a unix socket for the test's length.
func serveEngine(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// onlyVersion refuses requests for any API version but v, as an engine
// older than the client refuses the client's newest.
func onlyVersion(v string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v") && !strings.HasPrefix(r.URL.Path, "/v"+v+"/") {
			http.Error(w, `{"message":"client version is too new. Maximum supported API version is `+v+`"}`, http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// BenchmarkDecodeInspect decodes the real engine's inspect answers kept as
// seeds (4.7 and 5.3 kB), the first sync's largest cost per container.
func BenchmarkDecodeInspect(b *testing.B) {
	var answers [][]byte
	paths, _ := filepath.Glob("testdata/inspect/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		if len(data) > 1000 { // not the hand-made ones
			answers = append(answers, data)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := decodeJSON[inspectAnswer](bytes.NewReader(answers[i%len(answers)])); err != nil {
			b.Fatal(err)
		}
	}
}

// TestListSaysWhatItSays: an entry's health is API 1.52's field when it
// has one ("none": no healthcheck), else the status text's; an entry that
// says nothing of health or network mode (Podman's) keeps what the
// inspect said.
func TestListSaysWhatItSays(t *testing.T) {
	data, err := os.ReadFile("testdata/list/api-1.52-and-podman.json")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := decodeJSON[[]Entry](bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	known := contract.Container{Health: "healthy", NetworkMode: "container:infra"}
	for i, want := range []struct{ health, mode string }{{"unhealthy", "bridge"}, {"", "bridge"}, {"healthy", "container:infra"}} {
		if c := Refresh(known, entries[i]); c.Health != want.health || c.NetworkMode != want.mode {
			t.Errorf("entry %d: health %q mode %q, want %q %q", i, c.Health, c.NetworkMode, want.health, want.mode)
		}
	}
}

// TestFirstCallsRaceNot: the first calls of a fresh engine, made from
// several goroutines at once (the event stream, the sleeper's list, an
// inspect), settle the API version once: the client settles it on each
// first call without a lock, which the race detector (make test runs the
// unit lane with it) reports. The fake engine: a real one would do, but
// the race needs only an engine that answers.
func TestFirstCallsRaceNot(t *testing.T) {
	e := enginetest.New()
	e.Run(enginetest.Container{ID: strings.Repeat("cd", 32), Name: "one", IP: "10.0.0.2"})
	sock := serveEngine(t, onlyVersion("1.41", enginetest.Handler(e)))
	for range 10 {
		eng, err := Endpoint{Host: "unix://" + sock}.Engine()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var wg sync.WaitGroup
		wg.Add(4)
		go func() { defer wg.Done(); eng.Events(ctx, events.ListOptions{}) }()
		go func() { defer wg.Done(); eng.ReadList(ctx, container.ListOptions{}) }()
		go func() { defer wg.Done(); eng.ContainerInspect(ctx, "one") }()
		go func() { defer wg.Done(); eng.Info(ctx) }()
		wg.Wait()
		cancel()
		eng.Close()
	}
}
