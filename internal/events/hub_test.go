package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
)

func node(uuid string, st ironwork.ProvisionState, at time.Time) *ironwork.Node {
	return &ironwork.Node{UUID: uuid, Name: "n-" + uuid, ProvisionState: st, UpdatedAt: &at}
}

// recv takes the next event, failing the test when none is waiting: every event is published
// synchronously by Observe, so it is in the buffer by the time Observe returns.
func recv(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case ev := <-s.C():
		return ev
	default:
		t.Fatal("no event waiting")
		return Event{}
	}
}

func TestSubscribersGetEveryChangeInOrder(t *testing.T) {
	h := NewHub(nil)
	subs := []*Subscription{h.Subscribe(0), h.Subscribe(0), h.Subscribe(0)}
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	seq := []ironwork.ProvisionState{"enroll", "verifying", "manageable", "cleaning", "available"}
	for i, st := range seq {
		h.Observe(node("a", st, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	for i, s := range subs {
		for j, want := range seq {
			ev := recv(t, s)
			if ev.Type != TypeNode || ev.Node.ProvisionState != string(want) || ev.Seq != uint64(j+1) {
				t.Errorf("subscriber %d event %d: %+v, want %s seq %d", i, j, ev, want, j+1)
			}
		}
	}
}

func TestUnchangedAndOlderStatesAreNotEvents(t *testing.T) {
	h := NewHub(nil)
	s := h.Subscribe(0)
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	h.Observe(node("a", "manageable", t0))
	recv(t, s)
	h.Observe(node("a", "manageable", t0.Add(time.Second))) // same fields, later: nothing new
	h.Observe(node("a", "enroll", t0.Add(-time.Second)))    // an older write arriving late
	if len(s.C()) != 0 {
		t.Fatalf("got %d events for an unchanged and an older state", len(s.C()))
	}
	n := node("a", "manageable", t0.Add(2*time.Second))
	n.DriverInternalInfo = ironwork.JSONObject{"ironwork_agent_progress": map[string]any{
		"command": "standby.prepare_image", "bytes_done": float64(1 << 20), "bytes_total": float64(4 << 20)}}
	h.Observe(n)
	ev := recv(t, s)
	if ev.Node.Progress == nil || ev.Node.Progress.BytesDone != 1<<20 || ev.Node.Progress.BytesTotal != 4<<20 {
		t.Errorf("progress = %+v, want 1 MiB of 4 MiB", ev.Node.Progress)
	}
	h.Deleted("a")
	if ev := recv(t, s); ev.Type != TypeDeleted || ev.Node.UUID != "a" {
		t.Errorf("deletion event = %+v", ev)
	}
	h.Deleted("a") // not known any more
	if len(s.C()) != 0 {
		t.Error("a second deletion of the same node was published")
	}
}

// TestSlowSubscriberIsDropped: a subscriber that reads nothing is dropped when its buffer is
// full; the publisher never waits for it and the others get every event.
func TestSlowSubscriberIsDropped(t *testing.T) {
	h := NewHub(nil)
	slow := h.Subscribe(16)
	fast := h.Subscribe(1000)
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	start := time.Now()
	const n = 500
	for i := range n {
		h.Observe(node(fmt.Sprint("node-", i%7), ironwork.ProvisionState(fmt.Sprint("state-", i)), t0.Add(time.Duration(i)*time.Millisecond)))
	}
	t.Logf("%d events published with a stalled subscriber in %v", n, time.Since(start))
	select {
	case <-slow.Dropped():
	default:
		t.Fatal("the slow subscriber was not dropped")
	}
	if len(slow.C()) != 16 {
		t.Errorf("the slow subscriber holds %d events, want its buffer's 16", len(slow.C()))
	}
	if len(fast.C()) != n {
		t.Errorf("the fast subscriber got %d events, want %d", len(fast.C()), n)
	}
	if got := h.Subscribers(); got != 1 {
		t.Errorf("%d subscribers left, want 1", got)
	}
	fast.Close()
	if got := h.Subscribers(); got != 0 {
		t.Errorf("%d subscribers after Close, want 0", got)
	}
}
