package conductor

import (
	"testing"

	"github.com/ironwork/ironwork"
)

// TestTokenKeptOnlyWhileTheAgentRuns walks transitions of the real state machine and checks
// which keep the agent's token: moves between states where the same agent runs (including
// holds) keep it, every move out of them drops it.
func TestTokenKeptOnlyWhileTheAgentRuns(t *testing.T) {
	for _, tc := range []struct {
		from ironwork.ProvisionState
		ev   ironwork.Event
		keep bool
	}{
		{ironwork.DeployWait, ironwork.EventResume, true},
		{ironwork.CleanWait, ironwork.EventHold, true},
		{ironwork.CleanHold, ironwork.EventUnhold, true},
		{ironwork.DeployHold, ironwork.EventUnhold, true},
		{ironwork.DeployWait, ironwork.EventAbort, false},
		{ironwork.CleanWait, ironwork.EventAbort, false},
		{ironwork.CleanHold, ironwork.EventAbort, false},
		{ironwork.DeployWait, ironwork.EventFail, false},
		{ironwork.Deploying, ironwork.EventDone, false},
		{ironwork.Cleaning, ironwork.EventDone, false},
		{ironwork.RescueWait, ironwork.EventFail, false},
	} {
		to, ok := ironwork.NextState(tc.from, tc.ev)
		if !ok {
			t.Fatalf("%s has no %s event", tc.from, tc.ev)
		}
		n := &ironwork.Node{ProvisionState: tc.from, DriverInternalInfo: ironwork.JSONObject{agentTokenKey: "t"}}
		(&Conductor{}).forgetTokenOnLeaving(n, tc.from, to)
		if _, kept := n.DriverInternalInfo[agentTokenKey]; kept != tc.keep {
			t.Errorf("%s -(%s)-> %s: token kept %v, want %v", tc.from, tc.ev, to, kept, tc.keep)
		}
	}
}

// TestFastTrackKeepsTheToken: with fast track on, the agent that finished cleaning keeps its
// token in available or manageable and into the next deploy or cleaning; a failure, or a
// move to a state without the agent, still drops it.
func TestFastTrackKeepsTheToken(t *testing.T) {
	c := &Conductor{cfg: Config{FastTrack: true}}
	for _, tc := range []struct {
		from ironwork.ProvisionState
		ev   ironwork.Event
		keep bool
	}{
		{ironwork.Cleaning, ironwork.EventDone, true},    // -> available
		{ironwork.Available, ironwork.EventDeploy, true}, // -> deploying
		{ironwork.Available, ironwork.EventManage, true}, // -> manageable
		{ironwork.Manageable, ironwork.EventProvide, true},
		{ironwork.Cleaning, ironwork.EventFail, false},
		{ironwork.DeployWait, ironwork.EventFail, false},
		{ironwork.Deploying, ironwork.EventDone, false}, // -> active
		{ironwork.Manageable, ironwork.EventAdopt, false},
	} {
		to, ok := ironwork.NextState(tc.from, tc.ev)
		if !ok {
			t.Fatalf("%s has no %s event", tc.from, tc.ev)
		}
		n := &ironwork.Node{ProvisionState: tc.from, DriverInternalInfo: ironwork.JSONObject{agentTokenKey: "t"}}
		c.forgetTokenOnLeaving(n, tc.from, to)
		if _, kept := n.DriverInternalInfo[agentTokenKey]; kept != tc.keep {
			t.Errorf("fast track: %s -(%s)-> %s: token kept %v, want %v", tc.from, tc.ev, to, kept, tc.keep)
		}
	}
}
