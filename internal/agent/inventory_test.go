package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestCollectInventoryFakeTree(t *testing.T) {
	root := fakeSys(t)
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cpuinfo strings.Builder
	for i := 0; i < 4; i++ { // two sockets of two
		fmt.Fprintf(&cpuinfo, "processor\t: %d\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\n"+
			"cpu MHz\t\t: 2100.000\nphysical id\t: %d\nflags\t\t: fpu vme sse2 vmx\n\n", i, i/2)
	}
	write("proc/cpuinfo", cpuinfo.String())
	write("proc/meminfo", "MemTotal:       16303120 kB\nMemFree:  1 kB\n")
	write("sys/devices/system/memory/block_size_bytes", "8000000\n")
	for _, m := range []string{"memory0", "memory1", "memory2", "memory3"} {
		write("sys/devices/system/memory/"+m+"/online", "1\n")
	}
	write("sys/devices/system/memory/memory4/online", "0\n")
	write("sys/class/dmi/id/sys_vendor", "Dell Inc.\n")
	write("sys/class/dmi/id/product_name", "PowerEdge R640\n")
	write("sys/class/dmi/id/product_serial", "ABC1234\n")
	write("sys/class/dmi/id/bios_vendor", "Dell Inc.\n")
	write("sys/class/dmi/id/bios_version", "2.17.1\n")
	write("sys/class/dmi/id/bios_date", "10/11/2022\n")
	write("sys/firmware/efi/systab", "x\n")
	nic := func(name, mac, typ, carrier, speed string, dev bool) {
		write("sys/class/net/"+name+"/address", mac+"\n")
		write("sys/class/net/"+name+"/type", typ+"\n")
		write("sys/class/net/"+name+"/carrier", carrier+"\n")
		write("sys/class/net/"+name+"/speed", speed+"\n")
		if dev {
			write("sys/class/net/"+name+"/device/vendor", "0x8086\n")
			write("sys/class/net/"+name+"/device/device", "0x1572\n")
		}
	}
	nic("eno1", "3C:FD:FE:00:00:01", "1", "1", "10000", true)
	nic("eno2", "3c:fd:fe:00:00:02", "1", "0", "-1", true)
	nic("lo", "00:00:00:00:00:00", "772", "1", "", false)
	nic("br0", "3c:fd:fe:00:00:01", "1", "1", "", false) // virtual: no device

	inv, err := CollectInventory(InventoryOptions{SysRoot: root, BootMAC: "3C:FD:FE:00:00:01"})
	if err != nil {
		t.Fatal(err)
	}
	wantCPU := InventoryCPU{ModelName: "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", Frequency: "2100.000", Count: 4,
		Architecture: inv.CPU.Architecture, Flags: []string{"fpu", "vme", "sse2", "vmx"}, SocketCount: 2}
	if d := cmp.Diff(wantCPU, inv.CPU); d != "" {
		t.Errorf("cpu (-want +got):\n%s", d)
	}
	if inv.Memory != (InventoryMemory{Total: 16303120 * 1024, PhysicalMB: 4 * 128}) {
		t.Errorf("memory %+v", inv.Memory)
	}
	wantSys := InventorySystem{ProductName: "PowerEdge R640", SerialNumber: "ABC1234", Manufacturer: "Dell Inc.",
		Firmware: InventoryFirmware{Vendor: "Dell Inc.", Version: "2.17.1", BuildDate: "10/11/2022"}}
	if d := cmp.Diff(wantSys, inv.SystemVendor); d != "" {
		t.Errorf("system (-want +got):\n%s", d)
	}
	if inv.Boot.CurrentBootMode != "uefi" || inv.Boot.PXEInterface == nil || *inv.Boot.PXEInterface != "3c:fd:fe:00:00:01" {
		t.Errorf("boot %+v", inv.Boot)
	}
	if len(inv.Interfaces) != 2 || inv.Interfaces[0].Name != "eno1" || inv.Interfaces[0].MACAddress != "3c:fd:fe:00:00:01" ||
		!inv.Interfaces[0].HasCarrier || *inv.Interfaces[0].SpeedMbps != 10000 || *inv.Interfaces[0].Vendor != "0x8086" ||
		inv.Interfaces[1].HasCarrier || inv.Interfaces[1].SpeedMbps != nil {
		b, _ := json.Marshal(inv.Interfaces)
		t.Errorf("interfaces %s", b)
	}
	names := map[string]bool{}
	for _, d := range inv.Disks {
		names[d.Name] = true
	}
	if len(inv.Disks) != 3 || !names["/dev/sda"] || !names["/dev/vda"] || !names["/dev/nvme0n1"] {
		t.Errorf("disks %v", names)
	}
	// IPA's key names, nulls where IPA has None.
	raw, _ := json.Marshal(inv)
	var generic map[string]any
	json.Unmarshal(raw, &generic)
	for _, key := range []string{"interfaces", "cpu", "disks", "memory", "bmc_address", "system_vendor", "boot"} {
		if _, ok := generic[key]; !ok {
			t.Errorf("inventory lacks %q: %s", key, raw)
		}
	}
	disk0 := generic["disks"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "model", "size", "rotational", "wwn", "serial", "vendor", "wwn_with_extension", "wwn_vendor_extension", "hctl", "by_path"} {
		if _, ok := disk0[key]; !ok {
			t.Errorf("disk lacks %q", key)
		}
	}
}

