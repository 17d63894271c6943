package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

type obj = map[string]any

func TestDeployTemplates(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			srv := startServer(t, target.DSN(t))
			ctx := context.Background()
			c := gopherClient(t, srv, "1.87")
			url := func(parts ...string) string { return c.ServiceURL(append([]string{"deploy_templates"}, parts...)...) }
			create := func(t *testing.T, body obj) obj {
				t.Helper()
				var out obj
				if _, err := c.Post(ctx, url(), body, &out, &gophercloud.RequestOpts{OkCodes: []int{201}}); err != nil {
					t.Fatalf("create %v: %v", body["name"], err)
				}
				return out
			}
			step := func(iface, name string, prio any, args obj) obj {
				return obj{"interface": iface, "step": name, "priority": prio, "args": args}
			}

			t.Run("crud", func(t *testing.T) {
				a := create(t, obj{"name": "CUSTOM_A", "extra": obj{"k": "v"},
					"steps": []any{step("management", "fake_record", 10, obj{"x": 1, "bmc_password": "s3cret"})}})
				if a["uuid"] == "" || a["name"] != "CUSTOM_A" || a["created_at"] == nil {
					t.Fatalf("created: %v", a)
				}
				got := a["steps"].([]any)[0].(obj)
				if !reflect.DeepEqual(got, obj{"interface": "management", "step": "fake_record", "priority": json.Number("10"),
					"args": obj{"x": json.Number("1"), "bmc_password": "******"}}) {
					t.Fatalf("step shown as %#v", got)
				}
				create(t, obj{"name": "CUSTOM_B", "steps": []any{step("deploy", "deploy", "20", obj{})}})

				var list struct {
					Templates []obj  `json:"deploy_templates"`
					Next      string `json:"next"`
				}
				if _, err := c.Get(ctx, url()+"?limit=1&sort_key=name&sort_dir=desc", &list, nil); err != nil {
					t.Fatal(err)
				}
				if len(list.Templates) != 1 || list.Templates[0]["name"] != "CUSTOM_B" || list.Templates[0]["steps"] != nil || list.Next == "" {
					t.Fatalf("first page: %+v", list)
				}
				if _, err := c.Get(ctx, url()+"?fields=name,steps", &list, nil); err != nil {
					t.Fatal(err)
				}
				if len(list.Templates) != 2 || list.Templates[1]["steps"] == nil || list.Templates[1]["uuid"] != nil {
					t.Fatalf("fields list: %+v", list.Templates)
				}
				var one obj
				if _, err := c.Get(ctx, url("CUSTOM_B"), &one, nil); err != nil {
					t.Fatal(err)
				}
				if one["steps"].([]any)[0].(obj)["priority"] != json.Number("20") {
					t.Fatalf("string priority not stored as a number: %v", one)
				}
				var patched obj
				if _, err := c.Patch(ctx, url(a["uuid"].(string)), []obj{
					{"op": "replace", "path": "/steps/0/priority", "value": 30},
					{"op": "add", "path": "/extra/n", "value": 2},
				}, &patched, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
					t.Fatal(err)
				}
				if patched["steps"].([]any)[0].(obj)["priority"] != json.Number("30") || patched["extra"].(obj)["n"] != json.Number("2") || patched["updated_at"] == nil {
					t.Fatalf("patched: %v", patched)
				}
				_, err := c.Patch(ctx, url("CUSTOM_A"), []obj{{"op": "replace", "path": "/name", "value": "CUSTOM_B"}}, nil,
					&gophercloud.RequestOpts{OkCodes: []int{200}})
				if got := faultOf(t, err, 409); got != "A deploy template with name CUSTOM_B already exists." {
					t.Fatalf("rename onto another: %q", got)
				}
				if _, err := c.Delete(ctx, url("CUSTOM_B"), nil); err != nil {
					t.Fatal(err)
				}
				_, err = c.Get(ctx, url("CUSTOM_B"), &one, nil)
				if got := faultOf(t, err, 404); got != "Deploy template CUSTOM_B could not be found." {
					t.Fatalf("after delete: %q", got)
				}
			})

			t.Run("validation", func(t *testing.T) {
				good := []any{step("deploy", "deploy", 1, obj{})}
				for _, tc := range []struct {
					body obj
					want string
				}{
					{obj{"name": "raid", "steps": good}, "Schema error for template: 'raid' is not valid under any of the given schemas"},
					{obj{"name": "CUSTOM_X"}, "Schema error for template: 'steps' is a required property"},
					{obj{"name": "CUSTOM_X", "steps": []any{}}, "Schema error for template: [] is too short"},
					{obj{"name": "CUSTOM_X", "steps": good, "bogus": 1}, "Schema error for template: Additional properties are not allowed ('bogus' was unexpected)"},
					{obj{"name": "CUSTOM_X", "steps": []any{step("network", "x", 1, obj{})}},
						"Schema error for template: 'network' is not one of ['vendor', 'power', 'management', 'firmware', 'deploy', 'bios', 'raid']"},
					{obj{"name": "CUSTOM_X", "steps": []any{step("deploy", "x", -1, obj{})}}, "Schema error for template: -1 is not valid under any of the given schemas"},
					{obj{"name": "CUSTOM_X", "steps": []any{obj{"interface": "deploy", "step": "x", "priority": 1}}}, "Schema error for template: 'args' is a required property"},
					{obj{"name": "CUSTOM_X", "steps": []any{step("deploy", "x", 1, obj{}), step("deploy", "x", 2, obj{})}},
						"Deploy template invalid: Duplicate deploy steps. A template cannot have multiple deploy steps with the same interface and step. Duplicates: interface: deploy, step: x."},
				} {
					_, err := c.Post(ctx, url(), tc.body, nil, &gophercloud.RequestOpts{OkCodes: []int{201}})
					if got := faultOf(t, err, 400); got != tc.want {
						t.Errorf("%v:\n got %q\nwant %q", tc.body, got, tc.want)
					}
				}
				old := gopherClient(t, srv, "1.54")
				_, err := old.Get(ctx, url(), nil, nil)
				wantStatus(t, err, http.StatusNotFound)
				_, err = old.Post(ctx, url(), obj{"name": "CUSTOM_X", "steps": good}, nil, &gophercloud.RequestOpts{OkCodes: []int{201}})
				if got := faultOf(t, err, http.StatusMethodNotAllowed); got != "The API version does not allow deploy templates" {
					t.Errorf("POST at 1.54: %q", got)
				}
			})

			t.Run("deploy", func(t *testing.T) {
				create(t, obj{"name": "CUSTOM_REC", "steps": []any{step("management", "fake_record", 150, obj{"x": "y"})}})
				create(t, obj{"name": "CUSTOM_NODEPLOY", "steps": []any{step("deploy", "deploy", 0, obj{})}})
				create(t, obj{"name": "CUSTOM_BAD", "steps": []any{step("deploy", "no_such_step", 10, obj{"a": true})}})
				available := func(name string, traits []string, instance []string) string {
					t.Helper()
					n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: name, Driver: "fake-hardware",
						DriverInfo: map[string]any{"fake_deploy_fail": true}}).Extract()
					if err != nil {
						t.Fatal(err)
					}
					if _, err := c.Put(ctx, c.ServiceURL("nodes", n.UUID, "traits"), obj{"traits": traits}, nil,
						&gophercloud.RequestOpts{OkCodes: []int{204}}); err != nil {
						t.Fatal(err)
					}
					if _, err := nodes.Update(ctx, c, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp,
						Path: "/instance_info/traits", Value: instance}}).Extract(); err != nil {
						t.Fatal(err)
					}
					provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
					waitFor(t, c, n.UUID, 10*time.Second, inState("manageable"))
					provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
					waitFor(t, c, n.UUID, 10*time.Second, inState("available"))
					return n.UUID
				}

				// The template's step runs; the disabled deploy step does not (it would fail).
				ok := available("tpl-ok", []string{"CUSTOM_REC", "CUSTOM_NODEPLOY", "CUSTOM_OTHER"}, []string{"CUSTOM_REC", "CUSTOM_NODEPLOY"})
				provision(t, c, ok, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
				n := waitFor(t, c, ok, 20*time.Second, func(n *nodes.Node) bool { return n.ProvisionState == "active" || n.ProvisionState == "deploy failed" })
				if n.ProvisionState != "active" {
					t.Fatalf("deploy with templates: %s (%s)", n.ProvisionState, n.LastError)
				}
				want := []any{obj{"interface": "management", "args": obj{"x": "y"}}}
				if !reflect.DeepEqual(n.DriverInternalInfo["fake_record"], want) {
					t.Fatalf("steps recorded: %v, want %v", n.DriverInternalInfo["fake_record"], want)
				}

				// Without the disabling template the driver's deploy step runs and fails.
				plain := available("tpl-plain", []string{"CUSTOM_REC"}, []string{"CUSTOM_REC"})
				provision(t, c, plain, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
				if n := waitFor(t, c, plain, 20*time.Second, inState("deploy failed")); n.DriverInternalInfo["fake_record"] == nil {
					t.Fatalf("template step did not run before the failing deploy step: %v", n.DriverInternalInfo)
				}

				bad := available("tpl-bad", []string{"CUSTOM_BAD"}, []string{"CUSTOM_BAD"})
				provision(t, c, bad, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
				n = waitFor(t, c, bad, 20*time.Second, inState("deploy failed"))
				wantErr := "Validation of deploy steps from deploy templates matching this node's instance traits failed. Matching deploy templates: CUSTOM_BAD. " +
					"Errors: node does not support this deploy step: {'interface': 'deploy', 'step': 'no_such_step', 'args': {'a': True}, 'priority': 10}"
				if n.LastError != wantErr {
					t.Fatalf("last_error = %q\nwant %q", n.LastError, wantErr)
				}

				missing := available("tpl-missing", []string{"CUSTOM_REC"}, []string{"CUSTOM_REC", "CUSTOM_ELSE"})
				err := nodes.ChangeProvisionState(ctx, c, missing, nodes.ProvisionStateOpts{Target: nodes.TargetActive}).ExtractErr()
				wantMsg := "Failed to validate deploy or power info for node " + missing +
					": Cannot specify instance traits that are not also set on the node. Node " + missing + " is missing traits CUSTOM_ELSE"
				if got := faultOf(t, err, 400); got != wantMsg {
					t.Fatalf("fault = %q\nwant %q", got, wantMsg)
				}
				if n := waitFor(t, c, missing, time.Second, inState("available")); n.LastError != "" {
					t.Fatalf("refused deploy changed the node: %v", n.LastError)
				}
			})
		})
	}
}
