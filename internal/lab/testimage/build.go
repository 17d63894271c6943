package testimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ironwork/ironwork/internal/ramdisk"
)

// Options for Build.
type Options struct {
	KernelDir string // what scripts/kernel.sh prints: vmlinuz and lib/modules/<version>/
	WorkDir   string // scratch directory
	Size      int64  // image size in bytes, 0 = DefaultSize
	Log       *slog.Logger
	// Init is a prebuilt instanceinit binary; empty means 'go build' it from the ironwork
	// source tree around the working directory.
	Init string
	// BootFilesDir, when set, also gets the image's kernel and initramfs as
	// BootKernelName and BootInitramfsName: what the ramdisk deploy interface boots from the
	// network (the initramfs's /init prints the same lines as the disk image).
	BootFilesDir string
	// Arch is ArchARM64 for an arm64 image: the arm64 kernel (KernelDir: scripts/kernel.sh
	// arm64), instanceinit built for arm64, GRUB's arm64 EFI loader as \EFI\BOOT\BOOTAA64.EFI
	// from GrubARM64Dir's modules (scripts/grub-arm64.sh), the console on ttyAMA0. The MBR and
	// BIOS GRUB stay (harmless on arm64: its firmware reads only the partition table).
	// "" is x86_64.
	Arch         string
	GrubARM64Dir string
}

// ArchARM64 is Options.Arch of an arm64 image.
const ArchARM64 = "arm64"

// KernelCmdlineARM64 is what GRUB passes to the arm64 image's kernel.
const KernelCmdlineARM64 = "console=ttyAMA0 loglevel=4"

// Names of the kernel and initramfs written to Options.BootFilesDir.
const (
	BootKernelName    = "image.vmlinuz"
	BootInitramfsName = "image.initrd"
)

// DefaultSize is the image size when Options.Size is 0.
const DefaultSize = 32 << 20

// KernelCmdline is what GRUB passes to the kernel (no_timer_check: a TCG guest on a loaded
// host can fail the IO-APIC timer check and panic).
const KernelCmdline = "console=ttyS0 loglevel=4 no_timer_check"

// Modules are the kernel modules the image loads: disks (virtio, AHCI/SATA, SCSI), ISO 9660
// for the config drive and virtio_rng. Their dependencies come too.
func Modules() []string {
	return []string{"virtio_pci", "virtio_blk", "virtio_scsi", "ahci", "sd_mod", "sr_mod", "isofs", "virtio_rng"}
}

// Where the GRUB files come from (Debian packages grub-pc-bin and grub-efi-amd64-bin).
const (
	grubPCDir  = "/usr/lib/grub/i386-pc"
	grubEFIDir = "/usr/lib/grub/x86_64-efi"
)

// Disk layout: the MBR, GRUB's core.img from sector 1, the ESP from 1 MiB.
const (
	sectorSize = 512
	espStart   = 1 << 20
	mbrTypeESP = 0xef
	diskID     = 0x49524f4e // "IRON"
)

var grubModules = []string{"part_msdos", "fat", "linux", "boot", "serial", "terminal", "echo"}

