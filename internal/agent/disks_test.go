package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeSys writes a sysfs-shaped tree; real sysfs cannot be faked otherwise.
func fakeSys(t *testing.T) string {
	t.Helper()
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
	link := func(target, rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	disk := func(name string, sectors, rot, rem, ro string) {
		write("sys/block/"+name+"/size", sectors+"\n")
		write("sys/block/"+name+"/queue/rotational", rot+"\n")
		write("sys/block/"+name+"/removable", rem+"\n")
		write("sys/block/"+name+"/ro", ro+"\n")
	}
	// sda: SCSI disk with VPD serial and NAA type 6 WWID.
	disk("sda", "1953525168", "1", "0", "0")
	write("devices/pci0000:00/host0/target0:0:0/0:0:0:0/model", "ST1000NM0033    \n")
	write("devices/pci0000:00/host0/target0:0:0/0:0:0:0/vendor", "ATA     \n")
	write("devices/pci0000:00/host0/target0:0:0/0:0:0:0/wwid", "naa.600508b1001c7e1a5b4d3e2f1a0b9c8d\n")
	write("devices/pci0000:00/host0/target0:0:0/0:0:0:0/vpd_pg80", "\x00\x80\x00\x0aZ1W2X3Y4  ")
	link("../../../devices/pci0000:00/host0/target0:0:0/0:0:0:0", "sys/block/sda/device")
	// vda: virtio with a serial file next to size.
	disk("vda", "20971520", "0", "0", "0")
	write("sys/block/vda/serial", "virt-serial-1\n")
	// nvme0n1: NVMe with device/serial and an eui wwid.
	disk("nvme0n1", "7814037168", "0", "0", "0")
	write("sys/block/nvme0n1/device/model", "Samsung SSD 980 PRO\n")
	write("sys/block/nvme0n1/device/serial", "S5GXNF0R123456\n")
	write("sys/block/nvme0n1/wwid", "eui.002538b911b0a9f1\n")
	// Skipped: loop, removable sdb, read-only sdc, empty sdd.
	disk("loop0", "2048", "0", "0", "0")
	disk("sdb", "30000000", "1", "1", "0")
	disk("sdc", "30000000", "1", "0", "1")
	disk("sdd", "0", "1", "0", "0")
	link("../../vda", "dev/disk/by-path/pci-0000:00:05.0")
	link("../../vda1", "dev/disk/by-path/pci-0000:00:05.0-part1")
	return root
}

func TestListDisksFakeSysfs(t *testing.T) {
	root := fakeSys(t)
	got, err := ListDisks(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Disk{
		{Name: "/dev/nvme0n1", Size: 7814037168 * 512, Model: "Samsung SSD 980 PRO", Serial: "S5GXNF0R123456",
			WWN: "eui.002538b911b0a9f1", WWNWithExtension: "eui.002538b911b0a9f1"},
		{Name: "/dev/sda", Size: 1953525168 * 512, Model: "ST1000NM0033", Vendor: "ATA", Serial: "Z1W2X3Y4",
			WWN: "0x600508b1001c7e1a", WWNWithExtension: "0x600508b1001c7e1a0x5b4d3e2f1a0b9c8d",
			WWNVendorExtension: "0x5b4d3e2f1a0b9c8d", Rotational: true, HCTL: "0:0:0:0"},
		{Name: "/dev/vda", Size: 20971520 * 512, Serial: "virt-serial-1", ByPath: "/dev/disk/by-path/pci-0000:00:05.0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListDisks (-want +got):\n%s", diff)
	}
	all, err := ListDisksFiltered(root, DiskFilter{Virtual: true, Removable: true, ReadOnly: true})
	if err != nil || len(all) != 6 {
		t.Errorf("ListDisksFiltered(all) = %d disks, %v; want 6 (empty sdd still skipped)", len(all), err)
	}
	d, err := ChooseRootDevice(got, map[string]any{"serial": "z1w2x3y4"})
	if err != nil || d.Name != "/dev/sda" {
		t.Errorf("ChooseRootDevice(serial) = %v, %v", d.Name, err)
	}
}

func TestListDisksLoopDevice(t *testing.T) {
	backing := newTarget(t, 6<<30, 0) // sparse, 6 GiB
	dev := losetup(t, backing, false)
	disks, err := ListDisksFiltered("/", DiskFilter{Virtual: true})
	if err != nil {
		t.Fatal(err)
	}
	var found *Disk
	for i := range disks {
		if disks[i].Name == dev {
			found = &disks[i]
		}
	}
	if found == nil || found.Size != 6<<30 {
		t.Fatalf("ListDisks does not show %s as 6 GiB: %+v", dev, disks)
	}
	d, err := ChooseRootDevice(disks, map[string]any{"name": strings.TrimPrefix(dev, "/dev/"), "size": ">= 6"})
	if err != nil || d.Name != dev {
		t.Errorf("ChooseRootDevice(name, size) = %v, %v", d.Name, err)
	}
	plain, err := ListDisks("/")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range plain {
		if d.Name == dev {
			t.Errorf("ListDisks without the virtual filter lists %s", dev)
		}
	}
}

func TestChooseRootDevice(t *testing.T) {
	disks := []Disk{
		{Name: "/dev/sdb", Size: 500 * gib, Model: "PERC H730", Vendor: "DELL", Serial: "ABC123", WWN: "0x5000c500aaaa", Rotational: true, HCTL: "0:2:1:0"},
		{Name: "/dev/sda", Size: 100 * gib, Model: "Virtual disk", Vendor: "QEMU", Serial: "QM0001", WWN: "0x5000c500bbbb", HCTL: "0:0:0:0", ByPath: "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"},
		{Name: "/dev/sdc", Size: 2 * gib, Model: "USB stick"},
		{Name: "/dev/nvme0n1", Size: 100 * gib, Model: "Samsung SSD 980", Serial: "S5GX"},
	}
	cases := []struct {
		hints map[string]any
		want  string // "" = error
	}{
		{nil, "/dev/nvme0n1"}, // smallest >= 4 GiB, ties by name
		{map[string]any{"size": 500}, "/dev/sdb"},
		{map[string]any{"size": "500"}, "/dev/sdb"},
		{map[string]any{"size": float64(100)}, "/dev/sda"},
		{map[string]any{"size": ">= 200"}, "/dev/sdb"},
		{map[string]any{"size": "> 100"}, "/dev/sdb"},
		{map[string]any{"size": "< 10"}, "/dev/sdc"},
		{map[string]any{"size": "<= 2"}, "/dev/sdc"},
		{map[string]any{"size": "!= 500"}, "/dev/sda"},
		{map[string]any{"size": "== 2"}, "/dev/sdc"},
		{map[string]any{"size": "<or> 3 <or> 500"}, "/dev/sdb"},
		{map[string]any{"size": 7}, ""},
		{map[string]any{"model": "s== samsung ssd 980"}, "/dev/nvme0n1"},
		{map[string]any{"model": "Virtual disk"}, "/dev/sda"},
		{map[string]any{"model": "<in> perc"}, "/dev/sdb"},
		{map[string]any{"vendor": "s!= dell"}, "/dev/sda"},
		{map[string]any{"serial": "<or> nothere <or> qm0001"}, "/dev/sda"},
		{map[string]any{"serial": "s== abc123", "rotational": true}, "/dev/sdb"},
		{map[string]any{"rotational": "false"}, "/dev/sda"},
		{map[string]any{"wwn": "0x5000C500BBBB"}, "/dev/sda"},
		{map[string]any{"hctl": "0:2:1:0"}, "/dev/sdb"},
		{map[string]any{"name": "sdc"}, "/dev/sdc"},
		{map[string]any{"name": "/dev/nvme0n1"}, "/dev/nvme0n1"},
		{map[string]any{"by_path": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"}, "/dev/sda"},
		{map[string]any{"model": "<all-in> samsung 980"}, "/dev/nvme0n1"},
		{map[string]any{"wwn_with_extension": "0x1"}, ""}, // empty on every disk
		{map[string]any{"serial": "s== nothere"}, ""},
	}
	for _, tc := range cases {
		d, err := ChooseRootDevice(disks, tc.hints)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("hints %v chose %s; want an error", tc.hints, d.Name)
		case tc.want == "" && !errors.Is(err, ErrNoDevice):
			t.Errorf("hints %v: err = %v; want ErrNoDevice", tc.hints, err)
		case tc.want == "" && !strings.Contains(err.Error(), "/dev/sdb (500 GiB, model=PERC H730"):
			t.Errorf("hints %v: error does not list candidates: %v", tc.hints, err)
		case tc.want != "" && (err != nil || d.Name != tc.want):
			t.Errorf("hints %v = %s, %v; want %s", tc.hints, d.Name, err, tc.want)
		}
	}
	if _, err := ChooseRootDevice(disks[2:3], nil); !errors.Is(err, ErrNoDevice) {
		t.Errorf("no disk >= 4 GiB: err = %v", err)
	}
}

func TestParseRootDeviceHintsErrors(t *testing.T) {
	for _, h := range []map[string]any{
		{"colour": "blue"},
		{"size": "big"},
		{"size": -1},
		{"size": 1.5},
		{"size": "s== 10"},
		{"rotational": "maybe"},
		{"model": 42},
		{"model": ""},
		{"model": "s=="},
		{"tran": "sas"},
	} {
		if _, err := ParseRootDeviceHints(h); err == nil {
			t.Errorf("ParseRootDeviceHints(%v) accepted", h)
		}
	}
}
