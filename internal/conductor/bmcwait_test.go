package conductor_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// fakeBMC is a firmware interface whose "flash" step starts a task on a pretend BMC and
// waits on it: the test ends the task (or fails it) and the conductor's BMC poll sees it.
type fakeBMC struct {
	mu    sync.Mutex
	tasks map[string]string // task id -> "Running", "Completed" or "Exception: <message>"
	polls int
	// deadline is how long the step's BMC wait may last.
	deadline time.Duration
}

func newFakeBMC() *fakeBMC { return &fakeBMC{tasks: map[string]string{}, deadline: time.Hour} }

func (b *fakeBMC) set(task, state string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tasks[task] = state
}

func (b *fakeBMC) Steps(conductor.StepKind) []conductor.Step {
	return []conductor.Step{{Name: "flash"}}
}

func (b *fakeBMC) RunStep(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	task := fmt.Sprint(step.Args["task"])
	b.set(task, "Running")
	return true, t.WaitForBMC(ctx, conductor.BMCWait{Data: map[string]any{"task": task}, Deadline: time.Now().Add(b.deadline)})
}

func (b *fakeBMC) PollBMC(_ context.Context, _ *conductor.Task, _ conductor.Step, w *conductor.BMCWait) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.polls++
	state := b.tasks[fmt.Sprint(w.Data["task"])]
	w.Data["polls"] = float64(b.polls)
	if msg, ok := strings.CutPrefix(state, "Exception: "); ok {
		return false, fmt.Errorf("task ended in Exception: %s", msg)
	}
	return state == "Completed", nil
}

// bmcEnv is a conductor whose nodes' firmware interface is the fake BMC, and a manageable
// node that offers deploy.erase_devices after it.
func bmcEnv(t *testing.T, b *fakeBMC, opts ...envOption) (*env, *ironwork.Node) {
	t.Helper()
	e := newEnv(t, opts...)
	e.reg.Add(ironwork.FirmwareInterface, "fakebmc", b)
	e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices"})
	e.rec.offer(ironwork.DeployInterface, conductor.ServiceSteps, conductor.Step{Name: "erase_devices"})
	n := e.node(t, func(n *ironwork.Node) {
		n.ProvisionState = ironwork.Manageable
		n.Interfaces[ironwork.FirmwareInterface] = "fakebmc"
	})
	return e, n
}

func flashThenErase(task string) func(r *conductor.ProvisionRequest) {
	return withCleanSteps(stepMap("firmware", "flash", -1, map[string]any{"task": task}), stepMap("deploy", "erase_devices", -1, nil))
}

func TestBMCWaitResumesWhenTheTaskEnds(t *testing.T) {
	t.Parallel()
	b := newFakeBMC()
	e, n := bmcEnv(t, b)
	ctx := context.Background()
	ok(t, provision(t, e.c, n.UUID, "clean", flashThenErase("t1")))
	got := e.settled(t, n.UUID, ironwork.CleanWait)
	if got.CleanStep["step"] != "flash" || got.DriverInternalInfo["bmc_wait"] == nil {
		t.Fatalf("waiting on the BMC: clean_step %v, driver_internal_info %v", got.CleanStep, got.DriverInternalInfo)
	}
	// The agent's callback timeout does not apply: the wait has its own deadline.
	ok(t, e.c.CheckTimeouts(ctx))
	ok(t, e.c.PollBMCWaits(ctx))
	got = e.settled(t, n.UUID, ironwork.CleanWait)
	if w, _ := got.DriverInternalInfo["bmc_wait"].(map[string]any); w["data"].(map[string]any)["polls"] != float64(1) {
		t.Fatalf("the poll state is not kept in the node: %v", got.DriverInternalInfo["bmc_wait"])
	}
	if calls := stepCalls(e.rec); len(calls) != 0 {
		t.Fatalf("steps ran before the BMC finished: %v", calls)
	}
	b.set("t1", "Completed")
	ok(t, e.c.PollBMCWaits(ctx))
	got = e.settled(t, n.UUID, ironwork.Manageable)
	if calls := stepCalls(e.rec); len(calls) != 1 || calls[0] != "deploy.RunStep(erase_devices)" {
		t.Fatalf("steps after the BMC work: %v", calls)
	}
	if _, ok := got.DriverInternalInfo["bmc_wait"]; ok || len(got.CleanStep) != 0 {
		t.Fatalf("after the clean: clean_step %v, driver_internal_info %v", got.CleanStep, got.DriverInternalInfo)
	}
}

