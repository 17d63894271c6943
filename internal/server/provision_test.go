package server_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/api"
)

// TestProvisionBodyChecks runs the provision call's refusals that come from the verb table
// (ironwork.ProvisionVerbs): unknown and too-new verbs and fields, required and exclusive
// fields. Each is refused before the node changes.
func TestProvisionBodyChecks(t *testing.T) {
	srv := startServer(t, "sqlite://"+filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "pv-1", "driver": "fake-hardware"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	step := []any{map[string]any{"interface": "deploy", "step": "erase_devices"}}
	for _, tc := range []struct {
		version string
		body    map[string]any
		status  int
		msg     string
	}{
		{"1.87", map[string]any{"target": "fly"}, 400, `"fly" is not a valid provision state target.`},
		{"1.3", map[string]any{"target": "manage"}, 406, `The requested action "manage" is not available in API version 1.3 (needs 1.4).`},
		{"1.72", map[string]any{"target": "deploy"}, 406, `The requested action "deploy" is not available in API version 1.72 (needs 1.73).`},
		{"1.86", map[string]any{"target": "service", "service_steps": step}, 406, "minimal required API version should be 1.87"},
		{"1.14", map[string]any{"target": "clean", "clean_steps": step}, 406, "minimal required API version should be 1.15"},
		{"1.68", map[string]any{"target": "active", "deploy_steps": step}, 406, "minimal required API version should be 1.69"},
		{"1.37", map[string]any{"target": "rescue", "rescue_password": "x"}, 406, "minimal required API version should be 1.38"},
		{"1.69", map[string]any{"target": "clean", "disable_ramdisk": true}, 406, "minimal required API version should be 1.70"},
		{"1.87", map[string]any{"target": "clean"}, 400, `"clean_steps" is required when setting target provision state to clean`},
		{"1.87", map[string]any{"target": "clean", "clean_steps": []any{}}, 400, `"clean_steps" is required when setting target provision state to clean`},
		{"1.87", map[string]any{"target": "service"}, 400, `"service_steps" is required when setting target provision state to service`},
		{"1.87", map[string]any{"target": "manage", "clean_steps": step}, 400, `"clean_steps" is only valid when setting target provision state to clean`},
		{"1.87", map[string]any{"target": "clean", "clean_steps": "erase"}, 400, "clean_steps must be a list of steps"},
		{"1.87", map[string]any{"target": "clean", "clean_steps": []any{"erase"}}, 400, "Invalid clean_steps: the step 'erase' is not an object."},
		{"1.87", map[string]any{"target": "clean", "clean_steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices", "wings": 2}}},
			400, `clean step 0 has an unknown key "wings"`},
		{"1.87", map[string]any{"target": "manage", "wings": 2}, 400, "Additional properties are not allowed ('wings' was unexpected)"},
	} {
		v := &api.Client{BaseURL: srv.URL(), Version: tc.version}
		err := v.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", tc.body, nil)
		if !api.IsStatus(err, tc.status) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %v: %v, want HTTP %d saying %q", tc.version, tc.body, err, tc.status, tc.msg)
		}
	}
	var got map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got["provision_state"] != "enroll" || got["reservation"] != nil {
		t.Errorf("refused calls changed the node: %v, reservation %v", got["provision_state"], got["reservation"])
	}
}
