package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ErrBootloader is wrapped by every error that means the image's boot loader cannot be
// installed (no grub-install in the image, grub-install failing, no EFI loader to put on
// the ESP, no root partition with that UUID).
var ErrBootloader = errors.New("cannot install the boot loader")

// BootloaderRequest is image.install_bootloader's work: the disk a partition image was
// written to and how the node boots.
type BootloaderRequest struct {
	Disk     string
	BootMode string // "bios" or "uefi"
	// RootUUID finds the root partition: its file system UUID or its PARTUUID.
	RootUUID string
	// ESPUUID finds the EFI system partition the same way; "" takes the first partition of
	// the ESP type.
	ESPUUID string
	// SysRoot holds /dev, /proc and /sys, bound into the image for grub-install ("/").
	SysRoot string
	// EFIVars is efivarfs, where the boot entry is written: SystemEFIVars in a ramdisk
	// (mounted when it is not), a directory in tests. "" or a missing directory: only the
	// removable-media path \EFI\BOOT\BOOTX64.EFI is set up.
	EFIVars string
	// WorkDir holds the temporary mount points ("" = os.TempDir()).
	WorkDir string
	// ToolDir is where mtools is looked for before $PATH ("" = $PATH only).
	ToolDir string
	Logger  *slog.Logger
}

// SystemEFIVars is where Linux mounts efivarfs.
const SystemEFIVars = "/sys/firmware/efi/efivars"

// BootloaderResult says what was installed.
type BootloaderResult struct {
	Method    string // "grub-install i386-pc" or "esp"
	Loader    string // UEFI: the loader the boot entry names (\EFI\debian\shimx64.efi)
	BootEntry string // UEFI: the Boot#### variable written; "" when efivarfs was missing
	Duration  time.Duration
}

// InstallBootloader installs the boot loader of the partition image on req.Disk, as IPA
// does. BIOS: the root partition is mounted, /dev, /proc and /sys bound into it, and the
// image's own grub-install (grub2-install) run chrooted for i386-pc onto the disk, then its
// grub-mkconfig when the image has one. UEFI: the image's /boot/efi tree is copied onto the
// ESP, \EFI\BOOT\BOOTX64.EFI set up from the image's shim or GRUB when the image has none,
// and a Boot#### entry for the loader put first in BootOrder through efivarfs. On failure
// the disk's first MiB is zeroed, so the node does not boot half an installation.
func InstallBootloader(ctx context.Context, req BootloaderRequest) (res BootloaderResult, err error) {
	start := time.Now()
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if req.SysRoot == "" {
		req.SysRoot = "/"
	}
	if req.WorkDir == "" {
		req.WorkDir = os.TempDir()
	}
	defer func() {
		res.Duration = time.Since(start)
		if err == nil {
			log.Info("boot loader installed", logKeyTarget, req.Disk, "method", res.Method, "boot_entry", res.BootEntry, logKeyElapsed, res.Duration)
			return
		}
		log.Info("boot loader install failed", logKeyTarget, req.Disk, logKeyError, err)
		if werr := zeroHead(req.Disk); werr != nil {
			err = errors.Join(err, werr)
		}
	}()
	pt, err := PartitionUUIDs(req.Disk)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrBootloader, err)
	}
	root, err := findPartition(req.Disk, pt, req.RootUUID, "")
	if err != nil {
		return res, err
	}
	switch strings.ToLower(req.BootMode) {
	case "", "bios":
		return installGRUBBIOS(ctx, req, root, log)
	case "uefi":
		esp, err := findPartition(req.Disk, pt, req.ESPUUID, gptTypeESP)
		if err != nil {
			return res, err
		}
		return installUEFI(ctx, req, pt, root, esp, log)
	}
	return res, fmt.Errorf("%w: boot mode %q is neither bios nor uefi", ErrBootloader, req.BootMode)
}

// findPartition finds a partition by file system UUID or PARTUUID, or (no UUID given) by
// type.
func findPartition(disk string, pt PartitionTable, id, typ string) (Partition, error) {
	f, err := os.Open(disk)
	if err != nil {
		return Partition{}, fmt.Errorf("%w: %w", ErrBootloader, err)
	}
	defer f.Close()
	for _, p := range pt.Partitions {
		switch {
		case id != "" && (strings.EqualFold(p.UUID, id) || strings.EqualFold(fsUUID(f, p.Start), id)):
			return p, nil
		case id == "" && typ != "" && (strings.EqualFold(p.Type, typ) || (typ == gptTypeESP && p.Type == "ef")):
			return p, nil
		}
	}
	if id == "" {
		return Partition{}, fmt.Errorf("%w: %s has no EFI system partition", ErrBootloader, disk)
	}
	return Partition{}, fmt.Errorf("%w: %s has no partition whose UUID or file system UUID is %s", ErrBootloader, disk, id)
}

