package lab_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
)

// checkLabInspection inspects n, a lab machine of the shape (2 vCPUs, 1536 MiB, disks
// of 8 and 4 GiB, two NICs, SeaBIOS, IPMI) in band, through the whole server: the conductor
// boots the deploy ramdisk with ipa-inspection-callback-url, the agent posts its inventory to
// continue_inspection and powers off, and the node returns to manageable with its
// properties, inventory and ports exactly right. The node is enrolled as `ironwork lab up
// --inspect` does (lab.NodeSpec.Inspect: no properties, inspect_interface agent). It skips when
// the server has no `agent` inspect interface. (It rides on TestLabConsoleAndInspection's lab.)
func checkLabInspection(ctx context.Context, t testing.TB, st *lab.State, n lab.Node) {
	c := st.Client()
	var drv map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/drivers/ipmi", nil, &drv); err != nil {
		t.Fatal(err)
	}
	if ifs, _ := drv["enabled_inspect_interfaces"].([]any); !slices.Contains(ifs, any("agent")) {
		t.Skipf("the server has no agent inspect interface (enabled: %v): the server side of inspection is not on this branch", ifs)
	}
	var enrolled map[string]any // lab.Options.Inspect: what `ironwork lab up --inspect` enrols
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID, nil, &enrolled); err != nil {
		t.Fatal(err)
	}
	if p, _ := enrolled["properties"].(map[string]any); len(p) != 0 || enrolled["inspect_interface"] != "agent" {
		t.Fatalf("enrolled with properties %v and inspect_interface %v: want none and agent", enrolled["properties"], enrolled["inspect_interface"])
	}
	phase := time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "manage", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.WaitState(ctx, c, n.UUID, "manageable", time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("manage: %.1f s", time.Since(phase).Seconds())
	phase = time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "inspect", nil); err != nil {
		t.Fatal(err)
	}
	node, err := lab.WaitState(ctx, c, n.UUID, "manageable", 10*time.Minute, func(p lab.Progress) {
		t.Logf("%6.1f s: %s", time.Since(phase).Seconds(), p.State)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("inspect (power on, PXE, ramdisk, inventory, power off): %.1f s", time.Since(phase).Seconds())

	props, _ := node["properties"].(map[string]any)
	num := func(k string) float64 { // Ironic's properties may be numbers or strings
		switch v := props[k].(type) {
		case float64:
			return v
		case string:
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
		return -1
	}
	if num("cpus") != 2 || num("memory_mb") != 1536 || num("local_gb") != 3 || props["cpu_arch"] != "x86_64" ||
		!strings.Contains(fmt.Sprint(props["capabilities"]), "boot_mode:bios") {
		t.Errorf("properties %v: want cpus 2, memory_mb 1536, local_gb 3 (the 4 GiB disk less 1), cpu_arch x86_64, boot_mode:bios", props)
	}
	if node["power_state"] != "power off" {
		t.Errorf("power state %v after inspection", node["power_state"])
	}
	var inv struct {
		Inventory struct {
			Disks []struct {
				Name string
				Size int64
			}
			Interfaces []struct {
				MACAddress string `json:"mac_address"`
			}
		}
		PluginData map[string]any `json:"plugin_data"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID+"/inventory", nil, &inv); err != nil {
		t.Fatal(err)
	}
	var macs []string
	for _, i := range inv.Inventory.Interfaces {
		macs = append(macs, i.MACAddress)
	}
	slices.Sort(macs)
	want := slices.Sorted(slices.Values(n.MACs))
	if len(inv.Inventory.Disks) != 2 || inv.Inventory.Disks[0].Size != 8<<30 || inv.Inventory.Disks[1].Size != 4<<30 || !slices.Equal(macs, want) {
		t.Errorf("inventory: disks %+v, MACs %v (want %v)", inv.Inventory.Disks, macs, want)
	}
	if inv.PluginData["boot_interface"] != n.MAC {
		t.Errorf("plugin data boot_interface %v, want %s", inv.PluginData["boot_interface"], n.MAC)
	}
	var ports struct{ Ports []map[string]any }
	if err := c.Do(ctx, http.MethodGet, "/v1/ports?node="+n.UUID, nil, &ports); err != nil {
		t.Fatal(err)
	}
	if len(ports.Ports) != 1 || ports.Ports[0]["address"] != n.MAC {
		t.Errorf("ports %v: want the PXE port only (add_ports pxe)", ports.Ports)
	}
}
