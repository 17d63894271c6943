package conductor

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
)

// ErrAgentUnreachable marks an agent call that got no answer after all its attempts. A
// HeartbeatHandler returns it (wrapped) to say "ask again at the next heartbeat": the node
// keeps waiting, no failure is recorded, and the heartbeat does not count as progress, so the
// callback timeout still ends the wait of an agent that heartbeats but cannot be reached.
var ErrAgentUnreachable = errors.New("agent unreachable")

// lookupStates are the states in which a node's agent may look itself up and heartbeat, as
// Ironic allows.
var lookupStates = map[ironwork.ProvisionState]bool{
	ironwork.Deploying: true, ironwork.DeployWait: true, ironwork.Cleaning: true, ironwork.CleanWait: true,
	ironwork.Inspecting: true, ironwork.InspectWait: true, ironwork.Rescuing: true, ironwork.RescueWait: true,
	ironwork.Servicing: true, ironwork.ServiceWait: true,
}

// AgentMayLookUp says whether a node in state st has an agent that may look itself up.
func AgentMayLookUp(st ironwork.ProvisionState) bool { return lookupStates[st] }

// maskedToken is what lookup answers in place of a token already handed out, as Ironic does.
const maskedToken = "******"

// AgentLookup is what a node's agent learns when it looks itself up: the node's fields it
// needs, and its token the first time it asks in a boot ("******" afterwards). The token in
// DriverInternalInfo is always masked.
type AgentLookup struct {
	UUID               string                  `json:"uuid"`
	Name               string                  `json:"name"`
	ProvisionState     ironwork.ProvisionState `json:"provision_state"`
	Properties         ironwork.JSONObject     `json:"properties"`
	InstanceInfo       ironwork.JSONObject     `json:"instance_info"`
	DriverInternalInfo ironwork.JSONObject     `json:"driver_internal_info"`
	Token              string                  `json:"token"`
}

// LookupAgent hands a node's agent its secret token: a new one the first time the agent of
// this boot asks, "******" to every later lookup (the agent keeps the one it got; an agent
// that restarted within the same boot cannot get it again, and its node times out and fails
// as in Ironic). Tokens are cleared when the node leaves the states in which an agent runs,
// so the next boot's agent gets a new one. A node in any other state is not found, as in
// Ironic. The state check and the token are written in one transaction.
func (c *Conductor) LookupAgent(ctx context.Context, req NodeRef) (AgentLookup, error) {
	ident := req.Node
	var token string
	n, err := c.store.UpdateNode(ctx, ident, func(n *ironwork.Node) error {
		if !c.agentMayCall(n.ProvisionState) {
			return ironwork.Errorf(ironwork.ENOTFOUND, "Node could not be found.")
		}
		if LoadAgent(n).Token != "" {
			token = maskedToken
			return nil
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("make agent token: %w", err)
		}
		token = base64.RawURLEncoding.EncodeToString(b)
		setAgentToken(n, token)
		return nil
	})
	if ironwork.ErrorCode(err) == ironwork.ENOTFOUND {
		return AgentLookup{}, ironwork.Errorf(ironwork.ENOTFOUND, "Node could not be found.")
	}
	if err != nil {
		return AgentLookup{}, err
	}
	dii := ironwork.JSONObject{}
	for k, v := range n.DriverInternalInfo {
		dii[k] = v
	}
	if _, ok := dii[agentTokenKey]; ok {
		dii[agentTokenKey] = maskedToken
	}
	if token != maskedToken {
		c.log.Info("agent token issued", "node", n.UUID, "state", n.ProvisionState)
	} else {
		c.log.Warn("agent looked up again in the same boot: its token is not handed out twice", "node", n.UUID, "state", n.ProvisionState)
	}
	return AgentLookup{UUID: n.UUID, Name: n.Name, ProvisionState: n.ProvisionState, Properties: n.Properties,
		InstanceInfo: n.InstanceInfo, DriverInternalInfo: dii, Token: token}, nil
}

// agentRuns says whether a node in state st still runs the agent of its current boot: the
// lookup states and the hold states between them (a held node's agent waits to go on).
func agentRuns(st ironwork.ProvisionState) bool {
	switch st {
	case ironwork.CleanHold, ironwork.DeployHold, ironwork.ServiceHold:
		return true
	}
	return lookupStates[st]
}

// forgetTokenOnLeaving clears the agent's token when a transition takes a node out of the
// states in which an agent runs: the token belonged to that boot of that agent, and is
// refused (403) from then on.
// With fast track, an agent that finished cleaning or inspection stays up with its token in
// manageable or available (fastTrackStates).
func (c *Conductor) forgetTokenOnLeaving(n *ironwork.Node, from, to ironwork.ProvisionState) {
	if c.cfg.FastTrack && fastTrackStates[to] {
		return
	}
	if (agentRuns(from) || fastTrackStates[from]) && !agentRuns(to) {
		delete(n.DriverInternalInfo, agentTokenKey)
		delete(n.DriverInternalInfo, agentTokenPregeneratedKey)
		delete(n.DriverInternalInfo, agentVerifyCAKey) // the next boot's agent makes a new one
	}
}

// Heartbeat is what an agent reports in POST /v1/heartbeat/{node}: the API's wire type, as
// the conductor needs nothing else.
type Heartbeat = api.HeartbeatRequest

// HeartbeatHandler is a deploy interface that acts on its agent's heartbeats while the node
// waits: resume means the node's steps go on now.
type HeartbeatHandler interface {
	Heartbeat(ctx context.Context, t *Task, hb Heartbeat) (resume bool, err error)
}

