package agent

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestInventoryGoldenQEMU reads testdata/sysroot-qemu, the /proc and /sys of a QEMU machine
// as the lab makes them (2 vCPUs, 1536 MiB, disks of 8 and 4 GiB, two virtio NICs, OVMF),
// and compares the inventory JSON with testdata/inventory-qemu.json (go test -update
// rewrites it).
func TestInventoryGoldenQEMU(t *testing.T) {
	inv, err := CollectInventory(InventoryOptions{SysRoot: "testdata/sysroot-qemu", BootMAC: "52:54:00:1A:01:01"})
	if err != nil {
		t.Fatal(err)
	}
	inv.CPU.Architecture = "x86_64" // the fixture's, whatever this host is
	got, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "inventory-qemu.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var w, g any
	json.Unmarshal(want, &w)
	json.Unmarshal(got, &g)
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("inventory (-golden +got):\n%s", d)
	}
	if inv.CPU.Count != 2 || inv.Memory.PhysicalMB != 1536 || len(inv.Disks) != 2 || len(inv.Interfaces) != 2 ||
		inv.Disks[0].Size != 8<<30 || inv.Disks[1].Size != 4<<30 || inv.Boot.CurrentBootMode != "uefi" {
		t.Errorf("cpus %d, memory %d MiB, disks %+v, %d interfaces, boot %s", inv.CPU.Count, inv.Memory.PhysicalMB,
			inv.Disks, len(inv.Interfaces), inv.Boot.CurrentBootMode)
	}
}
