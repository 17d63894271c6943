package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/inspection"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// forEachAPI serves the API over a fresh database of every kind (SQLite and PostgreSQL).
func forEachAPI(t *testing.T, fn func(t *testing.T, ts *httptest.Server, store *sqlstore.Store)) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			store, err := sqlstore.Open(context.Background(), target.DSN(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			ts := httptest.NewUnstartedServer(httpapi.New(httpapi.Options{Store: store, Drivers: ironwork.DefaultDriverConfig()}))
			ts.Listener = httpapi.ErrorListener(ts.Listener)
			ts.Start()
			t.Cleanup(ts.Close)
			fn(t, ts, store)
		})
	}
}

func wantFault(t *testing.T, r response, status int, msg string) {
	t.Helper()
	mustStatus(t, r, status)
	if _, got := r.fault(t); !strings.Contains(got, msg) {
		t.Fatalf("faultstring %q, want it to contain %q", got, msg)
	}
}

const v96 = "1.96"

// The create request of Ironic's API reference.
const sensitiveRule = `{"description": "BMC credentials", "phase": "main", "priority": 100, "sensitive": true,
  "conditions": [{"op": "contains", "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "(?i)dell"}},
                 {"op": "is-true", "args": {"value": "{node.auto_discovered}"}}],
  "actions": [{"op": "set-attribute", "args": {"path": "/driver", "value": "idrac"}},
              {"op": "set-attribute", "args": {"path": "driver_info.redfish_address", "value": "https://{inventory[bmc_address]}"}},
              {"op": "set-attribute", "args": {"path": "/driver_info/redfish_password", "value": "password"}}]}`

const plainRule = `{"uuid": "75A6C1F7-2DE0-47B3-9C54-8E6EF3A27BCD", "description": "Set properties on discovered data", "priority": 50,
  "conditions": [{"op": "!is-empty", "args": {"value": "{inventory[cpu][count]}"}},
                 {"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "{item}"]}, "loop": ["QEMU", "Dell"]}],
  "actions": [{"op": "set-attribute", "args": {"path": "/properties/cpus", "value": "{inventory[cpu][count]}"}},
              {"op": "set-attribute", "args": {"path": "{item[p]}", "value": "{item[v]}"}, "loop": [{"p": "/extra/a", "v": 1.5}]}]}`

