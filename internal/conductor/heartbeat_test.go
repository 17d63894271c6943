package conductor_test

import (
	"context"
	"errors"
	"github.com/ironwork/ironwork/api"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// waitCase puts a node into a state in which it waits for its agent, with one more step to run
// once the agent reports back.
type waitCase struct {
	name     string
	wait     ironwork.ProvisionState
	resumed  ironwork.ProvisionState // where a resumed node ends
	failed   ironwork.ProvisionState // where a failed heartbeat leaves it
	nextStep string                  // the step that runs after the wait
	setup    func(t *testing.T, e *env) *ironwork.Node
}

var waitCases = []waitCase{
	{name: "clean wait", wait: ironwork.CleanWait, resumed: ironwork.Available, failed: ironwork.CleanFailed, nextStep: "deploy.RunStep(verify)",
		setup: waitSetup(ironwork.DeployInterface, conductor.CleanSteps,
			[]conductor.Step{{Name: "erase_devices", Priority: 20}, {Name: "verify", Priority: 10}},
			func(r *recorder) { r.waitStep["erase_devices"] = true },
			func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable }, "provide")},
	{name: "deploy wait (wait call-back)", wait: ironwork.DeployWait, resumed: ironwork.Active, failed: ironwork.DeployFailed, nextStep: "deploy.RunStep(write_image)",
		setup: waitSetup(ironwork.DeployInterface, conductor.DeploySteps,
			[]conductor.Step{{Name: "deploy", Priority: 100}, {Name: "write_image", Priority: 80}},
			func(r *recorder) { r.deployWait = true },
			nil, "active")},
	{name: "service wait", wait: ironwork.ServiceWait, resumed: ironwork.Active, failed: ironwork.ServiceFailed, nextStep: "management.RunStep(flash)",
		setup: waitSetup(ironwork.ManagementInterface, conductor.ServiceSteps,
			[]conductor.Step{{Name: "stage", Priority: 0}, {Name: "flash", Priority: 0}},
			func(r *recorder) { r.waitStep["stage"] = true },
			func(n *ironwork.Node) { n.ProvisionState = ironwork.Active }, "service",
			withServiceSteps(stepMap("management", "stage", -1, nil), stepMap("management", "flash", -1, nil)))},
}

// waitSetup returns a waitCase setup: the recorder offers steps of kind on iface and is
// changed by rec, then a node made with node is moved towards target.
func waitSetup(iface ironwork.InterfaceKind, kind conductor.StepKind, steps []conductor.Step, rec func(*recorder),
	node func(*ironwork.Node), target string, more ...func(*conductor.ProvisionRequest)) func(*testing.T, *env) *ironwork.Node {
	return func(t *testing.T, e *env) *ironwork.Node {
		e.rec.offer(iface, kind, steps...)
		e.rec.set(rec)
		n := e.node(t, node)
		ok(t, provision(t, e.c, n.UUID, target, more...))
		return n
	}
}

// forEachWait runs body in a parallel subtest for every wait case, with the node set up,
// settled in its wait state and holding a freshly issued agent token.
func forEachWait(t *testing.T, body func(t *testing.T, tc waitCase, e *env, n *ironwork.Node, tok string)) {
	t.Helper()
	for _, tc := range waitCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			n := tc.setup(t, e)
			e.settled(t, n.UUID, tc.wait)
			body(t, tc, e, n, issueToken(t, e.c, n.UUID))
		})
	}
}

func TestHeartbeatResumesSteps(t *testing.T) {
	t.Parallel()
	forEachWait(t, func(t *testing.T, tc waitCase, e *env, n *ironwork.Node, tok string) {
		if strings.Contains(strings.Join(stepCalls(e.rec), " "), tc.nextStep) {
			t.Fatalf("%s ran before the agent reported back", tc.nextStep)
		}
		ok(t, heartbeat(t, e.c, n.UUID, conductor.Heartbeat{CallbackURL: "http://127.0.0.1:9999", AgentToken: tok, AgentVersion: "1.0"}))
		got := e.settled(t, n.UUID, tc.resumed)
		if !strings.Contains(strings.Join(stepCalls(e.rec), " "), tc.nextStep) {
			t.Errorf("steps after the heartbeat %v do not include %s", stepCalls(e.rec), tc.nextStep)
		}
		if got.LastError != "" {
			t.Errorf("last_error %q after a successful resume", got.LastError)
		}
	})
}

