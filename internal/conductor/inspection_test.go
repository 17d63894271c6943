package conductor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// ipaInventory is an inventory shaped as ironic-python-agent sends it: a machine with 2
// CPUs, 1536 MiB, a 1 GiB disk (too small for a root disk), 10 and 20 GiB disks, and two NICs
// of which the second booted and sees a switch over LLDP (chassis MAC 00:1c:73:00:00:99, port
// "Ethernet7", system name "leaf-1"); the BMC is at 192.0.2.10.
const ipaInventory = `{
  "interfaces": [
    {"name": "eth0", "mac_address": "52:54:00:12:34:01", "ipv4_address": null, "ipv6_address": null, "has_carrier": true, "lldp": [], "vendor": "0x1af4", "product": "0x0001", "client_id": null, "biosdevname": null, "speed_mbps": null},
    {"name": "eth1", "mac_address": "52:54:00:12:34:02", "ipv4_address": "10.98.0.50", "ipv6_address": null, "has_carrier": true,
     "lldp": [[1, "04001c73000099"], [2, "0545746865726e657437"], [5, "6c6561662d31"]], "vendor": "0x1af4", "product": "0x0001", "client_id": null, "biosdevname": null, "speed_mbps": 1000},
    {"name": "lo", "mac_address": "00:00:00:00:00:00", "ipv4_address": "127.0.0.1", "has_carrier": true, "lldp": []}
  ],
  "cpu": {"model_name": "QEMU Virtual CPU version 2.5+", "frequency": "2400.000", "count": 2, "architecture": "x86_64", "flags": ["fpu", "lm"], "socket_count": 1},
  "disks": [
    {"name": "/dev/sda", "model": "QEMU HARDDISK", "size": 1073741824, "rotational": true, "wwn": null, "serial": "small", "vendor": "ATA", "wwn_with_extension": null, "wwn_vendor_extension": null, "hctl": "0:0:0:0", "by_path": null},
    {"name": "/dev/vda", "model": "", "size": 10737418240, "rotational": true, "wwn": null, "serial": "disk-a", "vendor": "0x1af4", "wwn_with_extension": null, "wwn_vendor_extension": null, "hctl": null, "by_path": "/dev/disk/by-path/pci-0000:00:04.0"},
    {"name": "/dev/vdb", "model": "", "size": 21474836480, "rotational": false, "wwn": null, "serial": "disk-b", "vendor": "0x1af4", "wwn_with_extension": null, "wwn_vendor_extension": null, "hctl": null, "by_path": "/dev/disk/by-path/pci-0000:00:05.0"}
  ],
  "memory": {"total": 1535012864, "physical_mb": 1536},
  "bmc_address": "192.0.2.10",
  "bmc_v6address": "::/0",
  "system_vendor": {"product_name": "Standard PC (Q35 + ICH9, 2009)", "serial_number": "SN-4242", "manufacturer": "QEMU", "firmware": {"vendor": "EDK II", "version": "stable", "build_date": "2023"}},
  "boot": {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:12:34:02"},
  "hostname": "localhost"
}`

// inspectingNode creates a manageable node and sends it to inspection; the recording inspect
// interface waits, so the node rests in "inspect wait" powered on.
func inspectingNode(t *testing.T, e *env, fn func(n *ironwork.Node)) *ironwork.Node {
	t.Helper()
	e.rec.set(func(r *recorder) { r.inspectWait = true })
	n := e.node(t, func(n *ironwork.Node) {
		n.ProvisionState = ironwork.Manageable
		if fn != nil {
			fn(n)
		}
	})
	ok(t, provision(t, e.c, n.UUID, "inspect"))
	e.settled(t, n.UUID, ironwork.InspectWait)
	// The ramdisk runs: the node is on.
	e.rec.set(func(r *recorder) { r.power = ironwork.PowerOn })
	return e.update(t, n.UUID, func(n *ironwork.Node) { n.PowerState = ironwork.PowerOn })
}

// portsOf lists a node's ports as "mac pxe=<bool> <local_link_connection>".
func (e *env) portsOf(t *testing.T, n *ironwork.Node) []string {
	t.Helper()
	ps, err := e.store.PortsOfNode(context.Background(), n.ID)
	ok(t, err)
	var out []string
	for _, p := range ps {
		llc, _ := json.Marshal(p.LocalLinkConnection)
		out = append(out, fmt.Sprintf("%s pxe=%t %s", p.Address, p.PXEEnabled, llc))
	}
	return out
}

