// Package events turns node writes into a live stream of node changes: provision and power
// state, maintenance, last error and deploy progress. A Hub keeps the last state it saw of
// every node, publishes a change when one of those fields moves, and hands each change to its
// subscribers through bounded buffers: a subscriber that falls behind is dropped, never
// waited for, so a slow client cannot hold up the conductor. The Hub is fed in process by the
// store's write observer and, for the changes other processes make to a shared PostgreSQL
// database, by Watch polling the store. It does not speak HTTP (httpapi serves the stream).
package events

import (
	"log/slog"
	"maps"
	"reflect"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
)

// Event types.
const (
	TypeNode    = "node"         // a node was created or one of its watched fields changed
	TypeDeleted = "node.deleted" // a node was deleted
)

// Event is one change of one node.
type Event struct {
	// Seq numbers the events of one Hub, from 1.
	Seq  uint64    `json:"seq"`
	Type string    `json:"type"`
	Node NodeState `json:"node"`
}

// NodeState is the part of a node the stream carries. Field names are the API's.
type NodeState struct {
	UUID                 string         `json:"uuid"`
	Name                 string         `json:"name,omitempty"`
	ProvisionState       string         `json:"provision_state"`
	TargetProvisionState string         `json:"target_provision_state,omitempty"`
	PowerState           string         `json:"power_state,omitempty"`
	TargetPowerState     string         `json:"target_power_state,omitempty"`
	Maintenance          bool           `json:"maintenance"`
	ConsoleEnabled       bool           `json:"console_enabled"`
	MaintenanceReason    string         `json:"maintenance_reason,omitempty"`
	Fault                string         `json:"fault,omitempty"`
	LastError            string         `json:"last_error,omitempty"`
	DeployStep           map[string]any `json:"deploy_step,omitempty"`
	CleanStep            map[string]any `json:"clean_step,omitempty"`
	// Progress is what the deploy agent last reported of its running command.
	Progress  *Progress `json:"progress,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Progress of an agent command, as the agent reports it in its heartbeats.
type Progress struct {
	Command        string  `json:"command,omitempty"`
	BytesDone      int64   `json:"bytes_done"`
	BytesTotal     int64   `json:"bytes_total"`
	BytesPerSecond float64 `json:"bytes_per_second,omitempty"`
}

// progressKey is where the conductor keeps the agent's progress in driver_internal_info
// (conductor.LoadAgent reads it; events may not import the conductor).
const progressKey = "ironwork_agent_progress"

// StateOf extracts the streamed fields of a node.
func StateOf(n *ironwork.Node) NodeState {
	st := NodeState{
		UUID: n.UUID, Name: n.Name, ProvisionState: string(n.ProvisionState),
		TargetProvisionState: string(n.TargetProvisionState), PowerState: string(n.PowerState),
		TargetPowerState: string(n.TargetPowerState), Maintenance: n.Maintenance, ConsoleEnabled: n.ConsoleEnabled,
		MaintenanceReason: n.MaintenanceReason, Fault: n.Fault, LastError: n.LastError,
		DeployStep: maps.Clone(map[string]any(n.DeployStep)), CleanStep: maps.Clone(map[string]any(n.CleanStep)),
	}
	if n.UpdatedAt != nil {
		st.UpdatedAt = *n.UpdatedAt
	} else {
		st.UpdatedAt = n.CreatedAt
	}
	if p, ok := n.DriverInternalInfo[progressKey].(map[string]any); ok {
		pr := &Progress{BytesTotal: -1}
		pr.Command, _ = p["command"].(string)
		if v, ok := number(p["bytes_done"]); ok {
			pr.BytesDone = int64(v)
		}
		if v, ok := number(p["bytes_total"]); ok {
			pr.BytesTotal = int64(v)
		}
		pr.BytesPerSecond, _ = number(p["bytes_per_second"])
		st.Progress = pr
	}
	return st
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

// same reports whether two states differ only in their time stamps.
func same(a, b NodeState) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// DefaultBuffer is a subscriber's buffer when Subscribe is given none.
const DefaultBuffer = 256

// Hub publishes node changes to subscribers.
type Hub struct {
	log  *slog.Logger
	mu   sync.Mutex
	seq  uint64
	last map[string]NodeState // by node UUID
	subs map[*Subscription]struct{}
	// closed ends every stream when the server shuts down.
	closed    chan struct{}
	closeOnce sync.Once
}

// NewHub returns a Hub with no subscribers that knows no node yet: the first sight of each
// node is published (Seed learns nodes without publishing them).
func NewHub(log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{log: log, last: map[string]NodeState{}, subs: map[*Subscription]struct{}{},
		closed: make(chan struct{})}
}

// Subscription is one subscriber's feed.
type Subscription struct {
	hub     *Hub
	c       chan Event
	dropped chan struct{} // closed when the hub dropped the subscriber for falling behind
	once    sync.Once
}

// C delivers the events in order.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped is closed when the subscriber fell behind by a full buffer and was dropped: no more
// events come, and the subscriber should reconnect and read the nodes anew.
func (s *Subscription) Dropped() <-chan struct{} { return s.dropped }

// Closed is closed when the hub shuts down: the subscriber should end.
func (s *Subscription) Closed() <-chan struct{} { return s.hub.closed }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs, s)
	s.hub.mu.Unlock()
}

// Subscribe returns a subscription whose buffer holds buffer events (DefaultBuffer when <= 0).
func (h *Hub) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	s := &Subscription{hub: h, c: make(chan Event, buffer), dropped: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Close tells every subscriber to end (Subscription.Closed), as the server shuts down.
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

// Subscribers is the number of current subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Seed records nodes' states without publishing them: what subscribers could read from the
// API already.
func (h *Hub) Seed(nodes []*ironwork.Node) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range nodes {
		st := StateOf(n)
		if prev, known := h.last[n.UUID]; known && prev.UpdatedAt.After(st.UpdatedAt) {
			continue // the write observer saw a newer state while the seed was read
		}
		h.last[n.UUID] = st
	}
}

// Observe publishes a node's change when a streamed field differs from the last state seen.
// A state older than the last seen (by updated_at) is ignored: writes reach the hub from
// several paths and may arrive out of order. It never blocks.
func (h *Hub) Observe(n *ironwork.Node) {
	st := StateOf(n)
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, known := h.last[st.UUID]
	if known && (st.UpdatedAt.Before(prev.UpdatedAt) || same(prev, st)) {
		return
	}
	h.last[st.UUID] = st
	h.publish(TypeNode, st)
}

// Deleted publishes the deletion of a node the hub knew.
func (h *Hub) Deleted(uuid string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, known := h.last[uuid]
	if !known {
		return
	}
	delete(h.last, uuid)
	h.publish(TypeDeleted, st)
}

// known returns the UUIDs of the nodes the hub knows.
func (h *Hub) known() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.last))
	for u := range h.last {
		out = append(out, u)
	}
	return out
}

// publish hands an event to every subscriber; h.mu is held.
func (h *Hub) publish(typ string, st NodeState) {
	h.seq++
	ev := Event{Seq: h.seq, Type: typ, Node: st}
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			delete(h.subs, s)
			s.once.Do(func() { close(s.dropped) })
			h.log.Warn("drop slow events subscriber", "buffer", cap(s.c), "seq", ev.Seq)
		}
	}
}
