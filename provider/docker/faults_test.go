package docker

// Fault-injection tests of the watcher's failure policy, against the
// in-process fake engine (enginetest): refused and dropping event streams,
// failing inspects, a frozen engine, a restarting one. The real engine
// covers the happy paths (cmd/dockroute's end-to-end tests); it cannot be
// frozen or restarted from a test on a shared machine.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/engine"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// logRecorder is a slog handler keeping every record as one line of text,
// so tests can count what the watcher said.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}

// count tells how many lines contain substr.
func (r *logRecorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// watch runs a watcher of e until the test ends.
func watch(t *testing.T, e *enginetest.Engine) (*Watcher, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	w := New(e, Options{}, time.Hour, slog.New(rec))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("watcher log:\n%s", rec)
		}
	})
	return w, rec
}

// app is a container asking for NAME.test on port 8080 at ip.
func app(name, ip string) enginetest.Container {
	return enginetest.Container{Name: name, IP: ip, Env: []string{"VIRTUALHOST=" + name + ".test", "PORT=8080"}}
}

// servers is what the watcher routes host to, and whether it says that is
// current.
func servers(w *Watcher, host string) ([]string, bool) {
	bs, fresh := w.Backends()
	var out []string
	for _, b := range bs {
		if b.Host == host {
			out = append(out, b.Server)
		}
	}
	slices.Sort(out)
	return out, fresh
}

// waitFor polls cond every 5 ms for up to timeout and returns how long it
// took; it fails the test with what on timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// waitRouted waits until host is routed, freshly, to exactly want.
func waitRouted(t *testing.T, w *Watcher, timeout time.Duration, host string, want ...string) time.Duration {
	t.Helper()
	return waitFor(t, timeout, fmt.Sprintf("%s routed to %v", host, want), func() bool {
		got, fresh := servers(w, host)
		return fresh && slices.Equal(got, want)
	})
}

func verdictOf(w *Watcher, id string) contract.Verdict {
	for _, v := range w.Verdicts() {
		if v.ID == id {
			return v
		}
	}
	return contract.Verdict{}
}

func explainOne(t *testing.T, e engine.Engine, id string) contract.Verdict {
	t.Helper()
	vs, err := Explain(context.Background(), e, Options{}, []string{id})
	if err != nil || len(vs) != 1 {
		t.Fatalf("explain: %v %v", vs, err)
	}
	return vs[0]
}

// A container that survives its stop signal is drained at once, then
// routed again once it outlived its stop timeout plus the slack; a signal
// that is not a stop changes nothing; explain agrees with the watcher at
// every step.
func TestSurvivedStopSignalIsRoutedAgain(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	c := app("jvm", "10.0.0.2")
	c.StopTimeout = 1 // seconds: the window is 1 s + stopSlack
	id := e.Run(c)
	w, rec := watch(t, e)
	waitRouted(t, w, 5*time.Second, "jvm.test", "10.0.0.2:8080")

	e.Kill(id, 1) // SIGHUP: a reload, not a stop
	time.Sleep(200 * time.Millisecond)
	if got, _ := servers(w, "jvm.test"); len(got) != 1 || !explainOne(t, e, id).Routed() {
		t.Fatalf("a SIGHUP unrouted the container: %v", got)
	}

	e.Kill(id, 3) // SIGQUIT: a JVM's thread dump, which it survives
	killed := time.Now()
	waitRouted(t, w, 2*time.Second, "jvm.test")
	if v, x := verdictOf(w, id), explainOne(t, e, id); v.Code != "stopping" || x.Code != "stopping" {
		t.Fatalf("while stopping: watcher says %q, explain says %q; want both stopping", v.Code, x.Code)
	}

	waitRouted(t, w, 1*time.Second+stopSlack+2*time.Second, "jvm.test", "10.0.0.2:8080")
	if took := time.Since(killed); took < 1*time.Second+stopSlack-200*time.Millisecond {
		t.Fatalf("routed again %v after the signal, before its stop timeout (1s) plus slack (%v) ran out", took, stopSlack)
	}
	if x := explainOne(t, e, id); !x.Routed() {
		t.Fatalf("the watcher routes the survivor again but explain says %q", x.Reason)
	}
	if rec.count("survived its stop signal") != 1 {
		t.Fatalf("no log line saying why the container is routed again:\n%s", rec)
	}

	// A real stop: the container exits; a later start routes it at once.
	e.Kill(id, 15)
	waitRouted(t, w, 2*time.Second, "jvm.test")
	e.Exit(id)
	e.Update(id, func(c *enginetest.Container) { c.State = "running" })
	e.Emit(id, "start", nil)
	waitRouted(t, w, 2*time.Second, "jvm.test", "10.0.0.2:8080")
}

