package testimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ironwork/ironwork/internal/ramdisk"
)

// PartitionRootUUID is the file system UUID of the partition image's root: its GRUB (BIOS,
// by grub-install) and its EFI GRUB (embedded configuration) find the root by it.
const PartitionRootUUID = "2ae1e5f6-1f0b-4c2e-9b0e-1c0a2b3c4d5e"

// DefaultPartitionSize is the partition image's size when PartitionOptions.Size is 0.
const DefaultPartitionSize = 64 << 20

// Partition is what BuildPartition made: the root file system image and the kernel and
// initramfs that go with it in instance_info (kernel, ramdisk).
type Partition struct {
	Image, Kernel, Initramfs string
	SHA256                   string // of Image
	Size                     int64
}

// hostGRUBInstall is the grub-install the image carries (Debian's grub-common), with the
// i386-pc modules of grub-pc-bin.
const hostGRUBInstall = "/usr/sbin/grub-install"

// BuildPartition writes a partition image into dir: root.img, an ext4 file system (mkfs.ext4
// -d, UUID PartitionRootUUID) holding /boot/vmlinuz and /boot/initrd.img (the same instance
// as Build's), /boot/grub/grub.cfg, the host's grub-install with its libraries and
// /usr/lib/grub/i386-pc (so the agent can run it chrooted for BIOS), and
// /boot/efi/EFI/ironwork/grubx64.efi (GRUB x86_64-efi finding the root by its UUID) for UEFI;
// and vmlinuz and initrd.img beside it. Tools: mkfs.ext4 (e2fsprogs), grub-mkimage with
// grub-pc-bin and grub-efi-amd64-bin, ldd, go unless opts.Init is given.
func BuildPartition(ctx context.Context, dir string, opts Options) (Partition, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	size := opts.Size
	if size == 0 {
		size = DefaultPartitionSize
	}
	if opts.WorkDir == "" {
		return Partition{}, errors.New("partition image: WorkDir is required")
	}
	work, err := os.MkdirTemp(opts.WorkDir, "partimage-")
	if err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	defer os.RemoveAll(work)
	initBin := opts.Init
	if initBin == "" {
		initBin = filepath.Join(work, "init")
		if err := buildInit(ctx, initBin, "amd64"); err != nil {
			return Partition{}, err
		}
	}
	rd, err := ramdisk.Build(ctx, ramdisk.BuildConfig{KernelDir: opts.KernelDir, Agent: initBin, Output: filepath.Join(work, "ramdisk"),
		Modules: Modules(), DiskTools: []string{}})
	if err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	root := filepath.Join(work, "root")
	for _, d := range []string{"boot/grub", "boot/efi/EFI/ironwork", "dev", "proc", "sys", "tmp", "usr/sbin", "usr/lib/grub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return Partition{}, fmt.Errorf("partition image: %w", err)
		}
	}
	for src, dst := range map[string]string{rd.KernelPath: "boot/vmlinuz", rd.InitramfsPath: "boot/initrd.img"} {
		if err := copyFile(src, filepath.Join(root, dst)); err != nil {
			return Partition{}, err
		}
	}
	cfg := "serial --unit=0 --speed=115200\nterminal_output serial console\n" +
		"echo 'ironwork partition image: loading Linux'\n" +
		"linux /boot/vmlinuz " + KernelCmdline + "\ninitrd /boot/initrd.img\nboot\n"
	if err := os.WriteFile(filepath.Join(root, "boot/grub/grub.cfg"), []byte(cfg), 0o644); err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	// BIOS: the agent runs the image's grub-install, which needs its libraries and modules.
	if err := copyWithLibraries(ctx, hostGRUBInstall, root); err != nil {
		return Partition{}, err
	}
	if err := copyTree(grubPCDir, filepath.Join(root, "usr/lib/grub/i386-pc")); err != nil {
		return Partition{}, err
	}
	// UEFI: GRUB for x86_64-efi with its configuration embedded (the ESP holds no grub.cfg).
	efiCfg := filepath.Join(work, "efi.cfg")
	if err := os.WriteFile(efiCfg, []byte("serial --unit=0 --speed=115200\nterminal_output serial\n"+
		"search --no-floppy --fs-uuid --set=root "+PartitionRootUUID+"\n"+
		"echo 'ironwork partition image: loading Linux'\n"+
		"linux ($root)/boot/vmlinuz "+KernelCmdline+"\ninitrd ($root)/boot/initrd.img\nboot\n"), 0o644); err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	if err := run(ctx, "grub-mkimage", "-d", grubEFIDir, "-O", "x86_64-efi", "-o", filepath.Join(root, "boot/efi/EFI/ironwork/grubx64.efi"),
		"-p", "/EFI/ironwork", "-c", efiCfg, "part_gpt", "part_msdos", "ext2", "search", "search_fs_uuid", "linux", "boot", "serial", "terminal", "echo"); err != nil {
		return Partition{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	p := Partition{Image: filepath.Join(dir, "root.img"), Kernel: filepath.Join(dir, "vmlinuz"), Initramfs: filepath.Join(dir, "initrd.img"), Size: size}
	tmp := p.Image + ".tmp"
	_ = os.Remove(tmp)
	if err := run(ctx, "mkfs.ext4", "-q", "-F", "-U", PartitionRootUUID, "-L", "ironwork-root", "-d", root, tmp, fmt.Sprintf("%dk", size/1024)); err != nil {
		return Partition{}, err
	}
	if err := os.Rename(tmp, p.Image); err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	for src, dst := range map[string]string{rd.KernelPath: p.Kernel, rd.InitramfsPath: p.Initramfs} {
		if err := copyFile(src, dst); err != nil {
			return Partition{}, err
		}
	}
	f, err := os.Open(p.Image)
	if err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Partition{}, fmt.Errorf("partition image: %w", err)
	}
	p.SHA256 = hex.EncodeToString(h.Sum(nil))
	log.Info("partition image built", "path", p.Image, "bytes", size, "sha256", p.SHA256, "took", time.Since(start).Round(time.Millisecond))
	return p, nil
}

// copyWithLibraries copies an executable into root at the same path, with the shared
// libraries and loader ldd lists for it.
func copyWithLibraries(ctx context.Context, bin, root string) error {
	files := []string{bin}
	out, err := exec.CommandContext(ctx, "ldd", bin).Output()
	if err != nil {
		return fmt.Errorf("partition image: ldd %s: %w", bin, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, field := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(field, "/") {
				files = append(files, field)
			}
		}
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(root, f)); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the regular files of src into dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

// copyFile copies src (following links) to dst, creating dst's directory; the mode is kept.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("partition image: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("partition image: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("partition image: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("partition image: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("partition image: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("partition image: %w", err)
	}
	return nil
}
