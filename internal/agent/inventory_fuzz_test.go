package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzInventory feeds arbitrary /proc and /sys contents to CollectInventory: whatever a
// machine's kernel or firmware reports, the inventory must come out whole, with no negative
// sizes or counts, and encode to JSON the conductor can read back.
func FuzzInventory(f *testing.F) {
	f.Add("processor\t: 0\nmodel name\t: Xeon\ncpu MHz\t\t: 2100.000\nphysical id\t: 0\nflags\t\t: fpu sse2\n",
		"MemTotal:       16303120 kB\n", "8000000", "1", "PowerEdge R640", "52:54:00:12:34:56", "1000", "20971520")
	f.Add("processor:\nprocessor:\nphysical id: x\nphysical id: y\n", "MemTotal: 9223372036854775807 kB\n",
		"7fffffffffffffff", "1", "\xff\xfe", "52:54:00:12:34:5", "-1", "18446744073709551615")
	f.Add("", "MemTotal:\n", "zz", "0", "", "", "", "")
	f.Fuzz(func(t *testing.T, cpuinfo, meminfo, blockSize, online, product, mac, speed, diskSectors string) {
		root := t.TempDir()
		write := func(rel, content string) {
			p := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("proc/cpuinfo", cpuinfo)
		write("proc/meminfo", meminfo)
		write("sys/devices/system/memory/block_size_bytes", blockSize)
		write("sys/devices/system/memory/memory0/online", online)
		write("sys/devices/system/memory/memory1/online", online)
		write("sys/class/dmi/id/product_name", product)
		write("sys/class/net/eth0/address", mac)
		write("sys/class/net/eth0/type", "1")
		write("sys/class/net/eth0/speed", speed)
		write("sys/class/net/eth0/device/vendor", "0x1af4")
		write("sys/block/vda/size", diskSectors)
		write("sys/block/vda/queue/rotational", "0")
		write("sys/block/vda/removable", "0")
		write("sys/block/vda/ro", "0")

		inv, err := CollectInventory(InventoryOptions{SysRoot: root, BootMAC: mac})
		if err != nil {
			return // an unreadable disk list is the one reported error
		}
		if inv.CPU.Count < 0 || inv.CPU.SocketCount < 0 || inv.CPU.SocketCount > inv.CPU.Count && inv.CPU.Count > 0 {
			t.Fatalf("cpu count %d, sockets %d", inv.CPU.Count, inv.CPU.SocketCount)
		}
		if want := processorLines(cpuinfo); inv.CPU.Count != want {
			t.Fatalf("cpu count %d, want %d processor lines", inv.CPU.Count, want)
		}
		if inv.Memory.Total < 0 || inv.Memory.PhysicalMB < 0 {
			t.Fatalf("negative memory: total %d, physical_mb %d", inv.Memory.Total, inv.Memory.PhysicalMB)
		}
		for _, d := range inv.Disks {
			if d.Size < 0 {
				t.Fatalf("disk %s has negative size %d", d.Name, d.Size)
			}
		}
		for _, n := range inv.Interfaces {
			if n.SpeedMbps != nil && *n.SpeedMbps <= 0 {
				t.Fatalf("interface %s speed %d", n.Name, *n.SpeedMbps)
			}
		}
		b, err := json.Marshal(inv)
		if err != nil {
			t.Fatalf("marshal inventory: %v", err)
		}
		var back map[string]any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("inventory JSON does not read back: %v\n%s", err, b)
		}
	})
}

func processorLines(cpuinfo string) int {
	n := 0
	for _, line := range strings.Split(cpuinfo, "\n") {
		if key, _, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "processor" {
			n++
		}
	}
	return n
}