// Build writes a raw whole-disk image to out (and returns its sha256 hex) that boots under
// BOTH SeaBIOS (legacy, MBR boot code) and OVMF (UEFI, \EFI\BOOT\BOOTX64.EFI on an ESP).
// It needs grub-mkimage (grub-common) with grub-pc-bin and grub-efi-amd64-bin, mtools, and
// go unless opts.Init is given. It touches no disk but out and files under opts.WorkDir.
func Build(ctx context.Context, out string, opts Options) (sha256hex string, err error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	size := opts.Size
	if size == 0 {
		size = DefaultSize
	}
	if size < 16<<20 || size%sectorSize != 0 || size > 2<<40 {
		return "", fmt.Errorf("test image: size %d must be a multiple of 512 between 16 MiB and 2 TiB", size)
	}
	if opts.WorkDir == "" {
		return "", errors.New("test image: WorkDir is required")
	}
	work, err := os.MkdirTemp(opts.WorkDir, "testimage-")
	if err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	defer os.RemoveAll(work)

	goarch, rdArch := "amd64", ramdisk.AMD64
	if opts.Arch == ArchARM64 {
		goarch, rdArch = "arm64", ramdisk.ARM64
	}
	initBin := opts.Init
	if initBin == "" {
		initBin = filepath.Join(work, "init")
		if err := buildInit(ctx, initBin, goarch); err != nil {
			return "", err
		}
	}
	rd, err := ramdisk.Build(ctx, ramdisk.BuildConfig{KernelDir: opts.KernelDir, Agent: initBin, Output: filepath.Join(work, "ramdisk"), Modules: Modules(), DiskTools: []string{}, Arch: rdArch})
	if err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	if len(rd.Missing) > 0 {
		log.Warn("test image: modules not in this kernel", "modules", rd.Missing)
	}
	embedBIOS := filepath.Join(work, "bios.cfg")
	embedEFI := filepath.Join(work, "efi.cfg")
	if err := os.WriteFile(embedBIOS, []byte(grubConfig("serial console", "set root=(hd0,msdos1)\n")), 0o644); err != nil {
		return "", err
	}
	efiCfg := grubConfig("serial", "")
	if opts.Arch == ArchARM64 {
		efiCfg = strings.Replace(efiCfg, KernelCmdline, KernelCmdlineARM64, 1)
	}
	if err := os.WriteFile(embedEFI, []byte(efiCfg), 0o644); err != nil {
		return "", err
	}
	core := filepath.Join(work, "core.img")
	if err := run(ctx, "grub-mkimage", append([]string{"-d", grubPCDir, "-O", "i386-pc", "-o", core,
		"-p", "(hd0,msdos1)/boot/grub", "-c", embedBIOS, "biosdisk"}, grubModules...)...); err != nil {
		return "", err
	}
	efiDir, efiFormat, efiName := grubEFIDir, "x86_64-efi", "BOOTX64.EFI"
	if opts.Arch == ArchARM64 {
		efiDir, efiFormat, efiName = opts.GrubARM64Dir, "arm64-efi", "BOOTAA64.EFI"
	}
	efi := filepath.Join(work, efiName)
	// serial is an x86 module only; on arm64 the firmware's console is the serial port.
	efiModules := grubModules
	if opts.Arch == ArchARM64 {
		efiModules = []string{"part_msdos", "fat", "linux", "boot", "echo"}
		efiCfg = strings.Replace(strings.Replace(efiCfg, "serial --unit=0 --speed=115200\n", "", 1), "terminal_output serial\n", "", 1)
		if err := os.WriteFile(embedEFI, []byte(efiCfg), 0o644); err != nil {
			return "", err
		}
	}
	if err := run(ctx, "grub-mkimage", append([]string{"-d", efiDir, "-O", efiFormat, "-o", efi,
		"-p", "/EFI/BOOT", "-c", embedEFI}, efiModules...)...); err != nil {
		return "", err
	}
	esp := filepath.Join(work, "esp.img")
	if err := buildESP(ctx, esp, size-espStart, map[string]string{
		"::/EFI/BOOT/" + efiName: efi, "::/vmlinuz": rd.KernelPath, "::/initrd.img": rd.InitramfsPath,
	}); err != nil {
		return "", err
	}
	sum, err := writeDisk(out, size, core, esp)
	if err != nil {
		return "", err
	}
	if opts.BootFilesDir != "" {
		for src, name := range map[string]string{rd.KernelPath: BootKernelName, rd.InitramfsPath: BootInitramfsName} {
			b, err := os.ReadFile(src)
			if err == nil {
				err = os.WriteFile(filepath.Join(opts.BootFilesDir, name), b, 0o644)
			}
			if err != nil {
				return "", fmt.Errorf("test image: boot files: %w", err)
			}
		}
	}
	log.Info("test image built", "path", out, "bytes", size, "kernel", rd.KernelVersion,
		"initramfs_bytes", rd.InitramfsSize, "sha256", sum, "took", time.Since(start).Round(time.Millisecond))
	return sum, nil
}

// grubConfig is the configuration embedded in both GRUB images: no menu, straight to Linux.
// GRUB's own messages go to the serial port too, so a failing boot shows why (OVMF's console
// is the serial port already: only "serial" there, or every character comes twice).
func grubConfig(terminals, extra string) string {
	return "serial --unit=0 --speed=115200\nterminal_output " + terminals + "\n" + extra +
		"echo 'ironwork test image: loading Linux'\n" +
		"linux /vmlinuz " + KernelCmdline + "\ninitrd /initrd.img\nboot\n"
}