func TestInspectionSetsPropertiesPortsAndInventory(t *testing.T) {
	t.Parallel()
	rules := &recordingRules{}
	e := newEnv(t, func(c *conductor.Config) { c.Inspection.Rules = rules })
	n := inspectingNode(t, e, func(n *ironwork.Node) {
		n.Properties = ironwork.JSONObject{"capabilities": "secure_boot:true,boot_mode:bios", "vendor": "kept"}
	})
	res, err := continueInspection(t, e.c, n.UUID, ipaInventory, `{"root_disk": {"name": "/dev/vda"}, "error": null}`)
	ok(t, err)
	if res.UUID != n.UUID {
		t.Fatalf("continue_inspection answered node %q, want %s", res.UUID, n.UUID)
	}
	got := e.settled(t, n.UUID, ironwork.Manageable)
	want := ironwork.JSONObject{"cpus": float64(2), "cpu_arch": "x86_64", "memory_mb": float64(1536), "local_gb": float64(9),
		"capabilities": "boot_mode:uefi,secure_boot:true", "vendor": "kept", "rules": "main"}
	if d := cmp.Diff(want, got.Properties); d != "" {
		t.Errorf("properties (-want +got):\n%s", d)
	}
	if got.PowerState != ironwork.PowerOff || e.rec.hardwarePower() != ironwork.PowerOff {
		t.Errorf("inspected node not powered off: record %q, hardware %q", got.PowerState, e.rec.hardwarePower())
	}
	if got.InspectionFinishedAt == nil || got.InspectionStartedAt == nil {
		t.Errorf("inspection times not recorded: started %v finished %v", got.InspectionStartedAt, got.InspectionFinishedAt)
	}
	if !slices.Contains(e.rec.Calls("boot."), "boot.CleanUpRamdisk") {
		t.Errorf("the ramdisk boot was not removed: %v", e.rec.Calls("boot."))
	}
	// add_ports pxe: only the NIC that booted, with what LLDP says of its switch port.
	wantPorts := []string{`52:54:00:12:34:02 pxe=true {"port_id":"Ethernet7","switch_id":"00:1c:73:00:00:99","switch_info":"leaf-1"}`}
	if d := cmp.Diff(wantPorts, e.portsOf(t, got)); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	inv, err := e.store.GetNodeInventory(context.Background(), got.ID, got.UUID)
	ok(t, err)
	var stored, sent map[string]any
	ok(t, json.Unmarshal(inv.Inventory, &stored))
	ok(t, json.Unmarshal([]byte(ipaInventory), &sent))
	if d := cmp.Diff(sent, stored); d != "" {
		t.Errorf("stored inventory differs from the one sent (-sent +stored):\n%s", d)
	}
	if !strings.Contains(string(inv.PluginData), `"root_disk"`) {
		t.Errorf("plugin data not stored: %s", inv.PluginData)
	}
	if rules.phases() != "main" || rules.sawCPUs != float64(2) {
		t.Errorf("rules ran in phases %q and saw cpus %v; want main once, with the inventory", rules.phases(), rules.sawCPUs)
	}
}

// recordingRules is an InspectionRules that records its calls, sets properties.rules to the
// phase, and fails when fail is set.
type recordingRules struct {
	calls   []string
	sawCPUs any
	fail    error
}

func (r *recordingRules) Apply(_ context.Context, phase string, n *ironwork.Node, inventory, _ map[string]any) error {
	r.calls = append(r.calls, phase)
	if cpu, ok := inventory["cpu"].(map[string]any); ok {
		r.sawCPUs = cpu["count"]
	}
	if r.fail != nil {
		return r.fail
	}
	n.Properties["rules"] = phase
	return nil
}

func (r *recordingRules) phases() string { return strings.Join(r.calls, ",") }

func TestInspectionRootDeviceHintsPickTheDisk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		hints any
		want  float64
	}{
		{"no hints: smallest of at least 4 GiB", nil, 9},
		{"size hint", map[string]any{"size": ">= 15"}, 19},
		{"serial hint", map[string]any{"serial": "disk-b"}, 19},
		{"no disk matches", map[string]any{"serial": "nope"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			n := inspectingNode(t, e, func(n *ironwork.Node) {
				n.Properties = ironwork.JSONObject{}
				if tc.hints != nil {
					n.Properties["root_device"] = tc.hints
				}
			})
			_, err := continueInspection(t, e.c, n.UUID, ipaInventory, "")
			ok(t, err)
			got := e.settled(t, n.UUID, ironwork.Manageable)
			if got.Properties["local_gb"] != tc.want {
				t.Errorf("local_gb %v, want %v", got.Properties["local_gb"], tc.want)
			}
		})
	}
}

