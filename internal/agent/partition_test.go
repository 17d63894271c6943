package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// copyImage copies an image file onto a larger target (old data after it).
func copyImage(t *testing.T, src string, size int64) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	target := newTarget(t, size, size)
	f, err := os.OpenFile(target, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return target
}

func makeISO(t *testing.T) []byte {
	t.Helper()
	requireTools(t, "xorriso")
	dir := t.TempDir()
	md := filepath.Join(dir, "root", "openstack", "latest")
	if err := os.MkdirAll(md, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(md, "meta_data.json"), []byte(`{"uuid":"0a1b2c3d"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "cd.iso")
	run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "config-2", "-J", "-r", "-o", iso, filepath.Join(dir, "root"))
	b, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdiskJSON(t *testing.T, path string) sfdiskDump {
	t.Helper()
	var d sfdiskDump
	if err := json.Unmarshal([]byte(run(t, "sfdisk", "-J", path)), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConfigDriveGPT(t *testing.T) {
	im := fixture(t)
	iso := makeISO(t)
	target := copyImage(t, im.raw, im.size+128<<20)
	p, err := WriteConfigDrive(context.Background(), target, iso)
	if err != nil {
		t.Fatalf("WriteConfigDrive: %v", err)
	}
	out := run(t, "sgdisk", "-v", target)
	if !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	out = run(t, "sgdisk", "-p", target)
	if !strings.Contains(out, "config-2") {
		t.Errorf("sgdisk -p shows no config-2 partition:\n%s", out)
	}
	d := sfdiskJSON(t, target)
	last := d.PartitionTable.Partitions[len(d.PartitionTable.Partitions)-1]
	if last.Name != "config-2" || last.Start*512 != p.Start || last.Size*512 != p.Size || !strings.EqualFold(last.UUID, p.UUID) {
		t.Errorf("sfdisk sees %+v; WriteConfigDrive returned %+v", last, p)
	}
	if p.Size != 64<<20 || p.Start+p.Size > im.size+128<<20-33*512 || p.Start < im.size {
		t.Errorf("config drive at %d+%d; want 64 MiB at the end of the disk", p.Start, p.Size)
	}
	if got := readRange(t, target, p.Start, int64(len(iso))); !bytes.Equal(got, iso) {
		t.Errorf("ISO not at the partition start")
	}
	if out, err := runErr("blkid", "-p", "-O", itoa(p.Start), "-o", "export", target); err != nil || !strings.Contains(out, "LABEL=config-2") || !strings.Contains(out, "TYPE=iso9660") {
		t.Errorf("blkid -p at the partition: %v\n%s", err, out)
	}
	// A second call reuses the partition.
	p2, err := WriteConfigDrive(context.Background(), target, iso)
	if err != nil || p2.Start != p.Start || p2.Number != p.Number {
		t.Errorf("second WriteConfigDrive = %+v, %v; want reuse of %+v", p2, err, p)
	}
}

func TestConfigDriveMBR(t *testing.T) {
	im := fixture(t)
	iso := makeISO(t)
	target := copyImage(t, im.dos, im.size+128<<20)
	p, err := WriteConfigDrive(context.Background(), target, iso)
	if err != nil {
		t.Fatalf("WriteConfigDrive: %v", err)
	}
	d := sfdiskJSON(t, target)
	if len(d.PartitionTable.Partitions) != 3 {
		t.Fatalf("sfdisk -J: %+v", d)
	}
	last := d.PartitionTable.Partitions[2]
	if last.Start*512 != p.Start || last.Size*512 != p.Size || last.Type != "83" || p.UUID != "1234abcd-03" {
		t.Errorf("sfdisk sees %+v; WriteConfigDrive returned %+v", last, p)
	}
	if out, err := runErr("sfdisk", "--verify", target); err != nil {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	if out, err := runErr("blkid", "-p", "-O", itoa(p.Start), "-o", "export", target); err != nil || !strings.Contains(out, "LABEL=config-2") {
		t.Errorf("blkid -p at the partition: %v\n%s", err, out)
	}
}

func TestConfigDriveLoopDevice(t *testing.T) {
	im := fixture(t)
	iso := makeISO(t)
	backing := copyImage(t, im.raw, im.size+128<<20)
	dev := losetup(t, backing, true)
	p, err := WriteConfigDrive(context.Background(), dev, iso)
	if err != nil {
		t.Fatalf("WriteConfigDrive: %v", err)
	}
	// The kernel re-read the table (BLKRRPART) and accepted the new GPT
	// (it checks both CRCs): the partition shows in sysfs with our geometry.
	if out := run(t, "sgdisk", "-v", dev); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v %s:\n%s", dev, out)
	}
	name := filepath.Base(dev)
	if _, err := os.Stat(filepath.Join("/sys/block", name, name+"p1")); err != nil {
		t.Skipf("kernel partition scanning of loop devices is not visible here (%v); checked the table with sgdisk only", err)
	}
	sys := filepath.Join("/sys/block", name, name+"p"+itoa(int64(p.Number)))
	start, err1 := readSysInt(filepath.Join(sys, "start"))
	size, err2 := readSysInt(filepath.Join(sys, "size"))
	if err1 != nil || err2 != nil || start*512 != p.Start || size*512 != p.Size {
		t.Errorf("kernel sees partition %d at %d+%d sectors (%v, %v); want %+v", p.Number, start, size, err1, err2, p)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPartitionUUIDs(t *testing.T) {
	im := fixture(t)
	for _, img := range []string{im.raw, im.dos} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			pt, err := PartitionUUIDs(img)
			if err != nil {
				t.Fatalf("PartitionUUIDs: %v", err)
			}
			d := sfdiskJSON(t, img)
			ptuuid := strings.TrimSpace(run(t, "blkid", "-p", "-o", "value", "-s", "PTUUID", img))
			if !strings.EqualFold(pt.DiskID, ptuuid) {
				t.Errorf("disk id %q; blkid PTUUID %q", pt.DiskID, ptuuid)
			}
			if len(pt.Partitions) != len(d.PartitionTable.Partitions) {
				t.Fatalf("%d partitions; sfdisk sees %d", len(pt.Partitions), len(d.PartitionTable.Partitions))
			}
			for i, sp := range d.PartitionTable.Partitions {
				p := pt.Partitions[i]
				wantUUID := sp.UUID
				if d.PartitionTable.Label == "dos" {
					wantUUID = ptuuid + "-0" + itoa(int64(i+1))
				}
				if p.Start != sp.Start*512 || p.Size != sp.Size*512 || !strings.EqualFold(p.UUID, wantUUID) || p.Name != sp.Name {
					t.Errorf("partition %d: %+v; sfdisk %+v (uuid %s)", i+1, p, sp, wantUUID)
				}
			}
		})
	}
}

func TestEraseMetadata(t *testing.T) {
	im := fixture(t)
	target := copyImage(t, im.raw, im.size)
	before, _ := PartitionUUIDs(target)
	if err := EraseMetadata(context.Background(), target); err != nil {
		t.Fatalf("EraseMetadata: %v", err)
	}
	if out, err := runErr("wipefs", "--no-act", target); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("wipefs still finds signatures: %v\n%s", err, out)
	}
	if _, err := PartitionUUIDs(target); err == nil {
		t.Errorf("partition table still readable after EraseMetadata")
	}
	for _, p := range before.Partitions {
		if !allBytes(readRange(t, target, p.Start, 1<<20), 0) {
			t.Errorf("partition %d start not zeroed", p.Number)
		}
	}
	// Data in the middle of a partition is untouched.
	want := readRange(t, im.raw, 30<<20, 1<<20)
	if !bytes.Equal(readRange(t, target, 30<<20, 1<<20), want) {
		t.Errorf("EraseMetadata touched data inside a partition")
	}
}

func TestEraseDevice(t *testing.T) {
	im := fixture(t)
	t.Run("file", func(t *testing.T) {
		target := copyImage(t, im.raw, im.size)
		var last ProgressReport
		m, err := EraseDevice(context.Background(), target, func(r ProgressReport) { last = r })
		if err != nil || m != EraseWriteZeros {
			t.Fatalf("EraseDevice = %s, %v", m, err)
		}
		if !allBytes(readRange(t, target, 0, im.size), 0) || last.Written != im.size {
			t.Errorf("file not all zeros (last progress %+v)", last)
		}
	})
	t.Run("loop", func(t *testing.T) {
		backing := copyImage(t, im.raw, im.size)
		dev := losetup(t, backing, false)
		m, err := EraseDevice(context.Background(), dev, nil)
		if err != nil {
			t.Fatalf("EraseDevice: %v", err)
		}
		t.Logf("loop device erased with %s", m)
		if !allBytes(readRange(t, dev, 0, im.size), 0) {
			t.Errorf("%s not all zeros after %s", dev, m)
		}
	})
}
