package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/network"
	"github.com/ironwork/ironwork/internal/httpapi"
)

// TestHistoryFieldsAndAbortGate checks the node history detail fields of 1.113 and 1.115
// after a real manage, and the gate of abort in wait call-back (1.110).
func TestHistoryFieldsAndAbortGate(t *testing.T) {
	ts, store := newAPI(t, func(o *httpapi.Options) {
		reg := conductor.Registry{}
		fake.Register(reg)
		network.Register(reg)
		cfg := conductor.Defaults()
		cfg.Hostname = "c1"
		o.Conductor = localConductor{conductor.New(cfg, o.Store, ironwork.DefaultDriverConfig(), reg, nil)}
	})
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", latest, map[string]any{"driver": "fake-hardware", "name": "h"}), 201)
	mustStatus(t, call(t, ts, "PUT", "/v1/nodes/h/states/provision", latest, map[string]any{"target": "manage"}), 202)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := store.GetNode(context.Background(), "h")
		if err != nil {
			t.Fatal(err)
		}
		if n.ProvisionState == ironwork.Manageable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node stayed %s", n.ProvisionState)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := call(t, ts, "GET", "/v1/nodes/h/history?detail=true", latest, nil)
	events, _ := h.body["history"].([]any)
	if len(events) == 0 {
		t.Fatalf("history: %s", h.raw)
	}
	last := events[len(events)-1].(map[string]any)
	for _, k := range []string{"project", "state", "target_provision_state", "duration_seconds"} {
		if _, ok := last[k]; !ok {
			t.Fatalf("no %s at %s: %v", k, latest, last)
		}
	}
	if last["state"] != "manageable" {
		t.Fatalf("state of the last event: %v", last)
	}
	if d, ok := last["duration_seconds"].(float64); !ok || d < 0 {
		t.Fatalf("duration_seconds: %v", last)
	}
	old := call(t, ts, "GET", "/v1/nodes/h/history?detail=true", "1.112", nil).body["history"].([]any)
	if _, ok := old[0].(map[string]any)["project"]; ok {
		t.Fatal("project shown at 1.112")
	}
	if _, ok := call(t, ts, "GET", "/v1/nodes/h/history?detail=true", "1.114", nil).body["history"].([]any)[0].(map[string]any)["state"]; ok {
		t.Fatal("state shown at 1.114")
	}

	// Abort in wait call-back: 406 before 1.110.
	if _, err := store.UpdateNode(context.Background(), "h", func(n *ironwork.Node) error {
		n.ProvisionState, n.TargetProvisionState = ironwork.DeployWait, ironwork.Active
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, call(t, ts, "PUT", "/v1/nodes/h/states/provision", "1.109", map[string]any{"target": "abort"}), 406)
	if r := call(t, ts, "PUT", "/v1/nodes/h/states/provision", "1.110", map[string]any{"target": "abort"}); r.status == 406 {
		t.Fatalf("abort at 1.110: %s", r.raw)
	}
}
