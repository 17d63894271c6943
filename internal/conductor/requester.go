package conductor

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ironwork/ironwork"
)

// Requester is who caused a conductor call: the API request's id (Ironic's
// X-Openstack-Request-Id, "req-<uuid>") and the authenticated user ("" without
// authentication). It travels with the call's context, across JSON-RPC too, and stays with the
// task's background work: its log lines carry the request id and the node history entries it
// records name both.
type Requester struct {
	RequestID string `json:"request_id,omitempty"`
	User      string `json:"user,omitempty"`
	Project   string `json:"project,omitempty"`
}

type requesterKey struct{}

// WithRequester returns ctx carrying r.
func WithRequester(ctx context.Context, r Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, r)
}

// RequesterOf returns the requester ctx carries (zero when none).
func RequesterOf(ctx context.Context) Requester {
	r, _ := ctx.Value(requesterKey{}).(Requester)
	return r
}

// newTask returns a task for n with the requester of ctx: its logger names the node and, when
// an API request caused the work, the request's id.
func (c *Conductor) newTask(ctx context.Context, n *ironwork.Node, d *Driver) *Task {
	req := RequesterOf(ctx)
	log := c.log.With("node", n.UUID)
	if req.RequestID != "" {
		log = log.With("request_id", req.RequestID)
	}
	return &Task{Node: n, Driver: d, c: c, Log: log, req: req}
}

// historyEvent is a node history entry for the task's node, naming the conductor and the
// requester: the user in the user field and the request id at the end of the event text (the
// history has no field of its own for it).
func (t *Task) historyEvent(eventType, severity, event string) *ironwork.NodeHistoryEvent {
	return t.historyEventFor(t.Node, eventType, severity, event)
}

// historyEventFor is historyEvent for the node as n shows it (a change not yet stored).
func (t *Task) historyEventFor(n *ironwork.Node, eventType, severity, event string) *ironwork.NodeHistoryEvent {
	if t.req.RequestID != "" {
		event += " (request " + t.req.RequestID + ")"
	}
	e := &ironwork.NodeHistoryEvent{UUID: uuid.NewString(), NodeID: n.ID, Conductor: t.c.cfg.Hostname,
		EventType: eventType, Severity: severity, Event: event, User: t.req.User, Project: t.req.Project,
		State: n.ProvisionState, TargetProvisionState: n.TargetProvisionState}
	if at := n.ProvisionUpdatedAt; at != nil {
		d := int(time.Since(*at).Seconds())
		e.Duration = &d
	}
	return e
}