func TestBMCWaitFailsWithTheBMCsMessage(t *testing.T) {
	t.Parallel()
	b := newFakeBMC()
	e, n := bmcEnv(t, b)
	e.update(t, n.UUID, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
	ok(t, provision(t, e.c, n.UUID, "service", withServiceSteps(stepMap("firmware", "flash", -1, map[string]any{"task": "t2"}))))
	e.settled(t, n.UUID, ironwork.ServiceWait)
	b.set("t2", "Exception: image signature rejected")
	ok(t, e.c.PollBMCWaits(context.Background()))
	got := e.settled(t, n.UUID, ironwork.ServiceFailed)
	if !strings.Contains(got.LastError, "image signature rejected") || !strings.Contains(got.LastError, "firmware.flash") {
		t.Fatalf("last_error %q", got.LastError)
	}
	if _, ok := got.DriverInternalInfo["bmc_wait"]; ok || len(got.ServiceStep) != 0 {
		t.Fatalf("after the failure: service_step %v, driver_internal_info %v", got.ServiceStep, got.DriverInternalInfo)
	}
}

func TestBMCWaitDeadline(t *testing.T) {
	t.Parallel()
	b := newFakeBMC()
	b.deadline = -time.Second // already past: the first poll that finds the task running fails it
	e, n := bmcEnv(t, b)
	ok(t, provision(t, e.c, n.UUID, "clean", flashThenErase("t3")))
	e.settled(t, n.UUID, ironwork.CleanWait)
	ok(t, e.c.PollBMCWaits(context.Background()))
	got := e.settled(t, n.UUID, ironwork.CleanFailed)
	if !strings.Contains(got.LastError, "did not finish") {
		t.Fatalf("last_error %q", got.LastError)
	}
	if calls := stepCalls(e.rec); len(calls) != 0 {
		t.Fatalf("steps ran after the deadline: %v", calls)
	}
}

// A conductor that restarts (or another that takes the node over) finds the wait in the node
// and resumes it; nothing fails the node for being left in clean wait.
func TestBMCWaitSurvivesARestart(t *testing.T) {
	t.Parallel()
	b := newFakeBMC()
	e, n := bmcEnv(t, b)
	ok(t, provision(t, e.c, n.UUID, "clean", flashThenErase("t4")))
	e.settled(t, n.UUID, ironwork.CleanWait)
	e.c.Stop()

	e2 := newEnvOn(t, e.store, "c1", func(e2 *env) { e2.reg.Add(ironwork.FirmwareInterface, "fakebmc", b) })
	e2.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices"})
	e2.settled(t, n.UUID, ironwork.CleanWait)
	ctx := context.Background()
	ok(t, e2.c.PollBMCWaits(ctx))
	e2.settled(t, n.UUID, ironwork.CleanWait)
	b.set("t4", "Completed")
	ok(t, e2.c.PollBMCWaits(ctx))
	e2.settled(t, n.UUID, ironwork.Manageable)
	if calls := stepCalls(e2.rec); len(calls) != 1 || calls[0] != "deploy.RunStep(erase_devices)" {
		t.Fatalf("steps after the restart: %v", calls)
	}
}

// Abort during a step that waits on the BMC and is not abortable: as Ironic's, the step ends
// first, then the clean fails as aborted and the remaining steps do not run.
func TestBMCWaitAbortAfterTheStep(t *testing.T) {
	t.Parallel()
	b := newFakeBMC()
	e, n := bmcEnv(t, b)
	ctx := context.Background()
	ok(t, provision(t, e.c, n.UUID, "clean", flashThenErase("t5")))
	e.settled(t, n.UUID, ironwork.CleanWait)
	ok(t, provision(t, e.c, n.UUID, "abort"))
	got := e.settled(t, n.UUID, ironwork.CleanWait)
	if got.CleanStep["abort_after"] != true {
		t.Fatalf("clean_step after abort: %v", got.CleanStep)
	}
	ok(t, e.c.PollBMCWaits(ctx))
	e.settled(t, n.UUID, ironwork.CleanWait)
	b.set("t5", "Completed")
	ok(t, e.c.PollBMCWaits(ctx))
	got = e.settled(t, n.UUID, ironwork.CleanFailed)
	if !strings.Contains(got.LastError, "aborted") || !strings.Contains(got.LastError, "firmware.flash") {
		t.Fatalf("last_error %q", got.LastError)
	}
	if calls := stepCalls(e.rec); len(calls) != 0 {
		t.Fatalf("steps ran after the abort: %v", calls)
	}
	if _, ok := got.DriverInternalInfo["bmc_wait"]; ok {
		t.Fatalf("bmc_wait left after the abort: %v", got.DriverInternalInfo)
	}
}

// Another conductor that takes the node over (the first one left the ring) polls the same
// BMC work and resumes the steps.
func TestBMCWaitTakenOver(t *testing.T) {
	t.Parallel()
	b := newFakeBMC()
	e, n := bmcEnv(t, b)
	ok(t, provision(t, e.c, n.UUID, "clean", flashThenErase("t6")))
	e.settled(t, n.UUID, ironwork.CleanWait)
	e.c.Stop()
	ok(t, e.store.UnregisterConductor(context.Background(), "c1"))

	e2 := newEnvOn(t, e.store, "c2", func(e2 *env) { e2.reg.Add(ironwork.FirmwareInterface, "fakebmc", b) })
	e2.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices"})
	b.set("t6", "Completed")
	ok(t, e2.c.PollBMCWaits(context.Background()))
	e2.settled(t, n.UUID, ironwork.Manageable)
	if calls := stepCalls(e2.rec); len(calls) != 1 || calls[0] != "deploy.RunStep(erase_devices)" {
		t.Fatalf("steps after the takeover: %v", calls)
	}
}