func TestHeartbeatAgentStepFails(t *testing.T) {
	t.Parallel()
	forEachWait(t, func(t *testing.T, tc waitCase, e *env, n *ironwork.Node, tok string) {
		e.rec.set(func(r *recorder) {
			r.hb = func(conductor.Heartbeat) (bool, error) { return false, errors.New("agent: disk sda is read-only") }
		})
		ok(t, heartbeat(t, e.c, n.UUID, conductor.Heartbeat{CallbackURL: "http://127.0.0.1:9999", AgentToken: tok}))
		got := e.settled(t, n.UUID, tc.failed)
		if !strings.Contains(got.LastError, "disk sda is read-only") {
			t.Errorf("last_error %q does not carry the agent's error", got.LastError)
		}
		if strings.Contains(strings.Join(stepCalls(e.rec), " "), tc.nextStep) {
			t.Errorf("%s ran after the agent's step failed", tc.nextStep)
		}
		if len(got.CleanStep)+len(got.DeployStep)+len(got.ServiceStep) != 0 {
			t.Errorf("step fields not cleared after the failure: %v %v %v", got.CleanStep, got.DeployStep, got.ServiceStep)
		}
	})
}

func TestHeartbeatAgentStillBusy(t *testing.T) {
	t.Parallel()
	forEachWait(t, func(t *testing.T, tc waitCase, e *env, n *ironwork.Node, tok string) {
		old := time.Now().Add(-time.Hour).UTC()
		e.update(t, n.UUID, func(n *ironwork.Node) { n.ProvisionUpdatedAt = &old })
		e.rec.set(func(r *recorder) { r.hb = func(conductor.Heartbeat) (bool, error) { return false, nil } })
		progress := &api.Progress{Command: "standby.prepare_image", BytesDone: 40, BytesTotal: 100, BytesPerSecond: 2.5}
		ok(t, heartbeat(t, e.c, n.UUID, conductor.Heartbeat{CallbackURL: "http://127.0.0.1:9999", AgentToken: tok, AgentVersion: "9.1", Progress: progress}))
		got := e.settled(t, n.UUID, tc.wait)
		if got.ProvisionUpdatedAt == nil || !got.ProvisionUpdatedAt.After(old) {
			t.Errorf("a live agent's heartbeat did not push provision_updated_at (%v) past %v", got.ProvisionUpdatedAt, old)
		}
		info := got.DriverInternalInfo
		if info["agent_url"] != "http://127.0.0.1:9999" || info["agent_version"] != "9.1" || info["agent_last_heartbeat"] == nil {
			t.Errorf("agent fields after a heartbeat: %v", info)
		}
		want := map[string]any{"command": "standby.prepare_image", "bytes_done": 40.0, "bytes_total": 100.0, "bytes_per_second": 2.5}
		if diff := cmp.Diff(want, info["ironwork_agent_progress"]); diff != "" {
			t.Errorf("agent progress (-want +got):\n%s", diff)
		}
		// A heartbeat without progress removes the old progress.
		ok(t, heartbeat(t, e.c, n.UUID, conductor.Heartbeat{CallbackURL: "http://127.0.0.1:9999", AgentToken: tok}))
		if got := e.settled(t, n.UUID, tc.wait); got.DriverInternalInfo["ironwork_agent_progress"] != nil {
			t.Errorf("progress kept after a heartbeat without it: %v", got.DriverInternalInfo["ironwork_agent_progress"])
		}
	})
}

func TestHeartbeatRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	waiting := waitCases[0].setup(t, e)
	e.settled(t, waiting.UUID, ironwork.CleanWait)
	tok := issueToken(t, e.c, waiting.UUID)
	idle := e.node(t, nil)
	const idleTok = "token-of-an-idle-node" // lookup refuses idle nodes: plant one
	e.update(t, idle.UUID, func(n *ironwork.Node) { n.DriverInternalInfo = ironwork.JSONObject{"agent_secret_token": idleTok} })
	noToken := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.CleanWait })

	for _, tc := range []struct {
		name  string
		node  string
		token string
		want  ironwork.Code
	}{
		{"wrong token", waiting.UUID, tok + "x", ironwork.EFORBIDDEN},
		{"empty token", waiting.UUID, "", ironwork.EFORBIDDEN},
		{"node never issued a token", noToken.UUID, "", ironwork.EFORBIDDEN},
		{"state without an agent", idle.UUID, idleTok, ironwork.ECONFLICT},
		{"unknown node", "no-such-node", tok, ironwork.ENOTFOUND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, heartbeat(t, e.c, tc.node, conductor.Heartbeat{CallbackURL: "http://127.0.0.1:6666", AgentToken: tc.token}), tc.want)
		})
	}
	e.c.Wait()
	for _, n := range []*ironwork.Node{waiting, idle, noToken} {
		if url := e.get(t, n.UUID).DriverInternalInfo["agent_url"]; url != nil {
			t.Errorf("a refused heartbeat wrote the agent URL %v of node %s", url, n.UUID)
		}
	}
	if calls := e.rec.Calls("deploy.Heartbeat"); len(calls) != 0 {
		t.Errorf("refused heartbeats reached the deploy interface: %v", calls)
	}
	e.settled(t, waiting.UUID, ironwork.CleanWait)
}

func TestHeartbeatRecordedButNotActedOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *env) (*ironwork.Node, ironwork.ProvisionState, func())
	}{
		{"rescue wait", func(t *testing.T, e *env) (*ironwork.Node, ironwork.ProvisionState, func()) {
			e.rec.set(func(r *recorder) { r.rescueWait = true })
			n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
			ok(t, provision(t, e.c, n.UUID, "rescue", withRescuePassword("s3cret")))
			return n, ironwork.RescueWait, nil
		}},
		{"maintenance", func(t *testing.T, e *env) (*ironwork.Node, ironwork.ProvisionState, func()) {
			n := waitCases[0].setup(t, e)
			e.settled(t, n.UUID, ironwork.CleanWait)
			ok(t, setMaintenance(t, e.c, n.UUID, true, "looking at it"))
			return n, ironwork.CleanWait, nil
		}},
		{"locked by another conductor", func(t *testing.T, e *env) (*ironwork.Node, ironwork.ProvisionState, func()) {
			n := waitCases[0].setup(t, e)
			e.settled(t, n.UUID, ironwork.CleanWait)
			locked, err := e.store.ReserveNode(context.Background(), n.UUID, "other")
			ok(t, err)
			return n, ironwork.CleanWait, func() { ok(t, e.store.ReleaseNode(context.Background(), locked.ID, "other")) }
		}},
		{"deploy interface without heartbeat handling", func(t *testing.T, e *env) (*ironwork.Node, ironwork.ProvisionState, func()) {
			e.rec.offer(ironwork.ManagementInterface, conductor.CleanSteps, conductor.Step{Name: "wipe", Priority: 200})
			e.rec.set(func(r *recorder) { r.waitStep["wipe"] = true })
			n := e.node(t, func(n *ironwork.Node) {
				n.ProvisionState = ironwork.Manageable
				n.Interfaces[ironwork.DeployInterface] = "fake"
			})
			ok(t, provision(t, e.c, n.UUID, "provide"))
			return n, ironwork.CleanWait, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			n, state, undo := tc.setup(t, e)
			e.c.Wait()
			tok := issueToken(t, e.c, n.UUID)
			ok(t, heartbeat(t, e.c, n.UUID, conductor.Heartbeat{CallbackURL: "http://127.0.0.1:7777", AgentToken: tok}))
			e.c.Wait()
			if undo != nil {
				undo()
			}
			got := e.settled(t, n.UUID, state)
			if got.DriverInternalInfo["agent_url"] != "http://127.0.0.1:7777" {
				t.Errorf("agent URL not recorded: %v", got.DriverInternalInfo)
			}
			if calls := e.rec.Calls("deploy.Heartbeat"); len(calls) != 0 {
				t.Errorf("the deploy interface acted on the heartbeat: %v", calls)
			}
		})
	}
}

func TestAgentToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.CleanWait })
	first := issueToken(t, e.c, n.UUID)
	if len(first) < 32 {
		t.Fatalf("agent token %q is too short", first)
	}
	if again := issueToken(t, e.c, n.UUID); again != "******" {
		t.Errorf("second lookup got token %q, want it masked", again)
	}
	for _, st := range []ironwork.ProvisionState{ironwork.CleanWait, ironwork.Deploying, ironwork.RescueWait} {
		if !conductor.AgentMayLookUp(st) {
			t.Errorf("agent may not look up in %s", st)
		}
	}
	for _, st := range []ironwork.ProvisionState{ironwork.Available, ironwork.Active, ironwork.Manageable} {
		if conductor.AgentMayLookUp(st) {
			t.Errorf("agent may look up in %s", st)
		}
	}
	// A power off forgets the agent: the next ramdisk boot gets a new token.
	ok(t, setPower(t, e.c, n.UUID, ironwork.PowerOff))
	e.c.Wait()
	if info := e.get(t, n.UUID).DriverInternalInfo; info["agent_secret_token"] != nil {
		t.Errorf("agent token kept after a power off: %v", info)
	}
	if next := issueToken(t, e.c, n.UUID); next == "******" || next == first {
		t.Errorf("token after a power off: %q, want a new one", next)
	}
}