// TestCollectInventoryHost reads this machine: CPUs and memory as the kernel reports them,
// the NICs net.Interfaces knows that have a device.
func TestCollectInventoryHost(t *testing.T) {
	inv, err := CollectInventory(InventoryOptions{SysRoot: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPU.Count == 0 || inv.Memory.Total == 0 || inv.Memory.PhysicalMB == 0 {
		t.Errorf("cpu %+v memory %+v", inv.CPU, inv.Memory)
	}
	ifs, _ := net.Interfaces()
	macs := map[string]bool{}
	for _, ifc := range ifs {
		macs[ifc.HardwareAddr.String()] = true
	}
	for _, n := range inv.Interfaces {
		if !macs[n.MACAddress] {
			t.Errorf("interface %s MAC %s unknown to net.Interfaces", n.Name, n.MACAddress)
		}
	}
}

// TestInventoryBounds: a machine reporting absurd amounts is cut to the inventory's bounds,
// strings at a rune boundary.
func TestInventoryBounds(t *testing.T) {
	root := fakeSys(t)
	long := strings.Repeat("é", 400)
	var cpuinfo strings.Builder
	fmt.Fprintf(&cpuinfo, "processor\t: 0\nmodel name\t: %s\nflags\t\t: %s\n", long, strings.Repeat("f ", 2000))
	for rel, content := range map[string]string{"proc/cpuinfo": cpuinfo.String(), "sys/class/dmi/id/product_name": long} {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < maxInventoryNICs+5; i++ {
		d := filepath.Join(root, fmt.Sprintf("sys/class/net/eth%03d", i))
		os.MkdirAll(filepath.Join(d, "device"), 0o755)
		os.WriteFile(filepath.Join(d, "address"), []byte(fmt.Sprintf("52:54:00:00:%02x:%02x\n", i/256, i%256)), 0o644)
		os.WriteFile(filepath.Join(d, "type"), []byte("1\n"), 0o644)
	}
	inv, err := CollectInventory(InventoryOptions{SysRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Interfaces) != maxInventoryNICs || len(inv.CPU.Flags) != maxCPUFlags {
		t.Errorf("%d interfaces, %d flags", len(inv.Interfaces), len(inv.CPU.Flags))
	}
	for _, s := range []string{inv.CPU.ModelName, inv.SystemVendor.ProductName} {
		if len(s) > maxInventoryText || !utf8.ValidString(s) || !strings.HasPrefix(long, s) {
			t.Errorf("%d bytes, valid %v", len(s), utf8.ValidString(s))
		}
	}
	inv.AddLLDP(map[string][]LLDPTLV{"eth000": {{Type: 5, Value: []byte("sw")}}})
	b, _ := json.Marshal(inv.Interfaces[:2])
	if !strings.Contains(string(b), `"lldp":[[5,"7377"]]`) || !strings.Contains(string(b), `"lldp":[]`) {
		t.Errorf("lldp in JSON: %s", b)
	}
}
