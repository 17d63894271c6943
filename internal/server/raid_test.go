package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
	"github.com/ironwork/ironwork/internal/vbmc"
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
			// The agent raid interface (software RAID): IPA's rules, all named at once.
			sw := create(`{"name": "raid-agent", "driver": "ipmi", "raid_interface": "agent", "driver_info": {"ipmi_address": "127.0.0.1"}}`)
			if st, out := raidCall(t, base, "1.12", "PUT", "/v1/nodes/"+sw+"/states/raid", good); st != 204 {
				t.Errorf("PUT a software mirror on an agent raid node = %d %s", st, out)
			}
			for _, tc := range []struct{ body, fault string }{
				{`{"logical_disks": [{"size_gb": "MAX", "raid_level": "0", "controller": "software"}]}`,
					"Software RAID Configuration requires RAID-1 for the first logical disk"},
				{`{"logical_disks": [{"size_gb": 10, "raid_level": "1"}, {"size_gb": "MAX", "raid_level": "5", "controller": "software"}]}`,
					"Software RAID configuration requires all logical disks to have 'controller'='software' (logical disk 0 has ''); " +
						"Software RAID configuration does not support RAID level 5 (logical disk 1; supported: 0, 1)"},
				{`{"logical_disks": [{"size_gb": "MAX", "raid_level": "1", "controller": "software"}, {"size_gb": "MAX", "raid_level": "0", "controller": "software"}]}`,
					"Software RAID can have only one RAID device with size 'MAX'"},
				{`{"logical_disks": [{"size_gb": "MAX", "raid_level": "1", "controller": "software", "physical_disks": ["/dev/sda", "/dev/sdb"]}]}`,
					"The physical_disks parameter for software RAID must be a list of at least 2 device hints (dictionaries) (logical disk 0)"},
			} {
				st, out := raidCall(t, base, "1.12", "PUT", "/v1/nodes/"+sw+"/states/raid", tc.body)
				if st != 400 || faultString(t, out) != tc.fault {
					t.Errorf("PUT %s on an agent raid node = %d %s, want 400 %q", tc.body, st, out, tc.fault)
				}
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

// TestRedfishRAIDAgainstTheVBMC builds and deletes RAID volumes through the redfish raid
// interface on an in-process `ironwork vbmc` (a dummy machine with three disk files, no QEMU):
// manual cleaning with raid.create_configuration creates a RAID-1 root volume and a RAID-0 "MAX"
// volume, which the BMC then reports, and fills raid_config, local_gb and the raid_level
// capability; a configuration that does not fit the drives fails the step before any volume
// is created or deleted; raid.delete_configuration deletes them all and clears raid_config.
func TestRedfishRAIDAgainstTheVBMC(t *testing.T) {
	dir := t.TempDir()
	cmd := []string{"sh", "-c", "exec sleep 300", "vm"}
	for i, size := range []int64{4 << 30, 4 << 30, 2 << 30} {
		p := filepath.Join(dir, fmt.Sprintf("disk%d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		cmd = append(cmd, "-drive", "file="+p+",if=virtio,format=raw")
	}
	const password = "Raid-S3cret-pw"
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: password, RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{{Name: "vm1", Command: cmd}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stopVBMC := context.WithCancel(context.Background())
	go v.Serve(vctx)
	defer func() { stopVBMC(); v.Close() }()
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "ironwork.db"))
	base := srv.URL()
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		st, out := raidCall(t, base, "1.87", method, path, body)
		var m map[string]any
		_ = json.Unmarshal([]byte(out), &m)
		if st >= 300 && m["error_message"] == nil {
			t.Fatalf("%s %s: %d %s", method, path, st, out)
		}
		return st, m
	}
	info, _ := json.Marshal(map[string]any{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
		"redfish_username": "admin", "redfish_password": password})
	st, n := call("POST", "/v1/nodes", `{"name": "rf-raid", "driver": "redfish", "raid_interface": "redfish", "driver_info": `+string(info)+`}`)
	if st != 201 {
		t.Fatalf("create: %d %v", st, n)
	}
	uuid := n["uuid"].(string)
	settle := func(want string) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			_, n := call("GET", "/v1/nodes/"+uuid, "")
			if n["provision_state"] == want && (n["target_provision_state"] == nil || strings.HasSuffix(want, "failed")) {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("node is %v (target %v, last_error %v), want %s", n["provision_state"], n["target_provision_state"], n["last_error"], want)
			}
		}
	}
	if st, n := call("PUT", "/v1/nodes/"+uuid+"/states/provision", `{"target": "manage"}`); st != 202 {
		t.Fatalf("manage: %d %v", st, n)
	}
	settle("manageable")
	volumes := func() []map[string]any {
		t.Helper()
		var coll struct {
			Members []struct {
				ID string `json:"@odata.id"`
			}
		}
		redfishGet(t, v.RedfishURL+"/redfish/v1/Systems/vm1/Storage/0/Volumes", password, &coll)
		var out []map[string]any
		for _, m := range coll.Members {
			var vol map[string]any
			redfishGet(t, v.RedfishURL+m.ID, password, &vol)
			out = append(out, vol)
		}
		return out
	}
	clean := func(step, args string) {
		t.Helper()
		body := `{"target": "clean", "clean_steps": [{"interface": "raid", "step": "` + step + `", "args": ` + args + `}]}`
		if st, n := call("PUT", "/v1/nodes/"+uuid+"/states/provision", body); st != 202 {
			t.Fatalf("clean %s: %d %v", step, st, n)
		}
	}

	st, n = call("PUT", "/v1/nodes/"+uuid+"/states/raid", `{"logical_disks": [{"size_gb": 3, "raid_level": "1", "controller": "software"}]}`)
	if st != 400 || !strings.Contains(faultOfMap(t, n), "use the agent raid interface") {
		t.Fatalf("software RAID on the redfish raid interface: %d %v", st, n)
	}
	target := `{"logical_disks": [{"size_gb": 3, "raid_level": "1", "is_root_volume": true, "volume_name": "root"},
		{"size_gb": "MAX", "raid_level": "0"}]}`
	if st, n := call("PUT", "/v1/nodes/"+uuid+"/states/raid", target); st != 204 {
		t.Fatalf("PUT target: %d %v", st, n)
	}
	start := time.Now()
	clean("create_configuration", "{}")
	n = settle("manageable")
	t.Logf("create_configuration (2 volumes) took %v", time.Since(start).Round(time.Millisecond))
	if n["last_error"] != nil {
		t.Fatalf("last_error %v", n["last_error"])
	}
	got := volumes()
	if len(got) != 2 || got[0]["RAIDType"] != "RAID1" || got[0]["Name"] != "root" || got[0]["CapacityBytes"] != float64(3<<30) ||
		got[1]["RAIDType"] != "RAID0" || got[1]["CapacityBytes"] != float64(2<<30) {
		t.Fatalf("volumes on the BMC: %v", got)
	}
	rc, _ := n["raid_config"].(map[string]any)
	lds, _ := rc["logical_disks"].([]any)
	if len(lds) != 2 || lds[0].(map[string]any)["size_gb"] != 3.0 || lds[1].(map[string]any)["size_gb"] != 2.0 || rc["last_updated"] == nil {
		t.Fatalf("raid_config = %v", n["raid_config"])
	}
	props := n["properties"].(map[string]any)
	if props["local_gb"] != 3.0 || !strings.Contains(fmt.Sprint(props["capabilities"]), "raid_level:1") {
		t.Fatalf("properties = %v", props)
	}

	// A mirror of 100 GiB does not fit 4 GiB drives: the step fails, the BMC keeps its volumes.
	if st, n := call("PUT", "/v1/nodes/"+uuid+"/states/raid", `{"logical_disks": [{"size_gb": 100, "raid_level": "1"}]}`); st != 204 {
		t.Fatalf("PUT target: %d %v", st, n)
	}
	// Without delete_existing, the drives of the volumes there are not free.
	clean("create_configuration", "{}")
	n = settle("clean failed")
	if le := fmt.Sprint(n["last_error"]); !strings.Contains(le, "has 0 free drives that match (3 of its 3 drives are in volumes that stay") {
		t.Fatalf("last_error = %s", le)
	}
	if st, n := call("PUT", "/v1/nodes/"+uuid+"/states/provision", `{"target": "manage"}`); st != 202 {
		t.Fatalf("manage: %d %v", st, n)
	}
	settle("manageable")
	// With it, the plan counts them free, finds the mirror too big and deletes nothing.
	clean("create_configuration", `{"delete_existing": true}`)
	n = settle("clean failed")
	if le := fmt.Sprint(n["last_error"]); !strings.Contains(le, "RAID 1 over 2 of its free drives holds at most 4 GiB") {
		t.Fatalf("last_error = %s", le)
	}
	if got := volumes(); len(got) != 2 {
		t.Fatalf("a configuration that does not fit changed the volumes: %v", got)
	}
	if st, n := call("PUT", "/v1/nodes/"+uuid+"/states/provision", `{"target": "manage"}`); st != 202 {
		t.Fatalf("manage: %d %v", st, n)
	}
	settle("manageable")

	// Out of band: with disable_ramdisk (1.70) the step runs the same, never booting the node.
	body := `{"target": "clean", "disable_ramdisk": true, "clean_steps": [{"interface": "raid", "step": "delete_configuration"}]}`
	if st, n := call("PUT", "/v1/nodes/"+uuid+"/states/provision", body); st != 202 {
		t.Fatalf("clean delete_configuration with disable_ramdisk: %d %v", st, n)
	}
	n = settle("manageable")
	if v.Machine("vm1").On() {
		t.Error("an out-of-band RAID clean powered the machine on")
	}
	if got := volumes(); len(got) != 0 {
		t.Fatalf("volumes after delete_configuration: %v", got)
	}
	if rc := n["raid_config"].(map[string]any); len(rc) != 0 {
		t.Fatalf("raid_config after delete_configuration = %v", rc)
	}
}

func faultOfMap(t *testing.T, m map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(m)
	return faultString(t, string(b))
}

func redfishGet(t *testing.T, url, password string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("admin", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