func TestInspectionPortPolicies(t *testing.T) {
	t.Parallel()
	const (
		nic1  = "52:54:00:12:34:01"
		nic2  = "52:54:00:12:34:02"
		stale = "52:54:00:99:99:99"
	)
	for _, tc := range []struct {
		add, keep string
		existing  []string
		want      []string // MACs after inspection
	}{
		{"pxe", "all", []string{stale}, []string{nic2, stale}},
		{"active", "all", nil, []string{nic2}},
		{"all", "all", nil, []string{nic1, nic2}},
		{"disabled", "all", []string{stale}, []string{stale}},
		{"all", "present", []string{stale, nic1}, []string{nic1, nic2}},
		{"pxe", "added", []string{stale, nic1}, []string{nic2}},
		{"disabled", "present", []string{stale, nic1}, []string{nic1}},
	} {
		t.Run(tc.add+"/"+tc.keep, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *conductor.Config) { c.Inspection.AddPorts, c.Inspection.KeepPorts = tc.add, tc.keep })
			n := inspectingNode(t, e, nil)
			for _, mac := range tc.existing {
				ok(t, e.store.CreatePort(context.Background(), &ironwork.Port{Address: mac, NodeID: n.ID, NodeUUID: n.UUID, PXEEnabled: true}))
			}
			_, err := continueInspection(t, e.c, n.UUID, ipaInventory, "")
			ok(t, err)
			got := e.settled(t, n.UUID, ironwork.Manageable)
			var macs []string
			for _, p := range e.portsOf(t, got) {
				mac, rest, _ := strings.Cut(p, " ")
				macs = append(macs, mac)
				// The NIC that booted is the only one that network-boots once it is known.
				if wantPXE := mac == nic2 || mac == stale; strings.HasPrefix(rest, "pxe=true") != wantPXE {
					t.Errorf("port %s: %s", mac, rest)
				}
			}
			if d := cmp.Diff(tc.want, macs); d != "" {
				t.Errorf("ports (-want +got):\n%s", d)
			}
		})
	}
}

func TestContinueInspectionRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	idle := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })
	// A node that is not waiting for an inventory is not found, and keeps no inventory.
	_, err := continueInspection(t, e.c, idle.UUID, ipaInventory, "")
	wantCode(t, err, ironwork.ENOTFOUND)
	_, err = e.store.GetNodeInventory(context.Background(), idle.ID, idle.UUID)
	wantCode(t, err, ironwork.ENOTFOUND)
	_, err = continueInspection(t, e.c, "no-such-node", ipaInventory, "")
	wantCode(t, err, ironwork.ENOTFOUND)

	n := inspectingNode(t, e, nil)
	for name, inv := range map[string]string{
		"no inventory":         ``,
		"null":                 `null`,
		"not an object":        `[1, 2]`,
		"cpu count a string":   `{"interfaces": [{"mac_address": "52:54:00:12:34:01"}], "cpu": {"count": "two"}}`,
		"no lookup attributes": `{"interfaces": [{"name": "eth0", "mac_address": "not-a-mac"}], "cpu": {"count": 2}}`,
	} {
		_, err := continueInspection(t, e.c, n.UUID, inv, "")
		if ironwork.ErrorCode(err) != ironwork.EINVALID {
			t.Errorf("%s: got %v, want a 400", name, err)
		}
	}
	_, err = continueInspection(t, e.c, n.UUID, ipaInventory, `[]`)
	wantCode(t, err, ironwork.EINVALID)
	got := e.settled(t, n.UUID, ironwork.InspectWait)
	if _, err := e.store.GetNodeInventory(context.Background(), got.ID, got.UUID); ironwork.ErrorCode(err) != ironwork.ENOTFOUND {
		t.Errorf("a refused inventory was stored: %v", err)
	}

	// Inspection is refused on an active node, as in Ironic.
	active := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
	wantCode(t, provision(t, e.c, active.UUID, "inspect"), ironwork.EINVALID)
	e.settled(t, active.UUID, ironwork.Active)
}

func TestInspectionRulesFailureFailsInspection(t *testing.T) {
	t.Parallel()
	rules := &recordingRules{fail: errors.New("rule \"x\" says no")}
	e := newEnv(t, func(c *conductor.Config) { c.Inspection.Rules = rules })
	n := inspectingNode(t, e, nil)
	_, err := continueInspection(t, e.c, n.UUID, ipaInventory, "")
	ok(t, err)
	got := e.settled(t, n.UUID, ironwork.InspectFailed)
	if !strings.Contains(got.LastError, `rule "x" says no`) || got.PowerState != ironwork.PowerOff {
		t.Errorf("last_error %q, power %q", got.LastError, got.PowerState)
	}
	// Inspect again from inspect failed: allowed, as in Ironic.
	ok(t, provision(t, e.c, n.UUID, "inspect"))
	e.settled(t, n.UUID, ironwork.InspectWait)
}

func TestAbortInInspectWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := inspectingNode(t, e, nil)
	ok(t, provision(t, e.c, n.UUID, "abort"))
	got := e.settled(t, n.UUID, ironwork.InspectFailed)
	if got.PowerState != ironwork.PowerOff || !strings.Contains(got.LastError, "aborted") {
		t.Errorf("after abort: power %q, last_error %q", got.PowerState, got.LastError)
	}
	// The agent's inventory comes too late: not found, nothing changes.
	_, err := continueInspection(t, e.c, n.UUID, ipaInventory, "")
	wantCode(t, err, ironwork.ENOTFOUND)
	e.settled(t, n.UUID, ironwork.InspectFailed)
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	on := func(c *conductor.Config) {
		c.Inspection.Discovery = conductor.DiscoveryConfig{Enabled: true, Driver: "ipmi",
			DriverInfo: map[string]any{"ipmi_username": "admin", "ipmi_password": "secret"}}
	}
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		_, err := discover(t, e.c, ipaInventory)
		wantCode(t, err, ironwork.ENOTFOUND)
	})
	t.Run("enrols once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, on)
		res, err := discover(t, e.c, ipaInventory)
		ok(t, err)
		n := e.get(t, res.UUID)
		if n.ProvisionState != ironwork.Enroll || n.Driver != "ipmi" || n.Name != "discovered-525400123402" {
			t.Errorf("discovered node: state %q driver %q name %q", n.ProvisionState, n.Driver, n.Name)
		}
		wantInfo := ironwork.JSONObject{"ipmi_address": "192.0.2.10", "ipmi_username": "admin", "ipmi_password": "secret"}
		if d := cmp.Diff(wantInfo, n.DriverInfo); d != "" {
			t.Errorf("driver_info (-want +got):\n%s", d)
		}
		if n.Properties["cpus"] != float64(2) || n.Properties["local_gb"] != float64(9) {
			t.Errorf("properties %v", n.Properties)
		}
		if d := cmp.Diff([]string{`52:54:00:12:34:02 pxe=true {"port_id":"Ethernet7","switch_id":"00:1c:73:00:00:99","switch_info":"leaf-1"}`}, e.portsOf(t, n)); d != "" {
			t.Errorf("ports (-want +got):\n%s", d)
		}
		inv, err := e.store.GetNodeInventory(context.Background(), n.ID, n.UUID)
		ok(t, err)
		if !strings.Contains(string(inv.PluginData), `"auto_discovered":true`) {
			t.Errorf("plugin data lacks auto_discovered: %s", inv.PluginData)
		}
		// The same machine again, by its MAC or by its BMC alone: never a second node.
		_, err = discover(t, e.c, ipaInventory)
		wantCode(t, err, ironwork.ECONFLICT)
		bmcOnly := `{"interfaces": [{"name": "eth9", "mac_address": "52:54:00:77:77:77"}], "bmc_address": "192.0.2.10"}`
		_, err = discover(t, e.c, bmcOnly)
		wantCode(t, err, ironwork.ECONFLICT)
		nodes, err := e.store.ListNodes(context.Background(), sqlstore.NodeFilter{}, sqlstore.Page{})
		ok(t, err)
		if len(nodes) != 1 {
			t.Errorf("%d nodes after discovering one machine three times", len(nodes))
		}
	})
	t.Run("rules", func(t *testing.T) {
		t.Parallel()
		rules := &recordingRules{}
		e := newEnv(t, on, func(c *conductor.Config) { c.Inspection.Rules = rules })
		res, err := discover(t, e.c, ipaInventory)
		ok(t, err)
		if n := e.get(t, res.UUID); n.Properties["rules"] != "main" || n.ProvisionState != ironwork.Enroll || rules.phases() != "main" {
			t.Errorf("rules on a discovered node: properties %v, state %q, phases %q", n.Properties, n.ProvisionState, rules.phases())
		}
		rules.fail = errors.New("refused by a rule")
		other := strings.ReplaceAll(strings.ReplaceAll(ipaInventory, "52:54:00:12:34", "52:54:00:12:99"), "192.0.2.10", "192.0.2.11")
		_, err = discover(t, e.c, other)
		if err == nil || !strings.Contains(err.Error(), "refused by a rule") {
			t.Fatalf("discovery refused by a rule: %v", err)
		}
		nodes, err := e.store.ListNodes(context.Background(), sqlstore.NodeFilter{}, sqlstore.Page{})
		ok(t, err)
		if len(nodes) != 1 {
			t.Errorf("%d nodes: a discovery a rule refused left its node behind", len(nodes))
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, on)
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				_, err := discover(t, e.c, ipaInventory)
				errs <- err
			}()
		}
		enrolled := 0
		for range 8 {
			if err := <-errs; err == nil {
				enrolled++
			} else if ironwork.ErrorCode(err) != ironwork.ECONFLICT {
				t.Errorf("discovery: %v", err)
			}
		}
		if enrolled != 1 {
			t.Errorf("%d of 8 concurrent discoveries of one machine enrolled it", enrolled)
		}
	})
}