// TestInspectionRulesAPI runs Ironic's inspection rules API: gating, create, show, list,
// patch, delete, the 400s for bad rules and the read-only built-in rules.
func TestInspectionRulesAPI(t *testing.T) {
	forEachAPI(t, func(t *testing.T, ts *httptest.Server, store *sqlstore.Store) {
		// Gating as Ironic: 404 to reads and 405 to writes below 1.96.
		wantFault(t, call(t, ts, "GET", "/v1/inspection_rules", "1.95", nil), 404, "The API version does not allow inspection rules")
		wantFault(t, call(t, ts, "GET", "/v1/inspection_rules/75a6c1f7-2de0-47b3-9c54-8e6ef3a27bcd", "", nil), 404, "does not allow inspection rules")
		mustStatus(t, call(t, ts, "POST", "/v1/inspection_rules", "1.95", plainRule), 405)
		mustStatus(t, call(t, ts, "PATCH", "/v1/inspection_rules/75a6c1f7-2de0-47b3-9c54-8e6ef3a27bcd", "1.95", `[]`), 405)
		mustStatus(t, call(t, ts, "DELETE", "/v1/inspection_rules/75a6c1f7-2de0-47b3-9c54-8e6ef3a27bcd", "1.95", nil), 405)
		mustStatus(t, call(t, ts, "GET", "/v1/inspection_rules", "1.500", nil), 406)
		if n, _ := store.ListInspectionRules(context.Background(), sqlstore.InspectionRuleFilter{}, sqlstore.Page{}); len(n) != 0 {
			t.Fatalf("a refused request stored %d rules", len(n))
		}

		// A sensitive rule: its conditions and actions are never shown.
		created := call(t, ts, "POST", "/v1/inspection_rules", v96, sensitiveRule)
		mustStatus(t, created, 201)
		id, _ := created.body["uuid"].(string)
		if !ironwork.IsUUID(id) || created.header.Get("Location") != ts.URL+"/v1/inspection_rules/"+id {
			t.Fatalf("uuid %q, Location %q", id, created.header.Get("Location"))
		}
		if created.body["actions"] != nil || created.body["conditions"] != nil || created.body["sensitive"] != true ||
			created.body["priority"] != float64(100) || created.body["created_at"] == nil || created.body["updated_at"] != nil {
			t.Errorf("created sensitive rule: %s", created.raw)
		}
		if strings.Contains(created.raw, "password") || strings.Contains(call(t, ts, "GET", "/v1/inspection_rules?detail=true", v96, nil).raw, "redfish_password") {
			t.Errorf("a sensitive rule's actions were shown")
		}

		// A plain rule comes back as it was sent, uuid lower-cased, loops with their multiple.
		mustStatus(t, call(t, ts, "POST", "/v1/inspection_rules", v96, plainRule), 201)
		plainID := "75a6c1f7-2de0-47b3-9c54-8e6ef3a27bcd"
		shown := call(t, ts, "GET", "/v1/inspection_rules/"+plainID, v96, nil)
		mustStatus(t, shown, 200)
		wantConds := []any{
			map[string]any{"op": "!is-empty", "args": map[string]any{"value": "{inventory[cpu][count]}"}},
			map[string]any{"op": "eq", "args": map[string]any{"values": []any{"{inventory[system_vendor][manufacturer]}", "{item}"}},
				"loop": []any{"QEMU", "Dell"}, "multiple": "any"},
		}
		if diff := cmp.Diff(wantConds, shown.body["conditions"]); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		if !strings.Contains(shown.raw, `"loop":[{"p":"/extra/a","v":1.5}]`) || shown.body["phase"] != "main" || shown.body["sensitive"] != false {
			t.Errorf("shown: %s", shown.raw)
		}
		wantFault(t, call(t, ts, "POST", "/v1/inspection_rules", v96, plainRule), 409, "A rule with UUID "+plainID+" already exists.")

		// Lists: Ironic's default fields, detail, fields, phase filter, sorting.
		list := call(t, ts, "GET", "/v1/inspection_rules?sort_key=priority&sort_dir=asc", v96, nil)
		mustStatus(t, list, 200)
		items := list.body["inspection_rules"].([]any)
		if len(items) != 2 || items[0].(map[string]any)["uuid"] != plainID {
			t.Fatalf("list: %s", list.raw)
		}
		var keys []string
		for k := range items[0].(map[string]any) {
			keys = append(keys, k)
		}
		if diff := cmp.Diff([]string{"description", "links", "phase", "priority", "uuid"}, slices.Sorted(slices.Values(keys))); diff != "" {
			t.Errorf("default list fields (-want +got):\n%s", diff)
		}
		detail := call(t, ts, "GET", "/v1/inspection_rules?detail=true", v96, nil).body["inspection_rules"].([]any)
		if _, ok := detail[0].(map[string]any)["actions"]; !ok {
			t.Errorf("detail list has no actions: %v", detail[0])
		}
		few := call(t, ts, "GET", "/v1/inspection_rules?fields=uuid,sensitive", v96, nil).body["inspection_rules"].([]any)
		if len(few[0].(map[string]any)) != 3 {
			t.Errorf("fields=uuid,sensitive: %v", few[0])
		}
		if n := len(call(t, ts, "GET", "/v1/inspection_rules?phase=other", v96, nil).body["inspection_rules"].([]any)); n != 0 {
			t.Errorf("phase=other listed %d rules", n)
		}
		wantFault(t, call(t, ts, "GET", "/v1/inspection_rules?sort_key=actions", v96, nil), 400, "The sort_key value actions is an invalid field for sorting")
		wantFault(t, call(t, ts, "GET", "/v1/inspection_rules?scope=x", v96, nil), 400, "Unexpected arguments: scope")

		// Bad rules: Ironic's 400s, and nothing stored.
		for body, msg := range map[string]string{
			`{"actions": [{"op": "reboot", "args": {}}]}`:                                                    "Schema error: 'reboot' is not one of ['fail', 'log'",
			`{"actions": [{"op": "log", "args": {"msg": "x"}}], "conditions": [{"op": "same", "args": {}}]}`: "'same' is not one of ['eq'",
			`{"actions": [{"op": "set-attribute", "args": {"path": "/extra/x"}}]}`:                           "Invalid parameters for action operator set-attribute: missing required argument(s): value",
			`{"actions": [{"op": "log", "args": {"msg": "x", "colour": "red"}}]}`:                            "unexpected argument(s): colour",
			`{"actions": [{"op": "log", "args": 5}]}`:                                                        "Schema error: 5 is not of type 'array', 'object'",
			`{"actions": [{"op": "log", "args": {"msg": "x"}}], "priority": "high"}`:                         "Schema error: 'high' is not of type 'integer'",
			`{"actions": [{"op": "log", "args": {"msg": "x"}}], "priority": 10000}`:                          "Priority must be between 0 and 9999 for user-defined rules.",
			`{"actions": [{"op": "log", "args": {"msg": "x"}}], "phase": "pre"}`:                             "Invalid phase: pre. Valid phases are: main",
			`{"actions": [{"op": "log", "args": {"msg": "x"}}], "built_in": true}`:                           "Additional properties are not allowed ('built_in' was unexpected)",
			`{"actions": []}`:    "Schema error: [] is too short",
			`{"conditions": []}`: "Schema error: 'actions' is a required property",
			`[1]`:                "is not of type 'object'",
			`{"actions": [{"op": "log", "args": {"msg": "x"}}], "conditions": [{"op": "matches", "args": {"value": "x", "regex": "("}}]}`: "invalid regular expression",
		} {
			wantFault(t, call(t, ts, "POST", "/v1/inspection_rules", v96, body), 400, msg)
		}

		// PATCH as Ironic's API reference shows it.
		patched := call(t, ts, "PATCH", "/v1/inspection_rules/"+plainID, v96, `[
			{"path": "/description", "value": "Updated rule for setting hardware properties", "op": "replace"},
			{"path": "/priority", "value": 75, "op": "replace"},
			{"path": "/conditions/0", "value": {"op": "is-true", "args": {"value": "{inventory[cpu][count]}"}}, "op": "replace"},
			{"path": "/actions/-", "value": {"op": "set-attribute", "args": {"path": "/properties/local_gb", "value": "{inventory[disks][0][size]}"}}, "op": "add"}]`)
		mustStatus(t, patched, 200)
		if patched.body["priority"] != float64(75) || patched.body["updated_at"] == nil || len(patched.body["actions"].([]any)) != 3 ||
			patched.body["conditions"].([]any)[0].(map[string]any)["op"] != "is-true" {
			t.Errorf("patched: %s", patched.raw)
		}
		before := call(t, ts, "GET", "/v1/inspection_rules/"+plainID, v96, nil).raw
		wantFault(t, call(t, ts, "PATCH", "/v1/inspection_rules/"+plainID, v96, `[{"op": "replace", "path": "/priority", "value": 10000}]`), 400, "Priority must be between")
		wantFault(t, call(t, ts, "PATCH", "/v1/inspection_rules/"+plainID, v96, `[{"op": "add", "path": "/actions/-", "value": {"op": "nope", "args": {}}}]`), 400, "'nope' is not one of")
		wantFault(t, call(t, ts, "PATCH", "/v1/inspection_rules/"+plainID, v96, `[{"op": "replace", "path": "/uuid", "value": "x"}]`), 400, "Cannot patch /uuid")
		if after := call(t, ts, "GET", "/v1/inspection_rules/"+plainID, v96, nil).raw; after != before {
			t.Errorf("a refused patch changed the rule:\n%s\n%s", before, after)
		}
		mustStatus(t, call(t, ts, "PATCH", "/v1/inspection_rules/"+plainID, v96, `[{"op": "replace", "path": "/sensitive", "value": true}]`), 200)
		wantFault(t, call(t, ts, "PATCH", "/v1/inspection_rules/"+plainID, v96, `[{"op": "replace", "path": "/sensitive", "value": false}]`), 400,
			"Couldn't apply patch '[{'op': 'replace', 'path': '/sensitive', 'value': False}]'. Reason: Inspection rules cannot have the sensitive flag unset.")

		// Built-in rules: listed and shown, never changed through the API.
		builtIn, err := inspection.ParseBuiltIn([]byte("- uuid: rule-dell\n  priority: 20000\n  actions: [{op: add-trait, args: {name: CUSTOM_DELL}}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.ReplaceBuiltInRules(context.Background(), builtIn); err != nil {
			t.Fatal(err)
		}
		b := call(t, ts, "GET", "/v1/inspection_rules/rule-dell", v96, nil)
		if b.status != 200 || b.body["priority"] != float64(20000) {
			t.Fatalf("built-in rule: %s", b.raw)
		}
		wantFault(t, call(t, ts, "PATCH", "/v1/inspection_rules/rule-dell", v96, `[{"op": "replace", "path": "/priority", "value": 1}]`), 400, "is a built-in rule")
		wantFault(t, call(t, ts, "DELETE", "/v1/inspection_rules/rule-dell", v96, nil), 400, "is a built-in rule")
		wantFault(t, call(t, ts, "GET", "/v1/inspection_rules/not-a-rule", v96, nil), 400, "Schema error: 'not-a-rule' is not a 'uuid'")
		if n := len(call(t, ts, "GET", "/v1/inspection_rules", v96, nil).body["inspection_rules"].([]any)); n != 3 {
			t.Errorf("list has %d rules, want 3 with the built-in one", n)
		}

		// Delete.
		mustStatus(t, call(t, ts, "DELETE", "/v1/inspection_rules/"+plainID, v96, nil), 204)
		wantFault(t, call(t, ts, "GET", "/v1/inspection_rules/"+plainID, v96, nil), 404, "Rule "+plainID+" could not be found.")
		wantFault(t, call(t, ts, "DELETE", "/v1/inspection_rules/"+plainID, v96, nil), 404, "could not be found")
		mustStatus(t, call(t, ts, "DELETE", "/v1/inspection_rules", v96, nil), http.StatusMethodNotAllowed)
	})
}
