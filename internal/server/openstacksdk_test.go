package server_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// novaFlow is the sequence of baremetal calls Nova's Ironic driver makes through openstacksdk
// for one instance, on a fake-hardware node: enrol and clean it, validate, attach a VIF, set
// the instance's fields, deploy with a config drive given as a dict (Ironwork builds the ISO),
// power it off and on, put it in and out of maintenance, list nodes with fields as the
// resource tracker does, detach the VIF and tear it down. openstacksdk negotiates the
// microversion and does the waiting itself. It prints what it saw as one JSON object.
const novaFlow = `
import json, sys, time, openstack
conn = openstack.connect(auth_type="none", baremetal_endpoint_override=sys.argv[1] + "/v1", baremetal_api_version="1")
bm = conn.baremetal
node = bm.create_node(name="nova-1", driver="fake-hardware", resource_class="baremetal",
                      properties={"cpus": 4, "memory_mb": 4096, "local_gb": 20, "cpu_arch": "x86_64"})
bm.create_port(node_uuid=node.id, address="52:54:00:aa:bb:01", pxe_enabled=True)
node = bm.set_node_provision_state(node, "manage", wait=True, timeout=60)
node = bm.set_node_provision_state(node, "provide", wait=True, timeout=60)
v = bm.validate_node(node, required=("boot", "deploy", "power"))
vif = "0f0e0d0c-0000-4000-8000-000000000001"
bm.attach_vif_to_node(node, vif)
vifs = bm.list_node_vifs(node)
instance = "11111111-2222-4333-8444-555555555555"
node = bm.update_node(node, instance_info={"image_source": "http://192.0.2.1/image.raw", "root_gb": 10}, instance_id=instance)
cd = {"meta_data": {"uuid": instance, "hostname": "vm-1"}, "user_data": "#cloud-config\n"}
node = bm.set_node_provision_state(node, "active", config_drive=cd, wait=True, timeout=120)
active = bm.get_node(node.id)
bm.set_node_power_state(node, "power off", wait=True, timeout=60)
off = bm.get_node(node.id).power_state
bm.set_node_power_state(node, "power on", wait=True, timeout=60)
bm.set_node_maintenance(node, reason="nova test")
maint = bm.get_node(node.id)
bm.unset_node_maintenance(node)
listed = [(n.id, n.provision_state, n.instance_id) for n in bm.nodes(fields=["uuid", "provision_state", "instance_uuid"])]
bm.detach_vif_from_node(node, vif)
node = bm.set_node_provision_state(node, "deleted", wait=True, timeout=120)
after = bm.get_node(node.id)
print(json.dumps({
    "validate": {k: bool(v[k].result) for k in ("boot", "deploy", "power")},
    "vifs": list(vifs), "state": active.provision_state, "instance": active.instance_id,
    "configdrive": (active.instance_info or {}).get("configdrive"), "power_off": off,
    "maintenance": [maint.is_maintenance, maint.maintenance_reason], "listed": listed,
    "after": [after.provision_state, after.instance_id, after.instance_info or {}, bm.list_node_vifs(node)],
    "id": node.id}))
`

// TestOpenstacksdkNovaFlow runs the calls Nova's driver makes, through the real openstacksdk
// (Debian's python3-openstacksdk, installed with python3-ironicclient by scripts/deps.sh).
func TestOpenstacksdkNovaFlow(t *testing.T) {
	t.Parallel()
	// Debian's package is the system interpreter's; a pyenv python3 on PATH may not have it.
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import openstack").Run(); err != nil {
		t.Skip("openstacksdk is not installed for /usr/bin/python3 (Debian package python3-openstacksdk; scripts/deps.sh installs it)")
	}
	srv := startServer(t, "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"))
	start := time.Now()
	out, err := exec.Command(py, "-c", novaFlow, srv.URL()).CombinedOutput()
	if err != nil {
		t.Fatalf("openstacksdk: %v\n%s", err, out)
	}
	t.Logf("the flow through openstacksdk took %v", time.Since(start).Round(time.Millisecond))
	var got struct {
		Validate    map[string]bool
		VIFs        []string
		State       string
		Instance    string
		Configdrive any
		PowerOff    string `json:"power_off"`
		Maintenance []any
		Listed      [][]any
		After       []any
		ID          string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("openstacksdk output: %v\n%s", err, out)
	}
	const instance = "11111111-2222-4333-8444-555555555555"
	for _, k := range []string{"boot", "deploy", "power"} {
		if !got.Validate[k] {
			t.Errorf("validate %s: false", k)
		}
	}
	if len(got.VIFs) != 1 || got.VIFs[0] != "0f0e0d0c-0000-4000-8000-000000000001" {
		t.Errorf("VIFs after attach: %v", got.VIFs)
	}
	if got.State != "active" || got.Instance != instance {
		t.Errorf("after deploy: state %q instance %q", got.State, got.Instance)
	}
	// The config drive was kept for the deploy and is masked in the API, as Ironic does.
	if got.Configdrive != "******" {
		t.Errorf("instance_info.configdrive while active: %v, want it masked", got.Configdrive)
	}
	if got.PowerOff != "power off" {
		t.Errorf("power state after power off: %q", got.PowerOff)
	}
	if len(got.Maintenance) != 2 || got.Maintenance[0] != true || got.Maintenance[1] != "nova test" {
		t.Errorf("maintenance: %v", got.Maintenance)
	}
	if len(got.Listed) != 1 || got.Listed[0][0] != got.ID || got.Listed[0][1] != "active" || got.Listed[0][2] != instance {
		t.Errorf("node list with fields: %v", got.Listed)
	}
	if len(got.After) != 4 || got.After[0] != "available" || got.After[1] != nil {
		t.Fatalf("after tear-down: %v", got.After)
	}
	if info, _ := got.After[2].(map[string]any); len(info) != 0 {
		t.Errorf("instance_info after tear-down: %v", info)
	}
	if vifs, _ := got.After[3].([]any); len(vifs) != 0 {
		t.Errorf("VIFs after detach: %v", vifs)
	}
}
