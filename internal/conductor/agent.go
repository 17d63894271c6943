package conductor

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// lookupStates are the states in which a node's agent may look itself up and heartbeat, as
// Ironic allows.
var lookupStates = map[ironwork.ProvisionState]bool{
	ironwork.Deploying: true, ironwork.DeployWait: true, ironwork.Cleaning: true, ironwork.CleanWait: true,
	ironwork.Inspecting: true, ironwork.InspectWait: true, ironwork.Rescuing: true, ironwork.RescueWait: true,
	ironwork.Servicing: true, ironwork.ServiceWait: true,
}

// AgentMayLookUp says whether a node in state st has an agent that may look itself up.
func AgentMayLookUp(st ironwork.ProvisionState) bool { return lookupStates[st] }

// IssueAgentToken gives a node's agent its secret token: a new one the first time after the
// node's agent boots, "******" once it was handed out (the agent keeps the one it got).
func IssueAgentToken(ctx context.Context, store *sqlstore.Store, ident string) (string, *ironwork.Node, error) {
	var token string
	n, err := store.UpdateNode(ctx, ident, func(n *ironwork.Node) error {
		if LoadAgent(n).Token != "" {
			token = "******"
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
	if err != nil {
		return "", nil, err
	}
	return token, n, nil
}

// Heartbeat is what an agent reports in POST /v1/heartbeat/{node}.
type Heartbeat struct {
	CallbackURL  string         `json:"callback_url"`
	AgentToken   string         `json:"agent_token"`
	AgentVersion string         `json:"agent_version"`
	AgentStatus  string         `json:"agent_status"`
	Progress     map[string]any `json:"progress,omitempty"`
}

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
	n, err := c.store.UpdateNode(ctx, ident, func(n *ironwork.Node) error {
		if !tokenMatches(n, hb.AgentToken) {
			return ironwork.Errorf(ironwork.EFORBIDDEN, "Invalid or missing agent token received for node %s.", n.UUID)
		}
		if !lookupStates[n.ProvisionState] {
			return ironwork.Errorf(ironwork.ECONFLICT, "Node %s is in state %s, in which its agent does not heartbeat.", n.UUID, n.ProvisionState)
		}
		recordHeartbeat(n, hb, time.Now())
		return nil
	})
	if err != nil {
		return err
	}
	// Rescue and inspection have their own interfaces; only steps wait on the deploy one.
	switch n.ProvisionState {
	case ironwork.DeployWait, ironwork.CleanWait, ironwork.ServiceWait:
	default:
		return nil // the conductor is at work on the node; it reads the agent fields itself
	}
	if n.Maintenance {
		c.log.Info("heartbeat of a node in maintenance: its steps wait until maintenance ends", "node", n.UUID)
		return nil
	}
	t, err := c.lock(ctx, n.UUID)
	if ironwork.ErrorCode(err) == ironwork.ELOCKED {
		return nil // busy: the next heartbeat comes soon
	}
	if err != nil {
		return err
	}
	h, ok := t.Driver.Impl(ironwork.DeployInterface).(HeartbeatHandler)
	if !ok || t.Node.ProvisionState != n.ProvisionState || t.Node.Maintenance || !tokenMatches(t.Node, hb.AgentToken) {
		c.release(t.Node)
		return nil
	}
	done, err := c.acquireWorker()
	if err != nil {
		c.release(t.Node)
		return nil // no worker free: the next heartbeat tries again
	}
	c.background(t, done, func(ctx context.Context, t *Task) { c.onHeartbeat(ctx, t, h, hb) })
	return nil
}

// onHeartbeat runs in a worker under the node's lock: the deploy interface looks at its agent
// and says whether the node's steps go on.
func (c *Conductor) onHeartbeat(ctx context.Context, t *Task, h HeartbeatHandler, hb Heartbeat) {
	resume, err := h.Heartbeat(ctx, t, hb)
	if err != nil {
		c.failSteps(ctx, t, loadSteps(t.Node).Kind, fmt.Errorf("%s", errText(err)))
		return
	}
	if !resume {
		// A live agent at work keeps the node from its callback timeout; a dead one does not.
		now := time.Now().UTC()
		if err := t.Save(ctx, func(n *ironwork.Node) { n.ProvisionUpdatedAt = &now }); err != nil {
			t.Log.Warn("record agent progress", "error", err)
		}
		return
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
