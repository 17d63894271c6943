package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// partitionDisk builds an ext4 root image from the files given (path -> content), writes it
// as a partition image onto a 1 GiB file disk and returns the disk and the result.
func partitionDisk(t *testing.T, files map[string]string, layout LayoutRequest) (string, PartitionResult) {
	t.Helper()
	requireTools(t, "mkfs.ext4", "mkfs.vfat", "sfdisk")
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	for p, c := range files {
		full := filepath.Join(content, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(content, 0o755); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "root.img")
	run(t, "mkfs.ext4", "-q", "-F", "-d", content, raw, "16M")
	sum, err := sha256File(raw)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveFiles(t, dir)
	disk := newTarget(t, 1<<30, 0)
	res, err := WritePartitionImage(writeCtx(t), PartitionImageRequest{
		Image: ImageRequest{URL: srv.URL + "/root.img", Checksum: sum}, Layout: layout,
	}, disk, nil)
	if err != nil {
		t.Fatal(err)
	}
	return disk, res
}

// mtype reads a file from the FAT file system at a byte offset of a disk (mtools).
func mtype(t *testing.T, disk string, off int64, path string) (string, error) {
	t.Helper()
	return runErr("mtype", "-i", disk+"@@"+itoa(off), "::"+path)
}

func needLoop(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting the partitions needs root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no /dev/loop-control here")
	}
	requireTools(t, "mtype")
}

func TestInstallBootloaderUEFI(t *testing.T) {
	needLoop(t)
	for _, c := range []struct {
		name, label string
		files       map[string]string
		loader      string
		fallback    string
	}{
		{"gpt shim", "gpt", map[string]string{
			"boot/efi/EFI/debian/shimx64.efi": "SHIM", "boot/efi/EFI/debian/grubx64.efi": "GRUB",
			"boot/efi/EFI/debian/grub.cfg": "search --fs-uuid x", "boot/vmlinuz": "kernel"},
			`\EFI\debian\shimx64.efi`, "SHIM"},
		{"msdos removable only", "msdos", map[string]string{"boot/efi/EFI/BOOT/BOOTX64.EFI": "GRUBREMOVABLE"},
			`\EFI\BOOT\BOOTX64.EFI`, "GRUBREMOVABLE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			disk, wres := partitionDisk(t, c.files, LayoutRequest{BootMode: "uefi", DiskLabel: c.label, RootMiB: 32})
			vars := t.TempDir()
			// An existing entry and order, as firmware leaves them.
			old := encodeLoadOption(LoadOption{Attributes: loadOptActive, Description: "UEFI PXEv4", File: `\x`})
			if err := writeEFIVar(vars, "Boot0000", old); err != nil {
				t.Fatal(err)
			}
			if err := writeEFIVar(vars, "BootOrder", []byte{0, 0}); err != nil {
				t.Fatal(err)
			}
			res, err := InstallBootloader(writeCtx(t), BootloaderRequest{Disk: disk, BootMode: "uefi", RootUUID: wres.RootUUID, EFIVars: vars})
			if err != nil {
				t.Fatal(err)
			}
			esp, _ := wres.Layout.Part(RoleESP)
			got, err := mtype(t, disk, esp.Start, "/EFI/BOOT/BOOTX64.EFI")
			if err != nil || got != c.fallback {
				t.Fatalf("BOOTX64.EFI: %q, %v; want %q", got, err, c.fallback)
			}
			for p, want := range c.files {
				if rel, ok := strings.CutPrefix(p, "boot/efi"); ok {
					if got, err := mtype(t, disk, esp.Start, rel); err != nil || got != want {
						t.Errorf("%s on the ESP: %q, %v", rel, got, err)
					}
				}
			}
			if res.Loader != c.loader || res.BootEntry != "Boot0001" {
				t.Fatalf("result %+v, want loader %s in Boot0001", res, c.loader)
			}
			v, err := readEFIVar(vars, "Boot0001")
			if err != nil {
				t.Fatal(err)
			}
			o, err := ParseLoadOption(v)
			if err != nil {
				t.Fatal(err)
			}
			if o.File != c.loader || o.PartNumber != uint32(esp.Number) || o.PartStart != uint64(esp.Start/512) || o.PartSize != uint64(esp.Size/512) || o.Attributes != loadOptActive {
				t.Fatalf("boot entry %+v, ESP %+v", o, esp)
			}
			d := sfdiskJSON(t, disk)
			if c.label == "gpt" {
				if guidString(o.Signature) != strings.ToLower(d.PartitionTable.Partitions[esp.Number-1].UUID) || o.MBRType != 2 {
					t.Errorf("boot entry signature %s, ESP PARTUUID %s", guidString(o.Signature), d.PartitionTable.Partitions[esp.Number-1].UUID)
				}
			} else if sig := binary.LittleEndian.Uint32(o.Signature[:]); "0x"+itoaHex(sig) != d.PartitionTable.ID || o.MBRType != 1 {
				t.Errorf("boot entry signature %08x, disk id %s", sig, d.PartitionTable.ID)
			}
			order, err := readEFIVar(vars, "BootOrder")
			if err != nil || !bytes.Equal(order, []byte{1, 0, 0, 0}) {
				t.Fatalf("BootOrder %x, %v; want 0001,0000", order, err)
			}
			// Again: the same entry is reused, not a new one.
			if res, err := InstallBootloader(writeCtx(t), BootloaderRequest{Disk: disk, BootMode: "uefi", RootUUID: wres.RootUUID, EFIVars: vars}); err != nil || res.BootEntry != "Boot0001" {
				t.Fatalf("second install: %+v, %v", res, err)
			}
			t.Logf("%s: installed in %v", c.name, res.Duration)
		})
	}
}

