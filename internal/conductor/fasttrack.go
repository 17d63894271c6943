package conductor

import (
	"context"
	"time"

	"github.com/ironwork/ironwork"
)

// Fast track, as Ironic's [deploy]fast_track: when Config.FastTrack is on, the agent that
// cleaned (or inspected) a node is left running: the node stays powered on in manageable or
// available, its agent keeps its token and heartbeats, and a deploy (or the next cleaning)
// that finds it alive skips the power off, the ramdisk boot setup and the reboot, and sends
// its first agent command at once. An agent that stopped heartbeating for longer than
// Config.FastTrackTimeout, or a node that is not powered on, takes the normal path.

// fastTrackStates are the stable states in which, with fast track on, a node's agent may
// look itself up and heartbeat (Ironic allows them for fast track too).
var fastTrackStates = map[ironwork.ProvisionState]bool{ironwork.Manageable: true, ironwork.Available: true}

// FastTrackState says whether st is a stable state in which a fast-track agent may look
// itself up and heartbeat; whether fast track is on is for the node's conductor to say.
func FastTrackState(st ironwork.ProvisionState) bool { return fastTrackStates[st] }

// agentMayCall says whether a node's agent may look itself up and heartbeat in state st.
func (c *Conductor) agentMayCall(st ironwork.ProvisionState) bool {
	return lookupStates[st] || c.cfg.FastTrack && fastTrackStates[st]
}

// FastTrack says whether the task's node has a live agent its next steps may use without a
// reboot: fast track is on, the agent looked itself up (it holds a token) and heartbeated
// within the fast track timeout, and the BMC says the node is powered on (Ironic's
// is_fast_track). A BMC that cannot answer means no.
func (t *Task) FastTrack(ctx context.Context) bool {
	cfg := t.c.cfg
	if !cfg.FastTrack {
		return false
	}
	a := LoadAgent(t.Node)
	if a.Token == "" || a.URL == "" || a.LastHeartbeat.IsZero() || time.Since(a.LastHeartbeat) > cfg.FastTrackTimeout {
		return false
	}
	p, ok := t.Driver.Power()
	if !ok {
		return false
	}
	st, err := p.PowerState(ctx, t)
	if err != nil {
		t.Log.Warn("fast track: cannot read the power state; taking the normal path", "error", err)
		return false
	}
	return st == ironwork.PowerOn
}
