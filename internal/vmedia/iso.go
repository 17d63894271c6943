// Package vmedia builds the boot ISOs of virtual media boot: an ISO 9660 image, labelled
// VMEDIA_BOOT_ISO as Ironic labels its own, that BIOS and UEFI firmware boot from a virtual
// CD (El Torito), holding the deploy kernel and ramdisk, the GRUB configuration that starts
// them with the agent's kernel parameters, and the node's network_data as
// openstack/latest/network_data.json for an agent on a network with no DHCP.
//
// The boot loaders are GRUB's, made once per conductor by grub-mkimage from Debian's
// grub-pc-bin and grub-efi-amd64-bin (the EFI System Partition image with mtools): they carry
// only a small configuration that finds the ISO and reads the node's own grub.cfg from it,
// so one pair serves every node. The package writes only below the directories it is given
// and knows nothing of Redfish or of nodes beyond what goes on the ISO.
package vmedia

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ironwork/ironwork/internal/configdrive"
)

// Label is the volume label of the boot ISOs, Ironic's: the agent finds the CD by it.
const Label = "VMEDIA_BOOT_ISO"

// Paths on the ISO.
const (
	KernelPath      = "ironwork/kernel"
	RamdiskPath     = "ironwork/ramdisk"
	ConfigPath      = "ironwork/grub.cfg"
	NetworkDataPath = "openstack/latest/network_data.json"
	biosImagePath   = "boot/bios.img"
	efiImagePath    = "boot/efiboot.img"
)

// Where the GRUB files come from (Debian packages grub-pc-bin and grub-efi-amd64-bin).
const (
	grubPCDir  = "/usr/lib/grub/i386-pc"
	grubEFIDir = "/usr/lib/grub/x86_64-efi"
)

// grubModules go into both loaders: reading the CD, finding it, Linux, the serial console.
var grubModules = []string{"iso9660", "part_msdos", "part_gpt", "fat", "search", "search_fs_file", "configfile",
	"normal", "test", "linux", "boot", "serial", "terminal", "echo"}

// embedded is the configuration built into both loaders: find the ISO by its configuration
// file (under UEFI the loader runs from the ESP image, not the ISO) and read that file.
const embedded = "search --no-floppy --set=root --file /" + ConfigPath + "\nconfigfile /" + ConfigPath + "\n"

// Loaders are the two boot images of every boot ISO: GRUB's i386-pc-eltorito image for BIOS
// and an EFI System Partition image holding GRUB as EFI/BOOT/BOOTX64.EFI for UEFI.
type Loaders struct {
	BIOS []byte
	EFI  []byte
}

// ErrMissingTools is returned when the GRUB images or mtools the loaders are made with are
// not installed.
var ErrMissingTools = errors.New("the boot loaders of virtual media need grub-mkimage (grub-common), grub-pc-bin, grub-efi-amd64-bin and mtools")