func itoaHex(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

func TestInstallBootloaderFailures(t *testing.T) {
	needLoop(t)
	for _, c := range []struct {
		name, mode string
		files      map[string]string
		want       string
	}{
		{"bios without grub", "bios", map[string]string{"boot/vmlinuz": "k"}, "the image has no grub-install or grub2-install"},
		{"uefi without loader", "uefi", map[string]string{"boot/vmlinuz": "k"}, "the image has no EFI boot loader"},
	} {
		t.Run(c.name, func(t *testing.T) {
			disk, wres := partitionDisk(t, c.files, LayoutRequest{BootMode: c.mode, RootMiB: 32})
			_, err := InstallBootloader(writeCtx(t), BootloaderRequest{Disk: disk, BootMode: c.mode, RootUUID: wres.RootUUID, EFIVars: t.TempDir()})
			if !errors.Is(err, ErrBootloader) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if !allBytes(readRange(t, disk, 0, 1<<20), 0) {
				t.Fatal("first MiB not zeroed")
			}
		})
	}
	t.Run("unknown root uuid", func(t *testing.T) {
		disk, _ := partitionDisk(t, map[string]string{"x": "y"}, LayoutRequest{RootMiB: 32})
		_, err := InstallBootloader(writeCtx(t), BootloaderRequest{Disk: disk, RootUUID: "0000"})
		if !errors.Is(err, ErrBootloader) || !strings.Contains(err.Error(), "no partition whose UUID or file system UUID is 0000") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestLoadOptionRoundTrip(t *testing.T) {
	o := LoadOption{Attributes: 1, Description: "ironwork", PartNumber: 2, PartStart: 2048, PartSize: 1126400,
		Signature: [16]byte{1, 2, 3}, MBRType: 2, SigType: 2, File: `\EFI\debian\shimx64.efi`}
	got, err := ParseLoadOption(encodeLoadOption(o))
	if err != nil || got != o {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, o)
	}
}

func FuzzLoadOption(f *testing.F) {
	f.Add(encodeLoadOption(LoadOption{Attributes: 1, Description: "x", PartNumber: 1, File: `\a.efi`}))
	f.Add([]byte{1, 0, 0, 0, 4, 0, 'a', 0, 0, 0, 0x7f, 0xff, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseLoadOption(b)
		if err != nil {
			return
		}
		// What parses re-encodes to something that parses to the same option (when it had
		// a hard-drive node and a file, as ours do).
		if o.PartNumber != 0 && o.File != "" && !strings.ContainsRune(o.Description, 0) && !strings.ContainsRune(o.File, 0) && utf16Clean(o) {
			again, err := ParseLoadOption(encodeLoadOption(o))
			if err != nil || again != o {
				t.Fatalf("re-encoded %+v parses as %+v, %v", o, again, err)
			}
		}
	})
}

// utf16Clean: strings that survive a UTF-16 round trip (no replacement characters).
func utf16Clean(o LoadOption) bool {
	return !strings.ContainsRune(o.Description, '\uFFFD') && !strings.ContainsRune(o.File, '\uFFFD')
}
