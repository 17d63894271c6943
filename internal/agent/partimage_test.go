package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rootFS makes an ext4 partition image of sizeMiB holding a marker file, and its qcow2.
func rootFS(t *testing.T, sizeMiB int) (dir, raw, qcow string, sum, qsum string) {
	t.Helper()
	requireTools(t, "mkfs.ext4", "qemu-img", "sfdisk", "blkid", "mkfs.vfat", "debugfs")
	dir = t.TempDir()
	content := filepath.Join(dir, "content")
	if err := os.MkdirAll(filepath.Join(content, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(content, "etc", "marker"), []byte("partition image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw = filepath.Join(dir, "root.img")
	run(t, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", content, raw, itoa(int64(sizeMiB))+"M")
	qcow = filepath.Join(dir, "root.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
	var err error
	if sum, err = sha256File(raw); err != nil {
		t.Fatal(err)
	}
	if qsum, err = sha256File(qcow); err != nil {
		t.Fatal(err)
	}
	return dir, raw, qcow, sum, qsum
}

// blkidAt probes the file system at a byte offset of a disk file with blkid -p.
func blkidAt(t *testing.T, path string, off int64, tag string) string {
	t.Helper()
	out, err := runErr("blkid", "-p", "-O", itoa(off), "-s", tag, "-o", "value", path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

func TestWritePartitionImage(t *testing.T) {
	dir, raw, _, sum, qsum := rootFS(t, 24)
	srv := serveFiles(t, dir)
	iso := makeISO(t)
	ref, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file, sum, label, mode string
		wantLabel                    string
		roles                        []string
	}{
		{"uefi-gpt-qcow2", "root.qcow2", qsum, "", "uefi", "gpt", []string{RoleESP, RoleEphemeral, RoleSwap, RoleConfigDrive, RoleRoot}},
		{"bios-gpt-raw", "root.img", sum, "gpt", "bios", "gpt", []string{RoleBIOSBoot, RoleEphemeral, RoleSwap, RoleConfigDrive, RoleRoot}},
		{"bios-msdos-raw", "root.img", sum, "", "bios", "dos", []string{RoleEphemeral, RoleSwap, RoleConfigDrive, RoleRoot}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			disk := newTarget(t, 1<<30, 4<<20) // old data in the first MiBs
			res, err := WritePartitionImage(writeCtx(t), PartitionImageRequest{
				Image:       ImageRequest{URL: srv.URL + "/" + c.file, Checksum: c.sum},
				Layout:      LayoutRequest{DiskLabel: c.label, BootMode: c.mode, RootMiB: 0, SwapMiB: 16, EphemeralMiB: 32},
				ConfigDrive: iso,
			}, disk, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := sfdiskJSON(t, disk)
			if d.PartitionTable.Label != c.wantLabel {
				t.Fatalf("label %q, want %q", d.PartitionTable.Label, c.wantLabel)
			}
			if len(d.PartitionTable.Partitions) != len(c.roles) {
				t.Fatalf("sfdisk sees %d partitions, want %d: %+v", len(d.PartitionTable.Partitions), len(c.roles), d.PartitionTable.Partitions)
			}
			if c.wantLabel == "gpt" {
				if out := run(t, "sgdisk", "-v", disk); !strings.Contains(out, "No problems found") {
					t.Fatalf("sgdisk -v: %s", out)
				}
			} else {
				run(t, "sfdisk", "--verify", disk)
			}
			for i, role := range c.roles {
				p := res.Layout.Partitions[i]
				sp := d.PartitionTable.Partitions[i]
				if p.Role != role || sp.Start*512 != p.Start || sp.Size*512 != p.Size {
					t.Fatalf("partition %d: ours %+v, sfdisk %+v, want role %s", i+1, p, sp, role)
				}
				if p.Start%(1<<20) != 0 {
					t.Errorf("partition %d starts at %d, not MiB aligned", i+1, p.Start)
				}
				if !strings.EqualFold(sp.UUID, p.UUID) && c.wantLabel == "gpt" {
					t.Errorf("partition %d: PARTUUID %s, sfdisk says %s", i+1, p.UUID, sp.UUID)
				}
				want := map[string]string{RoleESP: "vfat", RoleEphemeral: "ext4", RoleSwap: "swap", RoleConfigDrive: "iso9660", RoleRoot: "ext4"}[role]
				if got := blkidAt(t, disk, p.Start, "TYPE"); got != want {
					t.Errorf("%s partition: blkid TYPE %q, want %q", role, got, want)
				}
				if role == RoleRoot {
					if got := blkidAt(t, disk, p.Start, "UUID"); got != res.RootUUID {
						t.Errorf("root uuid %q, blkid says %q", res.RootUUID, got)
					}
					if got := readRange(t, disk, p.Start, int64(len(ref))); !bytes.Equal(got, ref) {
						t.Errorf("root partition differs from the image at byte %d", firstDiff(got, ref))
					}
				}
				if role == RoleESP {
					if got := blkidAt(t, disk, p.Start, "UUID"); got != res.ESPUUID {
						t.Errorf("ESP uuid %q, blkid says %q", res.ESPUUID, got)
					}
				}
				if role == RoleConfigDrive {
					if got := blkidAt(t, disk, p.Start, "LABEL"); got != "config-2" {
						t.Errorf("config drive label %q", got)
					}
				}
			}
			if c.mode == "bios" && c.wantLabel == "dos" {
				if b := readRange(t, disk, 446, 1); b[0] != 0 {
					t.Errorf("partition 1 is bootable")
				}
			}
			if res.DiskID == "" || !strings.EqualFold(strings.TrimPrefix(d.PartitionTable.ID, "0x"), res.DiskID) {
				t.Errorf("disk id %q, sfdisk %q", res.DiskID, d.PartitionTable.ID)
			}
			t.Logf("%s: %d bytes written in %v", c.name, res.BytesWritten, res.Duration)
		})
	}
}

func TestWritePartitionImageFailures(t *testing.T) {
	dir, _, _, sum, qsum := rootFS(t, 24)
	srv := serveFiles(t, dir)
	ctx := writeCtx(t)
	untouched := func(t *testing.T, disk string) {
		t.Helper()
		if !allBytes(readRange(t, disk, 0, 4<<20), 0xab) {
			t.Fatal("the disk was touched")
		}
	}
	for _, c := range []struct {
		name, file, sum string
		layout          LayoutRequest
		want            string
	}{
		{"raw larger than root", "root.img", sum, LayoutRequest{RootMiB: 16}, "partition image of 25165824 bytes does not fit in the root partition of 16 MiB"},
		{"qcow2 larger than root", "root.qcow2", qsum, LayoutRequest{RootMiB: 16}, "partition image of 25165824 bytes does not fit in the root partition of 16 MiB"},
		{"unknown disk label", "root.img", sum, LayoutRequest{DiskLabel: "bsd"}, `disk_label "bsd" is neither gpt nor msdos`},
		{"unknown boot mode", "root.img", sum, LayoutRequest{BootMode: "efi"}, `boot mode "efi" is neither bios nor uefi`},
		{"root larger than the disk", "root.img", sum, LayoutRequest{RootMiB: 4096}, "no room for the root partition of 4096 MiB"},
		{"unsupported ephemeral format", "root.img", sum, LayoutRequest{EphemeralMiB: 8, EphemeralFormat: "zfs"}, `ephemeral_format "zfs" is not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			disk := newTarget(t, 256<<20, 4<<20)
			_, err := WritePartitionImage(ctx, PartitionImageRequest{
				Image:  ImageRequest{URL: srv.URL + "/" + c.file, Checksum: c.sum},
				Layout: c.layout,
			}, disk, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if !errors.Is(err, ErrBadLayout) {
				t.Errorf("error %v does not wrap ErrBadLayout", err)
			}
			untouched(t, disk)
		})
	}
	t.Run("checksum mismatch wipes", func(t *testing.T) {
		disk := newTarget(t, 256<<20, 4<<20)
		_, err := WritePartitionImage(ctx, PartitionImageRequest{
			Image: ImageRequest{URL: srv.URL + "/root.img", Checksum: qsum}, Layout: LayoutRequest{SwapMiB: 8},
		}, disk, nil)
		var ce *ChecksumError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v, want a checksum mismatch", err)
		}
		if !allBytes(readRange(t, disk, 0, 1<<20), 0) || !allBytes(readRange(t, disk, 256<<20-1<<20, 1<<20), 0) {
			t.Fatal("first or last MiB not zeroed")
		}
		if out, _ := runErr("sfdisk", "-d", disk); strings.Contains(out, "start=") {
			t.Fatalf("a partition table remains: %s", out)
		}
	})
}

func TestPlanLayoutDefaults(t *testing.T) {
	_, err := PlanLayout(LayoutRequest{DiskLabel: "msdos", BootMode: "uefi", SwapMiB: 8, EphemeralMiB: 8, ConfigDriveMiB: 64, RootMiB: 100}, 2<<30, 512)
	if want := "an msdos disk label holds 4 primary partitions, this layout needs 5"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	for _, c := range []struct {
		mode, label, want string
	}{{"", "", "msdos"}, {"bios", "", "msdos"}, {"uefi", "", "gpt"}, {"bios", "gpt", "gpt"}, {"uefi", "msdos", "msdos"}} {
		l, err := PlanLayout(LayoutRequest{BootMode: c.mode, DiskLabel: c.label}, 2<<30, 512)
		if err != nil {
			t.Fatal(err)
		}
		if l.DiskLabel != c.want {
			t.Errorf("boot mode %q label %q: got %s, want %s", c.mode, c.label, l.DiskLabel, c.want)
		}
		root := l.Partitions[len(l.Partitions)-1]
		if root.Role != RoleRoot || root.Start+root.Size > 2<<30-1<<20 {
			t.Errorf("root partition %+v", root)
		}
	}
}
