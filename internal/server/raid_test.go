package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// raidCall sends one request at a microversion and returns the status and the raw body.
func raidCall(t *testing.T, base, version, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// faultString digs Ironic's faultstring out of an error body.
func faultString(t *testing.T, body string) string {
	t.Helper()
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	var inner struct {
		FaultString string `json:"faultstring"`
	}
	if json.Unmarshal([]byte(body), &outer) != nil || json.Unmarshal([]byte(outer.ErrorMessage), &inner) != nil {
		t.Fatalf("not an Ironic error body: %s", body)
	}
	return inner.FaultString
}

// TestTargetRAIDConfigAPI drives PUT /v1/nodes/{id}/states/raid and the logical disk
// properties against a real server: Ironic's schema refusals with a 400 that leaves the stored
// target alone, a raid interface that cannot build RAID refusing any target, clearing with {}.
func TestTargetRAIDConfigAPI(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			srv := startServer(t, target.DSN(t))
			base := srv.URL()
			create := func(body string) string {
				st, out := raidCall(t, base, "1.31", "POST", "/v1/nodes", body)
				if st != 201 {
					t.Fatalf("create node: %d %s", st, out)
				}
				var n struct{ UUID string }
				_ = json.Unmarshal([]byte(out), &n)
				return n.UUID
			}
			fake := create(`{"name": "raid-fake", "driver": "fake-hardware"}`)
			ipmi := create(`{"name": "raid-ipmi", "driver": "ipmi", "driver_info": {"ipmi_address": "127.0.0.1"}}`)
			target := func(uuid string) any {
				st, out := raidCall(t, base, "1.12", "GET", "/v1/nodes/"+uuid, "")
				if st != 200 {
					t.Fatalf("get node: %d %s", st, out)
				}
				var n map[string]any
				_ = json.Unmarshal([]byte(out), &n)
				return n["target_raid_config"]
			}
			good := `{"logical_disks": [{"size_gb": 10, "raid_level": "1", "is_root_volume": true, "controller": "software"}]}`
			if st, out := raidCall(t, base, "1.12", "PUT", "/v1/nodes/"+fake+"/states/raid", good); st != 204 {
				t.Fatalf("PUT a valid target: %d %s", st, out)
			}
			stored := target(fake).(map[string]any)
			if d := stored["logical_disks"].([]any)[0].(map[string]any); d["raid_level"] != "1" || d["size_gb"] != 10.0 {
				t.Fatalf("stored target = %v", stored)
			}
			for _, tc := range []struct{ body, fault string }{
				{`{"logical_disks": [{"size_gb": 10, "raid_level": "3"}]}`,
					"RAID config validation error: '3' is not one of ['JBOD', '0', '1', '2', '5', '6', '1+0', '5+0', '6+0']"},
				{`{"logical_disks": [{"raid_level": "1"}]}`, "RAID config validation error: 'size_gb' is a required property"},
				{`{"logical_disks": [{"size_gb": 1, "raid_level": "1", "is_root_volume": true}, {"size_gb": 1, "raid_level": "1", "is_root_volume": true}]}`,
					"Raid config cannot have more than one root volume. 2 root volumes were specified"},
				{`{"disks": []}`, "RAID config validation error: Additional properties are not allowed ('disks' was unexpected)"},
				{`[1]`, "Schema error for body: [1] is not of type 'object'"},
			} {
				st, out := raidCall(t, base, "1.12", "PUT", "/v1/nodes/"+fake+"/states/raid", tc.body)
				if st != 400 || faultString(t, out) != tc.fault {
					t.Errorf("PUT %s = %d %s, want 400 %q", tc.body, st, out, tc.fault)
				}
			}
			if got := target(fake).(map[string]any); got["logical_disks"] == nil {
				t.Fatalf("a refused target changed the stored one: %v", got)
			}
			st, out := raidCall(t, base, "1.12", "PUT", "/v1/nodes/"+ipmi+"/states/raid", good)
			if st != 400 || faultString(t, out) != "Driver ipmi does not support raid (disabled or not implemented)." {
				t.Errorf("PUT on a no-raid node = %d %s", st, out)
			}
			if st, out := raidCall(t, base, "1.11", "PUT", "/v1/nodes/"+fake+"/states/raid", good); st != 404 {
				t.Errorf("PUT at 1.11 = %d %s, want 404", st, out)
			}
			if st, out := raidCall(t, base, "1.12", "PUT", "/v1/nodes/"+fake+"/states/raid", `{}`); st != 204 {
				t.Fatalf("PUT {} = %d %s", st, out)
			}
			if got := target(fake).(map[string]any); len(got) != 0 {
				t.Fatalf("target after {} = %v", got)
			}

			st, out = raidCall(t, base, "1.12", "GET", "/v1/drivers/ipmi/raid/logical_disk_properties", "")
			var props map[string]string
			if st != 200 || json.Unmarshal([]byte(out), &props) != nil {
				t.Fatalf("logical_disk_properties = %d %s", st, out)
			}
			if len(props) != len(ironwork.RAIDLogicalDiskProperties()) || !strings.HasSuffix(props["raid_level"], "Required.") {
				t.Errorf("logical_disk_properties = %v", props)
			}
			if st, _ := raidCall(t, base, "1.11", "GET", "/v1/drivers/ipmi/raid/logical_disk_properties", ""); st != 406 {
				t.Errorf("logical_disk_properties at 1.11 = %d, want 406", st)
			}
			if st, _ := raidCall(t, base, "1.12", "GET", "/v1/drivers/nosuch/raid/logical_disk_properties", ""); st != 404 {
				t.Errorf("logical_disk_properties of an unknown driver = %d, want 404", st)
			}
		})
	}
}
