package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ironwork/ironwork/internal/lab/testimage"
	"github.com/ironwork/ironwork/internal/ramdisk"
)

// ImageSizeARM64 is the arm64 test image's size: Debian's arm64 kernel is an uncompressed
// Image of about 32 MiB, more than the x86 image's whole ESP.
const ImageSizeARM64 = 80 << 20

// hasARM64 reports whether a machine of the lab is arm64.
func (o *Options) hasARM64() bool {
	for _, n := range o.Nodes {
		if n.Arch == ArchARM64 {
			return true
		}
	}
	return false
}

// checkARM64 checks the arm64 machines' specs and what they need on this machine.
func (o *Options) checkARM64() error {
	var errs []error
	for _, n := range o.Nodes {
		if n.Arch != "" && n.Arch != ArchARM64 {
			errs = append(errs, fmt.Errorf("machine %s: arch %q is neither \"\" (x86_64) nor %s", n.Name, n.Arch, ArchARM64))
		}
	}
	if !o.hasARM64() {
		return errors.Join(errs...)
	}
	for _, n := range o.Nodes {
		if n.Arch == ArchARM64 && (n.Firmware != "uefi" || n.Discover || n.Boot == BootVirtualMedia) {
			errs = append(errs, fmt.Errorf("machine %s: arm64 machines boot UEFI from the network (firmware uefi, no discovery, no virtual media)", n.Name))
		}
	}
	if o.Layout == LayoutProduction {
		errs = append(errs, errors.New("arm64 machines are offered in the lab layout only"))
	}
	return errors.Join(append(errs, CheckARM64(o.KernelDirARM64))...)
}

// upARM64 builds what arm64 machines boot: the arm64 deploy ramdisk in rd/arm64 and the
// arm64 test image in imageDir (image-arm64.raw, recorded in the state), and returns the
// server's configuration lines for them: the arm64 GRUB loader and the deploy ramdisk by
// cpu_arch.
func upARM64(ctx context.Context, st *State, opts Options, rd, imageDir string, logf func(string, ...any)) (string, error) {
	out := filepath.Join(rd, "arm64")
	kernel, initrd := filepath.Join(out, ramdisk.KernelName), filepath.Join(out, ramdisk.InitramfsName)
	if !exists(kernel) || !exists(initrd) {
		if opts.AgentARM64 == "" {
			return "", errors.New("the lab has no arm64 deploy ramdisk yet and no arm64 ironwork-agent binary (Options.AgentARM64) to build it with")
		}
		logf("building the arm64 deploy ramdisk from %s", opts.KernelDirARM64)
		if _, err := ramdisk.Build(ctx, ramdisk.BuildConfig{KernelDir: opts.KernelDirARM64, Agent: opts.AgentARM64, Output: out, Arch: ramdisk.ARM64}); err != nil {
			return "", fmt.Errorf("build the arm64 deploy ramdisk: %w", err)
		}
	}
	for _, d := range []string{imageDir, filepath.Join(st.Dir, "work")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	logf("building the arm64 test OS image")
	img := filepath.Join(imageDir, "image-arm64.raw")
	sum, err := testimage.Build(ctx, img, testimage.Options{KernelDir: opts.KernelDirARM64, WorkDir: filepath.Join(st.Dir, "work"),
		Arch: testimage.ArchARM64, GrubARM64Dir: filepath.Join(GrubARM64Dir, "arm64-efi"), Size: ImageSizeARM64,
		Log: slog.New(slog.NewTextHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return "", fmt.Errorf("build the arm64 test image: %w", err)
	}
	if err := st.update(func(s *State) {
		s.ImageARM64, s.ImageARM64SH = "http://"+st.Subnet+".1:8080/lab/image-arm64.raw", sum
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("arm64_boot_loader = %q\ndeploy_kernel_by_arch = { aarch64 = %q }\ndeploy_ramdisk_by_arch = { aarch64 = %q }\n",
		filepath.Join(GrubARM64Dir, "grubnetaa64.efi"), kernel, initrd), nil
}
