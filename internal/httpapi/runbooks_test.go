package httpapi_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/network"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestRunbooks runs Ironic's runbook API: gating (1.92), create, show, list, patch, the
// traits sub-resource (1.112), delete, and a manual clean started from a runbook with the
// approval rules of both versions.
func TestRunbooks(t *testing.T) {
	forEachAPI(t, func(t *testing.T, ts *httptest.Server, store *sqlstore.Store) {
		const v, v112 = "1.92", "1.112"
		rb := map[string]any{"name": "CUSTOM_FIRMWARE", "disable_ramdisk": false, "extra": map[string]any{"a": 1},
			"steps": []any{
				map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "order": 2},
				map[string]any{"interface": "management", "step": "clear_job_queue", "order": "1"},
			}}
		mustStatus(t, call(t, ts, "GET", "/v1/runbooks", "1.91", nil), 404)
		mustStatus(t, call(t, ts, "POST", "/v1/runbooks", "1.91", rb), 405)

		c := call(t, ts, "POST", "/v1/runbooks", v, rb)
		mustStatus(t, c, 201)
		if c.body["public"] != false || c.body["owner"] != nil || c.body["traits"] != nil || c.body["description"] != nil {
			t.Fatalf("created at 1.92: %s", c.raw)
		}
		steps, _ := c.body["steps"].([]any)
		if len(steps) != 2 || steps[1].(map[string]any)["order"] != float64(1) {
			t.Fatalf("steps: %s", c.raw)
		}
		mustStatus(t, call(t, ts, "POST", "/v1/runbooks", v, rb), 409)
		for name, body := range map[string]map[string]any{
			"name not a trait at 1.92": {"name": "firmware", "steps": rb["steps"]},
			"no steps":                 {"name": "CUSTOM_X", "steps": []any{}},
			"no order":                 {"name": "CUSTOM_X", "steps": []any{map[string]any{"interface": "deploy", "step": "x"}}},
			"bad interface":            {"name": "CUSTOM_X", "steps": []any{map[string]any{"interface": "boot", "step": "x", "order": 1}}},
			"traits at create":         {"name": "CUSTOM_X", "steps": rb["steps"], "traits": []any{"CUSTOM_X"}},
			"description at 1.92":      {"name": "CUSTOM_X", "steps": rb["steps"], "description": "d"},
			"public with owner":        {"name": "CUSTOM_X", "steps": rb["steps"], "public": true, "owner": "p1"},
		} {
			t.Run(name, func(t *testing.T) { mustStatus(t, call(t, ts, "POST", "/v1/runbooks", v, body), 400) })
		}
		// From 1.112 a name is any logical name and a description may be given.
		free := call(t, ts, "POST", "/v1/runbooks", v112, map[string]any{"name": "bios-reset.v2", "description": "reset", "steps": rb["steps"]})
		mustStatus(t, free, 201)
		if free.body["traits"] == nil || free.body["description"] != "reset" {
			t.Fatalf("created at 1.112: %s", free.raw)
		}

		l := call(t, ts, "GET", "/v1/runbooks", v, nil)
		if items, _ := l.body["runbooks"].([]any); len(items) != 2 || items[0].(map[string]any)["steps"] != nil {
			t.Fatalf("list: %s", l.raw)
		}
		mustStatus(t, call(t, ts, "GET", "/v1/runbooks/CUSTOM_FIRMWARE?fields=name,steps", v, nil), 200)
		p := call(t, ts, "PATCH", "/v1/runbooks/CUSTOM_FIRMWARE", v, []map[string]any{{"op": "replace", "path": "/public", "value": true},
			{"op": "add", "path": "/extra/b", "value": "c"}})
		mustStatus(t, p, 200)
		if p.body["public"] != true {
			t.Fatalf("patched: %s", p.raw)
		}
		mustStatus(t, call(t, ts, "PATCH", "/v1/runbooks/CUSTOM_FIRMWARE", v, []map[string]any{{"op": "add", "path": "/owner", "value": "p1"}}), 400)
		mustStatus(t, call(t, ts, "PATCH", "/v1/runbooks/CUSTOM_FIRMWARE", v, []map[string]any{{"op": "replace", "path": "/description", "value": "x"}}), 400)
		mustStatus(t, call(t, ts, "PATCH", "/v1/runbooks/CUSTOM_FIRMWARE", v, []map[string]any{{"op": "replace", "path": "/uuid", "value": "x"}}), 400)

		// Traits (1.112).
		mustStatus(t, call(t, ts, "GET", "/v1/runbooks/bios-reset.v2/traits", v, nil), 404)
		mustStatus(t, call(t, ts, "PUT", "/v1/runbooks/bios-reset.v2/traits", v112, map[string]any{"traits": []any{"CUSTOM_A", "CUSTOM_B"}}), 204)
		mustStatus(t, call(t, ts, "PUT", "/v1/runbooks/bios-reset.v2/traits/CUSTOM_C", v112, nil), 204)
		mustStatus(t, call(t, ts, "PUT", "/v1/runbooks/bios-reset.v2/traits/CUSTOM_C", v112, map[string]any{"traits": []any{}}), 400)
		mustStatus(t, call(t, ts, "PUT", "/v1/runbooks/bios-reset.v2/traits", v112, map[string]any{"traits": []any{"lower"}}), 400)
		mustStatus(t, call(t, ts, "DELETE", "/v1/runbooks/bios-reset.v2/traits/CUSTOM_A", v112, nil), 204)
		mustStatus(t, call(t, ts, "DELETE", "/v1/runbooks/bios-reset.v2/traits/CUSTOM_A", v112, nil), 404)
		tr := call(t, ts, "GET", "/v1/runbooks/bios-reset.v2/traits", v112, nil)
		if got, _ := tr.body["traits"].([]any); len(got) != 2 || got[0] != "CUSTOM_B" || got[1] != "CUSTOM_C" {
			t.Fatalf("traits: %s", tr.raw)
		}

		mustStatus(t, call(t, ts, "DELETE", "/v1/runbooks/bios-reset.v2", v, nil), 204)
		mustStatus(t, call(t, ts, "GET", "/v1/runbooks/bios-reset.v2", v, nil), 404)
	})
}