// zeroHead zeroes the first MiB of a disk and syncs.
func zeroHead(disk string) error {
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("zero first MiB of %s: %w", disk, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, headSize), 0); err != nil {
		return fmt.Errorf("zero first MiB of %s: %w", disk, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("zero first MiB of %s: %w", disk, err)
	}
	return nil
}

// efiLoaderNames are the EFI loaders images carry, preferred first (shim before GRUB, so
// Secure Boot keeps working).
var efiLoaderNames = []string{"shimx64.efi", "grubx64.efi"}

// espWriter puts directories and files on an ESP.
type espWriter interface {
	mkdir(ctx context.Context, dir string) error
	copy(ctx context.Context, src, dst string) error
}

// populateESP copies the image's /boot/efi tree (src) onto a freshly made ESP and makes
// sure \EFI\BOOT\BOOTX64.EFI exists (from the image's shim or GRUB when the image has
// none). It returns the loader for the boot entry, relative to the ESP ("EFI/debian/shimx64.efi").
func populateESP(ctx context.Context, src string, esp espWriter) (string, error) {
	type file struct{ src, dst string }
	var dirs []string
	var files []file
	seen := map[string]bool{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == src {
				return fs.SkipAll
			}
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			dirs = append(dirs, rel)
		case d.Type().IsRegular():
			files = append(files, file{p, rel})
			seen[strings.ToUpper(rel)] = true
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: read the image's /boot/efi: %w", ErrBootloader, err)
	}
	var loader string
	for _, name := range efiLoaderNames {
		for _, f := range files {
			parts := strings.Split(f.dst, "/")
			if loader == "" && len(parts) == 3 && strings.EqualFold(parts[0], "EFI") && !strings.EqualFold(parts[1], "BOOT") && strings.EqualFold(parts[2], name) {
				loader = f.dst
			}
		}
	}
	const fallback = "EFI/BOOT/BOOTX64.EFI"
	switch {
	case seen[fallback]:
		if loader == "" {
			for _, f := range files {
				if strings.EqualFold(f.dst, fallback) {
					loader = f.dst
				}
			}
		}
	case loader == "":
		return "", fmt.Errorf("%w: the image has no EFI boot loader (no shimx64.efi, grubx64.efi or BOOTX64.EFI under /boot/efi/EFI)", ErrBootloader)
	default:
		// The removable-media path: the loader and, for shim, the GRUB it chains to.
		dir := path.Dir(loader)
		if !seen["EFI"] {
			dirs = append(dirs, "EFI")
		}
		dirs = append(dirs, "EFI/BOOT")
		files = append(files, file{filepath.Join(src, filepath.FromSlash(loader)), fallback})
		for _, extra := range []string{"grubx64.efi", "mmx64.efi", "grub.cfg"} {
			if p := filepath.Join(src, filepath.FromSlash(dir), extra); isFile(p) {
				files = append(files, file{p, "EFI/BOOT/" + extra})
			}
		}
	}
	done := map[string]bool{}
	for _, d := range dirs {
		if done[strings.ToUpper(d)] {
			continue
		}
		done[strings.ToUpper(d)] = true
		if err := esp.mkdir(ctx, d); err != nil {
			return "", fmt.Errorf("%w: %w", ErrBootloader, err)
		}
	}
	for _, f := range files {
		if err := esp.copy(ctx, f.src, f.dst); err != nil {
			return "", fmt.Errorf("%w: %w", ErrBootloader, err)
		}
	}
	return loader, nil
}

// mtoolsESP writes onto the FAT file system at an offset of a disk with mtools, so no
// vfat driver, loop device or partition node is needed.
type mtoolsESP struct {
	bin   string // mtools
	image string // "disk@@offset"
}

func newMtoolsESP(dir, disk string, offset int64) (*mtoolsESP, error) {
	for _, c := range []string{filepath.Join(dir, "mtools"), "mtools"} {
		if dir == "" && c != "mtools" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return &mtoolsESP{bin: p, image: fmt.Sprintf("%s@@%d", disk, offset)}, nil
		}
	}
	return nil, fmt.Errorf("%w: mtools is not in the ramdisk: the ESP cannot be written", ErrBootloader)
}

func (m *mtoolsESP) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, m.bin, args...)
	cmd.Env = []string{"MTOOLS_SKIP_CHECK=1", "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mtools %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mkdir makes dir; one that exists already (a second install) is fine.
func (m *mtoolsESP) mkdir(ctx context.Context, dir string) error {
	err := m.run(ctx, "-c", "mmd", "-i", m.image, "::/"+dir)
	if err != nil && m.run(ctx, "-c", "mdir", "-b", "-i", m.image, "::/"+dir) == nil {
		return nil
	}
	return err
}

func (m *mtoolsESP) copy(ctx context.Context, src, dst string) error {
	return m.run(ctx, "-c", "mcopy", "-o", "-i", m.image, src, "::/"+dst)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// loaderPath turns "EFI/debian/shimx64.efi" into the device path's "\EFI\debian\shimx64.efi".
func loaderPath(rel string) string { return `\` + strings.ReplaceAll(rel, "/", `\`) }