// AgentHeartbeat records a heartbeat of a node's agent and, when the node waits for its
// agent and no other work holds it, lets the deploy interface decide in a worker whether the
// node goes on. It returns at once: the agent's request never waits for the agent.
func (c *Conductor) AgentHeartbeat(ctx context.Context, req HeartbeatRequest) error {
	ident, hb := req.Node, req.Heartbeat
	// The token and the state are checked in the same transaction that records the
	// heartbeat, so an agent that lost its node cannot write its URL back.
	var pinned bool
	n, err := c.store.UpdateNode(ctx, ident, func(n *ironwork.Node) error {
		if !tokenMatches(n, hb.AgentToken) {
			return ironwork.Errorf(ironwork.EFORBIDDEN, "Invalid or missing agent token received.")
		}
		if !c.agentMayCall(n.ProvisionState) {
			return ironwork.Errorf(ironwork.ECONFLICT, "Node %s is in state %s, in which its agent does not heartbeat.", n.UUID, n.ProvisionState)
		}
		var err error
		if pinned, err = pinAgentCertificate(n, hb, c.cfg.RequireAgentTLS); err != nil {
			return err
		}
		recordHeartbeat(n, hb, time.Now())
		return nil
	})
	if ironwork.ErrorCode(err) == ironwork.EINVALID {
		c.log.Warn("agent heartbeat refused", "node", ident, "url", hb.CallbackURL, "error", err)
	}
	if err != nil {
		return err
	}
	if pinned {
		c.log.Info("agent certificate pinned", "node", n.UUID, "url", hb.CallbackURL)
	}
	// Rescue and inspection have their own interfaces; only steps wait on the deploy one.
	switch n.ProvisionState {
	case ironwork.RescueWait:
		return c.rescueHeartbeat(ctx, n, hb)
	case ironwork.DeployWait, ironwork.CleanWait, ironwork.ServiceWait:
	default:
		return nil // the conductor is at work on the node; it reads the agent fields itself
	}
	return c.onAgentCall(ctx, n, hb, "heartbeat of a node in maintenance: its steps wait until maintenance ends",
		func(t *Task) func(context.Context, *Task) {
			h, ok := t.Driver.Impl(ironwork.DeployInterface).(HeartbeatHandler)
			if !ok || hasBMCWait(t.Node) {
				// A step that waits on the BMC goes on when the BMC poll says so, not at a
				// heartbeat of the (idle) agent.
				return nil
			}
			return func(ctx context.Context, t *Task) { c.onHeartbeat(ctx, t, h, hb) }
		})
}

// onAgentCall runs the work an agent's heartbeat asks for in a worker, under the node's lock,
// when the node is out of maintenance, still in the state the heartbeat found it in, and the
// token matches. pick returns the work from the node's driver, or nil when its interface
// cannot do it. A busy node or no free worker is not an error: the next heartbeat comes soon.
func (c *Conductor) onAgentCall(ctx context.Context, n *ironwork.Node, hb Heartbeat, inMaintenance string,
	pick func(t *Task) func(context.Context, *Task)) error {
	if n.Maintenance {
		c.log.Info(inMaintenance, "node", n.UUID)
		return nil
	}
	t, err := c.lock(ctx, n.UUID)
	if ironwork.ErrorCode(err) == ironwork.ELOCKED {
		return nil
	}
	if err != nil {
		return err
	}
	work := pick(t)
	if work == nil || t.Node.ProvisionState != n.ProvisionState || t.Node.Maintenance || !tokenMatches(t.Node, hb.AgentToken) {
		c.release(t.Node)
		return nil
	}
	done, err := c.acquireWorker()
	if err != nil {
		c.release(t.Node)
		return nil
	}
	c.background(t, done, work)
	return nil
}

// onHeartbeat runs in a worker under the node's lock: the deploy interface looks at its agent
// and says whether the node's steps go on.
func (c *Conductor) onHeartbeat(ctx context.Context, t *Task, h HeartbeatHandler, hb Heartbeat) {
	resume, err := h.Heartbeat(ctx, t, hb)
	if errors.Is(err, ErrAgentUnreachable) {
		t.Log.Warn("the agent did not answer; trying again at its next heartbeat", "error", err)
		if err := t.Save(ctx, func(n *ironwork.Node) { n.DriverInternalInfo[agentUnreachableKey] = errText(err) }); err != nil {
			t.Log.Warn("record the unreachable agent", "error", err)
		}
		return
	}
	if err != nil {
		c.failSteps(ctx, t, loadSteps(t.Node).Kind, fmt.Errorf("%s", errText(err)))
		return
	}
	if !resume {
		// A live agent at work keeps the node from its callback timeout; a dead one does not.
		now := time.Now().UTC()
		if err := t.Save(ctx, func(n *ironwork.Node) {
			n.ProvisionUpdatedAt = &now
			delete(n.DriverInternalInfo, agentUnreachableKey)
		}); err != nil {
			t.Log.Warn("record agent progress", "error", err)
		}
		return
	}
	if _, ok := t.Node.DriverInternalInfo[agentUnreachableKey]; ok {
		if err := t.Save(ctx, func(n *ironwork.Node) { delete(n.DriverInternalInfo, agentUnreachableKey) }); err != nil {
			t.Log.Warn("forget the unreachable agent", "error", err)
		}
	}
	if err := c.transition(ctx, t, ironwork.EventResume, "", ""); err != nil {
		t.Log.Error("resume after the agent's heartbeat", "error", err)
		return
	}
	c.continueSteps(ctx, t)
}

func tokenMatches(n *ironwork.Node, got string) bool {
	want := LoadAgent(n).Token
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// SetPower drives the task's node to target (power on, power off, rebooting...) through its
// power interface within the conductor's power action timeout, and records the result.
func (t *Task) SetPower(ctx context.Context, target ironwork.PowerState) error {
	return t.c.doPower(ctx, t, target, t.c.cfg.PowerActionTimeout)
}