// TestRunbookClean starts a manual clean from a runbook, with the approval rules of 1.92
// (the runbook's name is a node trait) and 1.112 (a runbook trait is).
func TestRunbookClean(t *testing.T) {
	ts, store := newAPI(t, func(o *httpapi.Options) {
		reg := conductor.Registry{}
		fake.Register(reg)
		network.Register(reg)
		cfg := conductor.Defaults()
		cfg.Hostname = "c1"
		o.Conductor = localConductor{conductor.New(cfg, o.Store, ironwork.DefaultDriverConfig(), reg, nil)}
	})
	const v, v112 = "1.92", "1.112"
	ctx := context.Background()
	steps := []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "order": 2},
		map[string]any{"interface": "management", "step": "erase_devices", "order": "1"}}
	mustStatus(t, call(t, ts, "POST", "/v1/runbooks", v, map[string]any{"name": "CUSTOM_FIRMWARE", "steps": steps}), 201)
	mustStatus(t, call(t, ts, "POST", "/v1/runbooks", v112, map[string]any{"name": "bios-reset.v2", "steps": steps}), 201)
	mustStatus(t, call(t, ts, "PUT", "/v1/runbooks/bios-reset.v2/traits", v112, map[string]any{"traits": []any{"CUSTOM_B", "CUSTOM_C"}}), 204)
	// Using a runbook for a manual clean.
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", v, map[string]any{"driver": "fake-hardware", "name": "rb-node"}), 201)
	if _, err := store.UpdateNode(ctx, "rb-node", func(n *ironwork.Node) error { n.ProvisionState = ironwork.Manageable; return nil }); err != nil {
		t.Fatal(err)
	}
	clean := func(ver, runbook string, extra map[string]any) response {
		body := map[string]any{"target": "clean", "runbook": runbook}
		for k, v := range extra {
			body[k] = v
		}
		return call(t, ts, "PUT", "/v1/nodes/rb-node/states/provision", ver, body)
	}
	mustStatus(t, clean("1.91", "CUSTOM_FIRMWARE", nil), 406)
	wantFault(t, clean(v, "CUSTOM_FIRMWARE", nil), 400, "has not been approved for use on this node")
	mustStatus(t, call(t, ts, "PUT", "/v1/nodes/rb-node/traits/CUSTOM_FIRMWARE", v, nil), 204)
	wantFault(t, clean(v, "CUSTOM_FIRMWARE", map[string]any{"clean_steps": []any{map[string]any{"interface": "deploy", "step": "x"}}}), 400, "but not both")
	wantFault(t, call(t, ts, "PUT", "/v1/nodes/rb-node/states/provision", v, map[string]any{"target": "provide", "runbook": "CUSTOM_FIRMWARE"}), 400, "is only valid when setting target provision state to clean, service")
	wantFault(t, clean(v112, "CUSTOM_FIRMWARE", nil), 400, "has no traits configured")
	wantFault(t, clean(v112, "bios-reset.v2", nil), 400, "does not have any of the runbook's traits ['CUSTOM_B', 'CUSTOM_C']")
	mustStatus(t, clean(v, "nonexistent", nil), 404)
	mustStatus(t, clean(v, "CUSTOM_FIRMWARE", nil), 202)

}