// A container whose stop window runs out is routed again only once Docker
// confirms it runs: one removed meanwhile, whose die and destroy the
// watcher has not seen, must never be routed again (its address may
// already be another container's).
func TestRemovedContainerIsNeverRoutedAgain(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	c := app("removed", "10.0.0.3")
	c.StopTimeout = 1 // seconds: the window is 1 s + stopSlack
	id := e.Run(c)
	w, rec := watch(t, e)
	waitRouted(t, w, 5*time.Second, "removed.test", "10.0.0.3:8080")

	e.Kill(id, 9) // docker rm -f's signal
	waitRouted(t, w, 2*time.Second, "removed.test")
	e.Delete(id) // removed; its die and destroy not seen yet
	deadline := time.Now().Add(1*time.Second + stopSlack + 1500*time.Millisecond)
	for time.Now().Before(deadline) {
		if got, _ := servers(w, "removed.test"); len(got) > 0 {
			t.Fatalf("a removed container was routed again: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rec.count("survived its stop signal"); n != 0 {
		t.Fatalf("a removed container was said to survive its stop signal:\n%s", rec)
	}
	if v := verdictOf(w, id); v.ID != "" {
		t.Fatalf("a removed container keeps a verdict: %+v", v)
	}
}

// A refused /events subscription must not make the watcher spin: attempts
// back off (0.1 s, 0.2 s, 0.4 s, ...) instead of repeating at once.
func TestRefusedEventsBackOff(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	e.RefuseEvents(errors.New(`Error response from daemon: {"message":"forbidden by socket proxy"}`))
	_, rec := watch(t, e)
	time.Sleep(3 * time.Second)
	// Backoff allows attempts at 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s.
	if n := e.Calls("Events"); n > 6 {
		t.Fatalf("%d subscriptions in 3 s: the watcher spins", n)
	}
	if n := rec.count("docker event stream lost"); n > 6 {
		t.Fatalf("%d warnings in 3 s", n)
	}
}

// A stream that the engine accepts and drops at once costs a full sync per
// attempt: those must back off too, as the stream never stays up long
// enough to reset the backoff.
func TestDroppingStreamBacksOff(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	e.Run(app("a", "10.0.0.2"))
	e.DropStreamsAfter(0)
	watch(t, e)
	time.Sleep(3 * time.Second)
	if n := e.Calls("ContainerList"); n > 6 {
		t.Fatalf("%d full syncs in 3 s: the watcher spins", n)
	}
}

// After an outage long enough for the backoff to grow, the watcher must
// still converge within 2 s of the engine answering again: it probes the
// engine while it is down and resyncs the moment it answers.
func TestOutageRecoversAtOnce(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	e.Run(app("a", "10.0.0.2"))
	w, _ := watch(t, e)
	waitRouted(t, w, 5*time.Second, "a.test", "10.0.0.2:8080")

	e.Down()
	waitFor(t, time.Second, "the watcher notices the outage", func() bool { return !w.Connected() })
	time.Sleep(7300 * time.Millisecond)
	e.Run(app("b", "10.0.0.3"))
	e.Up()
	took := waitRouted(t, w, 2*time.Second, "b.test", "10.0.0.3:8080")
	t.Logf("converged %v after the engine answered again", took)
	if pings := e.Calls("Ping"); pings < 7 {
		t.Fatalf("%d pings during a 7 s outage: the engine must be probed at least every second", pings)
	}
}

// An engine restart gives containers new addresses and hands old ones to
// other containers. From the moment the engine answers again, the watcher
// must never report the old addresses as current: only a full sync after
// the restart may be published.
func TestEngineRestartNeverPublishesStaleAddresses(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	x1, x2 := e.Run(app("x1", "10.0.0.1")), e.Run(app("x2", "10.0.0.2"))
	w, _ := watch(t, e)
	waitRouted(t, w, 5*time.Second, "x1.test", "10.0.0.1:8080")
	waitRouted(t, w, 5*time.Second, "x2.test", "10.0.0.2:8080")

	var back atomic.Bool
	var stale atomic.Value
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			answering := back.Load() // read before the table, so it is conservative
			s1, fresh := servers(w, "x1.test")
			if answering && fresh && slices.Contains(s1, "10.0.0.1:8080") {
				stale.Store(fmt.Sprintf("x1.test routed to %v (x2's address since the restart) as current", s1))
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()

	e.Down()
	e.Update(x1, func(c *enginetest.Container) { c.IP = "10.0.0.2" })
	e.Update(x2, func(c *enginetest.Container) { c.IP = "10.0.0.1" })
	e.Emit(x1, "start", nil)
	e.Emit(x2, "start", nil)
	time.Sleep(1300 * time.Millisecond)
	back.Store(true)
	e.Up()
	took := waitRouted(t, w, 2*time.Second, "x1.test", "10.0.0.2:8080")
	waitRouted(t, w, time.Second, "x2.test", "10.0.0.1:8080")
	close(stop)
	<-polled
	if s := stale.Load(); s != nil {
		t.Fatal(s)
	}
	t.Logf("new addresses current %v after the engine answered again", took)
}

// One container Docker fails to inspect (a 500, or gone between list and
// inspect) affects only itself: every other container is synced and routed,
// the failing one is shown with the reason and routed once Docker answers
// for it again, and a failed inspect after an event never breaks the
// stream.
func TestFailedInspectAffectsOnlyItsContainer(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	good := e.Run(app("good", "10.0.0.2"))
	bad := e.Run(app("bad", "10.0.0.3"))
	gone := e.Run(app("gone", "10.0.0.4"))
	e.FailInspect(bad, errors.New("Error response from daemon: 500 Internal Server Error"))
	e.VanishOnInspect(gone)
	w, rec := watch(t, e)

	waitRouted(t, w, 5*time.Second, "good.test", "10.0.0.2:8080")
	if v := verdictOf(w, bad); v.Code != "inspect_failed" || !strings.Contains(v.Reason, "500") {
		t.Fatalf("verdict of the failing container: %+v", v)
	}
	if rec.count("500 Internal Server Error") == 0 {
		t.Fatal("the failed inspect was not logged")
	}
	if got, _ := servers(w, "gone.test"); len(got) != 0 || verdictOf(w, gone).ID != "" {
		t.Fatalf("a container removed between list and inspect is known: %v", verdictOf(w, gone))
	}
	e.FailInspect(bad, nil)
	waitRouted(t, w, 3*time.Second, "bad.test", "10.0.0.3:8080")

	// After an event: a new container failing, and a known one failing.
	e.FailInspect(good, errors.New("500 again"))
	e.Emit(good, "health_status", nil)
	late := "late-" + strings.Repeat("0", 59)
	e.FailInspect(late, errors.New("500 for the new one"))
	e.Run(enginetest.Container{ID: late, Name: "late", IP: "10.0.0.5", Env: []string{"VIRTUALHOST=late.test", "PORT=8080"}})
	waitFor(t, 2*time.Second, "the new container's failure shows", func() bool { return verdictOf(w, late).Code == "inspect_failed" })
	if got, _ := servers(w, "good.test"); len(got) != 1 {
		t.Fatalf("a failed inspect after an event unrouted a known container: %v", got)
	}
	e.FailInspect(late, nil)
	waitRouted(t, w, 3*time.Second, "late.test", "10.0.0.5:8080")
	if !w.Connected() || rec.count("event stream lost") > 0 {
		t.Fatalf("a failed inspect broke the event stream:\n%s", rec)
	}
}

// A frozen engine (SIGSTOP) keeps its connections open and answers
// nothing: the watcher must notice within 15 s, report itself disconnected
// while keeping the routes, and recover the moment the engine thaws.
func TestFrozenEngineIsNoticed(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	e.Run(app("a", "10.0.0.2"))
	w, _ := watch(t, e)
	waitRouted(t, w, 5*time.Second, "a.test", "10.0.0.2:8080")

	e.Freeze()
	took := waitFor(t, 15*time.Second, "disconnected after the engine froze", func() bool { return !w.Connected() })
	t.Logf("frozen engine noticed after %v", took)
	if got, fresh := servers(w, "a.test"); !slices.Equal(got, []string{"10.0.0.2:8080"}) || fresh {
		t.Fatalf("while frozen: servers %v fresh %v; want the last ones kept, marked stale", got, fresh)
	}
	e.Thaw()
	took = waitFor(t, 2*time.Second, "connected after the engine thawed", func() bool { return w.Connected() })
	t.Logf("reconnected %v after the thaw", took)
	waitRouted(t, w, time.Second, "a.test", "10.0.0.2:8080")
}

// A scoped watcher (--filter) never lists, routes, counts or shows a
// container outside its scope, whether it was there at start or started
// later, and explain says why.
func TestScope(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	mine := app("mine", "10.0.0.2")
	mine.Labels = map[string]string{"team": "web"}
	e.Run(mine)
	foreign := e.Run(app("foreign", "10.0.0.3"))
	scope, err := ParseScope([]string{"label=team=web"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{}
	w := New(e, Options{Scope: scope}, time.Hour, slog.New(rec))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	waitRouted(t, w, 5*time.Second, "mine.test", "10.0.0.2:8080")
	inspects := e.Calls("ContainerInspect")
	late := e.Run(app("late-foreign", "10.0.0.4"))
	e.Run(enginetest.Container{Name: "late-mine", IP: "10.0.0.5", Labels: map[string]string{"team": "web"}, Env: []string{"VIRTUALHOST=late-mine.test", "PORT=8080"}})
	waitRouted(t, w, 2*time.Second, "late-mine.test", "10.0.0.5:8080")
	// The foreign start's event shows its labels: no inspect for it. (A
	// count of all inspects failed once under load: a late one of mine.)
	if n := e.Calls("ContainerInspect "+late) + e.Calls("ContainerInspect "+foreign); n != 0 {
		t.Fatalf("%d inspects of containers outside the scope; want 0", n)
	}
	if e.Calls("ContainerInspect")-inspects < 1 {
		t.Fatal("the container in scope was not inspected")
	}
	for _, v := range w.Verdicts() {
		if v.ID == foreign || v.ID == late {
			t.Fatalf("a container outside the scope is known: %+v", v)
		}
	}
	if got, _ := servers(w, "foreign.test"); len(got) != 0 {
		t.Fatalf("foreign.test routed: %v", got)
	}
	vs, err := Explain(ctx, e, Options{Scope: scope}, []string{foreign})
	if err != nil || len(vs) != 1 || vs[0].Code != "out_of_scope" || !strings.Contains(vs[0].Reason, "it lacks the label team=web, which dockroute's --filter requires") {
		t.Fatalf("explain of a foreign container: %+v %v", vs, err)
	}
	if _, err := ParseScope([]string{"status=running"}); err == nil {
		t.Fatal("an unsupported filter was accepted")
	}
}

// A container's whole life costs one inspect: the start brings its data;
// pause, unpause, kill, die, a health status and destroy say all there is
// to know (before: one inspect per event, 6 per lifecycle).
func TestLifecycleCostsOneInspect(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	w, _ := watch(t, e)
	waitFor(t, 5*time.Second, "first sync", func() bool { _, ok := w.Backends(); return ok })
	before := e.Calls("ContainerInspect")
	id := e.Run(app("life", "10.0.0.2"))
	waitRouted(t, w, 2*time.Second, "life.test", "10.0.0.2:8080")
	e.Update(id, func(c *enginetest.Container) { c.State = "paused" })
	e.Emit(id, "pause", nil)
	waitRouted(t, w, 2*time.Second, "life.test")
	e.Update(id, func(c *enginetest.Container) { c.State = "running" })
	e.Emit(id, "unpause", nil)
	waitRouted(t, w, 2*time.Second, "life.test", "10.0.0.2:8080")
	e.Update(id, func(c *enginetest.Container) { c.Health = "unhealthy" })
	e.Emit(id, "health_status: unhealthy", nil)
	waitRouted(t, w, 2*time.Second, "life.test")
	e.Update(id, func(c *enginetest.Container) { c.Health = "healthy" })
	e.Emit(id, "health_status: healthy", nil)
	waitRouted(t, w, 2*time.Second, "life.test", "10.0.0.2:8080")
	e.Kill(id, 15)
	waitRouted(t, w, 2*time.Second, "life.test")
	e.Exit(id)
	waitFor(t, 2*time.Second, "not running", func() bool { return verdictOf(w, id).Code == "not_running" })
	e.Remove(id)
	waitFor(t, 2*time.Second, "gone", func() bool { return verdictOf(w, id).ID == "" })
	if n := e.Calls("ContainerInspect") - before; n != 1 {
		t.Fatalf("%d inspects for one container's life, want 1", n)
	}
}