// buildInit compiles instanceinit for goarch from the source tree around the working
// directory.
func buildInit(ctx context.Context, out, goarch string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return errors.New("test image: no go tool to build instanceinit with")
	}
	root, err := moduleRoot()
	if err != nil {
		return fmt.Errorf("test image: %w", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./internal/lab/testimage/instanceinit")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("test image: go build instanceinit: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// moduleRoot finds the ironwork source tree from the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/ironwork/ironwork\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ironwork source tree (needed to build instanceinit)")
		}
		dir = parent
	}
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "MTOOLS_NO_VFAT=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("test image: %s: %w: %s", name, err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// buildESP makes a FAT filesystem of size bytes in the file esp with mtools and copies the
// files in (destination → source). No loop device, no mount.
func buildESP(ctx context.Context, esp string, size int64, files map[string]string) error {
	f, err := os.Create(esp)
	if err != nil {
		return fmt.Errorf("test image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("test image: %w", err)
	}
	sectors := size / sectorSize
	if err := run(ctx, "mformat", "-i", esp, "-T", fmt.Sprint(sectors), "-h", "64", "-s", "32",
		"-H", fmt.Sprint(espStart/sectorSize), "-N", fmt.Sprintf("%08x", diskID), "-v", "IRONWORK", "::"); err != nil {
		return err
	}
	if err := run(ctx, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT"); err != nil {
		return err
	}
	for dst, src := range files {
		if err := run(ctx, "mcopy", "-i", esp, "-o", src, dst); err != nil {
			return err
		}
	}
	return nil
}

// writeDisk assembles the image: MBR with GRUB's boot.img and one active ESP partition,
// core.img from sector 1 (the blocklists patched as grub-bios-setup would for an embedded
// core), the ESP at 1 MiB. It returns the sha256 of the whole image.
func writeDisk(out string, size int64, corePath, espPath string) (string, error) {
	boot, err := os.ReadFile(filepath.Join(grubPCDir, "boot.img"))
	if err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	core, err := os.ReadFile(corePath)
	if err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	if len(boot) != sectorSize {
		return "", fmt.Errorf("test image: boot.img is %d bytes, want 512", len(boot))
	}
	if len(core) < sectorSize || len(core) > espStart-sectorSize {
		return "", fmt.Errorf("test image: core.img is %d bytes, does not fit before the ESP", len(core))
	}
	coreSectors := (len(core) + sectorSize - 1) / sectorSize
	core = append(core, make([]byte, coreSectors*sectorSize-len(core))...)
	mbr, err := bootSector(boot, uint32((size-espStart)/sectorSize))
	if err != nil {
		return "", err
	}
	// diskboot.img's blocklist (the last 12 bytes of core.img's first sector): the rest of
	// core.img starts at sector 2 and is coreSectors-1 long.
	bl := core[sectorSize-12:]
	binary.LittleEndian.PutUint64(bl[0:8], 2)
	binary.LittleEndian.PutUint16(bl[8:10], uint16(coreSectors-1))

	esp, err := os.Open(espPath)
	if err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	defer esp.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".testimage-*")
	if err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	gap := make([]byte, espStart-sectorSize-len(core))
	for _, b := range [][]byte{mbr, core, gap} {
		if _, err := w.Write(b); err != nil {
			return "", fmt.Errorf("test image: %w", err)
		}
	}
	n, err := io.Copy(w, esp)
	if err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	if n != size-espStart {
		return "", fmt.Errorf("test image: ESP is %d bytes, want %d", n, size-espStart)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("test image: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// bootSector is GRUB's boot.img with core.img at sector 1 and the boot-drive check disabled
// (as grub-bios-setup does for hard disks), then the disk signature and a partition table
// with one active ESP from 1 MiB of espSectors sectors; slots 2-4 stay free.
func bootSector(boot []byte, espSectors uint32) ([]byte, error) {
	const (
		kernelSector = 0x5c
		driveCheck   = 0x66
	)
	if boot[510] != 0x55 || boot[511] != 0xaa || boot[driveCheck] != 0xeb {
		return nil, errors.New("test image: boot.img is not GRUB 2's i386-pc boot sector")
	}
	mbr := make([]byte, sectorSize)
	copy(mbr, boot[:440])
	binary.LittleEndian.PutUint64(mbr[kernelSector:], 1)
	mbr[driveCheck], mbr[driveCheck+1] = 0x90, 0x90
	binary.LittleEndian.PutUint32(mbr[440:], diskID)
	e := mbr[446:462]
	e[0] = 0x80
	copy(e[1:4], []byte{0xfe, 0xff, 0xff}) // CHS unused: LBA only
	e[4] = mbrTypeESP
	copy(e[5:8], []byte{0xfe, 0xff, 0xff})
	binary.LittleEndian.PutUint32(e[8:], espStart/sectorSize)
	binary.LittleEndian.PutUint32(e[12:], espSectors)
	mbr[510], mbr[511] = 0x55, 0xaa
	return mbr, nil
}