// LoadLoaders returns the loaders kept in dir, making them first when they are not there.
// Callers serialise calls for one dir.
func LoadLoaders(ctx context.Context, dir string) (Loaders, error) {
	bios, efi := filepath.Join(dir, "bios.img"), filepath.Join(dir, "efiboot.img")
	var l Loaders
	var err1, err2 error
	l.BIOS, err1 = os.ReadFile(bios)
	l.EFI, err2 = os.ReadFile(efi)
	if err1 == nil && err2 == nil {
		return l, nil
	}
	for _, need := range []string{grubPCDir, grubEFIDir} {
		if _, err := os.Stat(need); err != nil {
			return Loaders{}, fmt.Errorf("%w: %s: %w", ErrMissingTools, need, err)
		}
	}
	for _, tool := range []string{"grub-mkimage", "mformat", "mmd", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Loaders{}, fmt.Errorf("%w: %w", ErrMissingTools, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Loaders{}, fmt.Errorf("make boot loaders: %w", err)
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return Loaders{}, fmt.Errorf("make boot loaders: %w", err)
	}
	defer os.RemoveAll(work)
	cfg := filepath.Join(work, "embedded.cfg")
	if err := os.WriteFile(cfg, []byte(embedded), 0o644); err != nil {
		return Loaders{}, fmt.Errorf("make boot loaders: %w", err)
	}
	tmpBIOS := filepath.Join(work, "bios.img")
	if err := run(ctx, "grub-mkimage", append([]string{"-d", grubPCDir, "-O", "i386-pc-eltorito", "-o", tmpBIOS,
		"-p", "/boot/grub", "-c", cfg, "biosdisk"}, grubModules...)...); err != nil {
		return Loaders{}, err
	}
	grubEFI := filepath.Join(work, "BOOTX64.EFI")
	if err := run(ctx, "grub-mkimage", append([]string{"-d", grubEFIDir, "-O", "x86_64-efi", "-o", grubEFI,
		"-p", "/EFI/BOOT", "-c", cfg}, grubModules...)...); err != nil {
		return Loaders{}, err
	}
	st, err := os.Stat(grubEFI)
	if err != nil {
		return Loaders{}, fmt.Errorf("make boot loaders: %w", err)
	}
	// The ESP: the loader plus room for FAT's own structures, in whole MiB.
	size := (st.Size() + 512<<10 + 1<<20 - 1) / (1 << 20) * (1 << 20)
	tmpEFI := filepath.Join(work, "efiboot.img")
	f, err := os.Create(tmpEFI)
	if err == nil {
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return Loaders{}, fmt.Errorf("make the EFI System Partition image: %w", err)
	}
	if err := run(ctx, "mformat", "-i", tmpEFI, "-T", fmt.Sprint(size/512), "-h", "64", "-s", "32", "-v", "IRONWORK", "::"); err != nil {
		return Loaders{}, err
	}
	if err := run(ctx, "mmd", "-i", tmpEFI, "::/EFI", "::/EFI/BOOT"); err != nil {
		return Loaders{}, err
	}
	if err := run(ctx, "mcopy", "-i", tmpEFI, grubEFI, "::/EFI/BOOT/BOOTX64.EFI"); err != nil {
		return Loaders{}, err
	}
	if err := os.Rename(tmpBIOS, bios); err != nil {
		return Loaders{}, fmt.Errorf("make boot loaders: %w", err)
	}
	if err := os.Rename(tmpEFI, efi); err != nil {
		return Loaders{}, fmt.Errorf("make boot loaders: %w", err)
	}
	return LoadLoaders(ctx, dir)
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "MTOOLS_NO_VFAT=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make boot loaders: %s: %w: %s", name, err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Boot is what one node's boot ISO holds.
type Boot struct {
	Kernel, Ramdisk []byte
	// Params are the kernel parameters, in order; each one a printable word with no quote.
	Params []string
	// NetworkData is the node's network_data (Ironic's format), nil for none.
	NetworkData map[string]any
}

// ErrBadParam is returned for a kernel parameter that cannot go on a GRUB command line.
var ErrBadParam = errors.New("a kernel parameter must be printable ASCII with no space or quote")

// ISO builds the boot ISO of b with the loaders l.
func ISO(b Boot, l Loaders) ([]byte, error) {
	if len(b.Kernel) == 0 || len(b.Ramdisk) == 0 {
		return nil, errors.New("build boot ISO: the kernel and the ramdisk are required")
	}
	if len(l.BIOS) == 0 || len(l.EFI) == 0 {
		return nil, errors.New("build boot ISO: the boot loaders are missing")
	}
	cfg, err := grubConfig(b.Params)
	if err != nil {
		return nil, fmt.Errorf("build boot ISO: %w", err)
	}
	files := []configdrive.File{
		{Path: biosImagePath, Data: l.BIOS}, {Path: efiImagePath, Data: l.EFI},
		{Path: KernelPath, Data: b.Kernel}, {Path: RamdiskPath, Data: b.Ramdisk}, {Path: ConfigPath, Data: []byte(cfg)},
	}
	if b.NetworkData != nil {
		nd, err := json.Marshal(b.NetworkData)
		if err != nil {
			return nil, fmt.Errorf("build boot ISO: network_data: %w", err)
		}
		files = append(files, configdrive.File{Path: NetworkDataPath, Data: nd})
	}
	img, err := configdrive.BootableISO(Label, files, configdrive.ElTorito{BIOS: biosImagePath, EFI: efiImagePath})
	if err != nil {
		return nil, fmt.Errorf("build boot ISO: %w", err)
	}
	return img, nil
}

// grubConfig starts the kernel with params, every one single-quoted (GRUB expands nothing
// inside single quotes). GRUB's messages go to the serial port too, so a failing boot shows
// why; under UEFI only there, as OVMF already copies its console to the serial port.
func grubConfig(params []string) (string, error) {
	quoted := make([]string, 0, len(params))
	for _, p := range params {
		if p == "" || !wordOK(p) {
			return "", fmt.Errorf("%w: %q", ErrBadParam, p)
		}
		quoted = append(quoted, "'"+p+"'")
	}
	return "serial --unit=0 --speed=115200\n" +
		"if [ \"$grub_platform\" = efi ]; then terminal_output serial; else terminal_output serial console; fi\n" +
		"echo 'Ironwork: booting the deploy ramdisk from virtual media'\n" +
		"linux /" + KernelPath + " " + strings.Join(quoted, " ") + "\n" +
		"initrd /" + RamdiskPath + "\nboot\n", nil
}

func wordOK(s string) bool {
	for _, r := range s {
		if r <= 0x20 || r > 0x7e || r == '\'' || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}
