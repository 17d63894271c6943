package httpapi_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestVolumeConnectorsAndTargets runs Ironic's volume API (1.32): gating, create, show, lists
// (global, by node, under the node), patch and delete with the conductor's power-state rule,
// duplicates, bad input, and the records going away with their node.
func TestVolumeConnectorsAndTargets(t *testing.T) {
	forEachAPI(t, func(t *testing.T, ts *httptest.Server, store *sqlstore.Store) {
		const v = "1.32"
		ctx := context.Background()
		mustStatus(t, call(t, ts, "POST", "/v1/nodes", v, map[string]any{"driver": "fake-hardware", "name": "vol-a"}), 201)
		mustStatus(t, call(t, ts, "POST", "/v1/nodes", v, map[string]any{"driver": "fake-hardware", "name": "vol-b"}), 201)
		a, err := store.GetNode(ctx, "vol-a")
		if err != nil {
			t.Fatal(err)
		}

		// Below 1.32 nothing of it exists.
		mustStatus(t, call(t, ts, "GET", "/v1/volume", "1.31", nil), 404)
		mustStatus(t, call(t, ts, "GET", "/v1/volume/connectors", "1.31", nil), 404)
		mustStatus(t, call(t, ts, "POST", "/v1/volume/targets", "1.31", map[string]any{}), 404)
		root := call(t, ts, "GET", "/v1/volume", v, nil)
		mustStatus(t, root, 200)
		if root.body["connectors"] == nil || root.body["targets"] == nil {
			t.Fatalf("volume root: %s", root.raw)
		}
		mustStatus(t, call(t, ts, "GET", "/v1/nodes/vol-a/volume", v, nil), 200)

		conn := map[string]any{"node_uuid": a.UUID, "type": "iqn", "connector_id": "iqn.2017-07.org.example:01", "extra": map[string]any{"k": "v"}}
		c := call(t, ts, "POST", "/v1/volume/connectors", v, conn)
		mustStatus(t, c, 201)
		cu, _ := c.body["uuid"].(string)
		if c.body["type"] != "iqn" || c.body["node_uuid"] != a.UUID || c.header.Get("Location") == "" {
			t.Fatalf("created connector: %s", c.raw)
		}
		wantFault(t, call(t, ts, "POST", "/v1/volume/connectors", v, conn), 409, "type iqn and connector ID iqn.2017-07.org.example:01 already exists")
		wantFault(t, call(t, ts, "POST", "/v1/volume/connectors", v, map[string]any{"node_uuid": a.UUID, "type": "iqn"}), 400, "'connector_id' is a required property")
		wantFault(t, call(t, ts, "POST", "/v1/volume/connectors", v, map[string]any{"node_uuid": a.UUID, "type": "iqn", "connector_id": "x", "bogus": 1}), 400, "'bogus' was unexpected")
		wantFault(t, call(t, ts, "POST", "/v1/volume/connectors", v, map[string]any{"node_uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "type": "iqn", "connector_id": "y"}), 400, "Invalid input for field/attribute node_uuid")

		tgt := map[string]any{"node_uuid": a.UUID, "volume_type": "iscsi", "boot_index": 0, "volume_id": "04452bed-5367-4202-8bf5-de4335ac56d2",
			"properties": map[string]any{"target_iqn": "iqn.x", "auth_password": "s3cret"}}
		tr := call(t, ts, "POST", "/v1/volume/targets", v, tgt)
		mustStatus(t, tr, 201)
		tu, _ := tr.body["uuid"].(string)
		if p, _ := tr.body["properties"].(map[string]any); p["auth_password"] != "******" || p["target_iqn"] != "iqn.x" {
			t.Fatalf("target properties not masked as Ironic: %s", tr.raw)
		}
		wantFault(t, call(t, ts, "POST", "/v1/volume/targets", v, tgt), 409, "boot index '0' for the same node already exists")
		tgt["boot_index"] = "one"
		wantFault(t, call(t, ts, "POST", "/v1/volume/targets", v, tgt), 400, "is not of type 'integer'")

		// Lists: the defaults, by node, under the node, detail.
		l := call(t, ts, "GET", "/v1/volume/connectors", v, nil)
		mustStatus(t, l, 200)
		items, _ := l.body["connectors"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["extra"] != nil || items[0].(map[string]any)["connector_id"] == nil {
			t.Fatalf("connector list: %s", l.raw)
		}
		for _, p := range []string{"/v1/volume/targets?node=vol-b", "/v1/nodes/vol-b/volume/targets"} {
			if r := call(t, ts, "GET", p, v, nil); len(r.body["targets"].([]any)) != 0 {
				t.Fatalf("%s: %s", p, r.raw)
			}
		}
		d := call(t, ts, "GET", "/v1/nodes/vol-a/volume/targets?detail=true", "1.43", nil)
		if items, _ := d.body["targets"].([]any); len(items) != 1 || items[0].(map[string]any)["properties"] == nil {
			t.Fatalf("detailed targets of vol-a: %s", d.raw)
		}
		mustStatus(t, call(t, ts, "GET", "/v1/volume/connectors?bogus=1", v, nil), 400)
		mustStatus(t, call(t, ts, "GET", "/v1/volume/connectors/"+cu+"?fields=type", v, nil), 200)

		// Changes need the node powered off, as Ironic's conductor.
		patch := []map[string]any{{"op": "replace", "path": "/connector_id", "value": "iqn.2017-07.org.example:02"}}
		wantFault(t, call(t, ts, "PATCH", "/v1/volume/connectors/"+cu, v, patch), 400, "can not be performed on node")
		if _, err := store.UpdateNode(ctx, a.UUID, func(n *ironwork.Node) error { n.PowerState = ironwork.PowerOff; return nil }); err != nil {
			t.Fatal(err)
		}
		p := call(t, ts, "PATCH", "/v1/volume/connectors/"+cu, v, patch)
		mustStatus(t, p, 200)
		if p.body["connector_id"] != "iqn.2017-07.org.example:02" {
			t.Fatalf("patched connector: %s", p.raw)
		}
		wantFault(t, call(t, ts, "PATCH", "/v1/volume/targets/"+tu, v, []map[string]any{{"op": "remove", "path": "/volume_id"}}), 400, "'volume_id' is a required property")
		wantFault(t, call(t, ts, "PATCH", "/v1/volume/targets/"+tu, v, []map[string]any{{"op": "replace", "path": "/uuid", "value": cu}}), 400, "Cannot patch /uuid")
		mustStatus(t, call(t, ts, "DELETE", "/v1/volume/connectors/"+cu, v, nil), 204)
		mustStatus(t, call(t, ts, "GET", "/v1/volume/connectors/"+cu, v, nil), 404)
		mustStatus(t, call(t, ts, "GET", "/v1/volume/connectors/not-a-uuid", v, nil), 400)

		// The target goes with its node.
		mustStatus(t, call(t, ts, "DELETE", "/v1/nodes/vol-a", v, nil), 204)
		mustStatus(t, call(t, ts, "GET", "/v1/volume/targets/"+tu, v, nil), 404)
	})
}
