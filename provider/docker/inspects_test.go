package docker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker/enginetest"
)

// BenchmarkChangeBesideHangingInspects measures how long an in-scope
// change (a pause, then an unpause) takes to reach the watcher's verdict
// while 50 containers outside --filter have inspects that hang: their
// network events carry no labels, so only an inspect tells their scope.
// Inspected in the event loop one after another, each waited out its 10 s
// deadline before the next event was read. A fake engine, as a real one
// cannot be made to hang chosen inspects; ns/op is the change's latency.
func BenchmarkChangeBesideHangingInspects(b *testing.B) {
	e := enginetest.New()
	mine := e.Run(enginetest.Container{Name: "mine", IP: "10.0.0.2", Env: []string{"VIRTUALHOST=mine.test", "PORT=8080"}, Labels: map[string]string{"team": "a"}})
	var gate enginetest.Gate
	gate.Freeze()
	defer gate.Thaw()
	var foreign []string
	for i := range 50 {
		id := e.Run(enginetest.Container{Name: fmt.Sprintf("foreign-%d", i), IP: fmt.Sprintf("10.0.1.%d", i), Labels: map[string]string{"team": "b"}})
		e.HangInspect(id, &gate)
		foreign = append(foreign, id)
	}
	scope, _ := ParseScope([]string{"label=team=a"})
	w := New(e, Options{Scope: scope}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	waitState := func(code contract.Code) {
		for verdictOf(w, mine).Code != code {
			time.Sleep(50 * time.Microsecond)
		}
	}
	waitState(contract.CodeRouted)
	for _, id := range foreign {
		e.EmitNetwork(id, events.ActionConnect)
	}
	for e.Calls("ContainerInspect") < 1+len(foreign) { // mine's, then the foreign ones, all hanging
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	for i := range b.N {
		state, action, code := "paused", events.ActionPause, contract.CodePaused
		if i%2 == 1 {
			state, action, code = "running", events.ActionUnPause, contract.CodeRouted
		}
		e.Update(mine, func(c *enginetest.Container) { c.State = state })
		e.Emit(mine, action, nil)
		waitState(code)
	}
}

// TestChangeNotHeldBehindHangingInspect: an inspect that hangs (until its
// 10 s deadline) holds up no other container's change, and its own
// container is routed once it answers.
func TestChangeNotHeldBehindHangingInspect(t *testing.T) {
	t.Parallel()
	e := enginetest.New()
	mine := e.Run(app("mine", "10.0.0.2"))
	w, _ := watch(t, e)
	waitRouted(t, w, 5*time.Second, "mine.test", "10.0.0.2:8080")
	var gate enginetest.Gate
	gate.Freeze()
	slow := "slow-" + strings.Repeat("0", 59)
	e.HangInspect(slow, &gate)
	e.Run(enginetest.Container{ID: slow, Name: "slow", IP: "10.0.0.3", Env: []string{"VIRTUALHOST=slow.test", "PORT=8080"}})
	waitFor(t, 5*time.Second, "the slow container's inspect to start", func() bool { return e.Calls("ContainerInspect") >= 2 })
	e.Update(mine, func(c *enginetest.Container) { c.State = "paused" })
	e.Emit(mine, events.ActionPause, nil)
	waitFor(t, 5*time.Second, "mine paused while another inspect hangs", func() bool { return verdictOf(w, mine).Code == "paused" })
	gate.Thaw()
	waitRouted(t, w, 5*time.Second, "slow.test", "10.0.0.3:8080")
}
