package pxe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// RamdiskDeploy is the name of the deploy interface whose instance is a kernel and ramdisk
// (or an ISO) booted over the network on every boot.
const RamdiskDeploy = "ramdisk"

// Record modes beyond "ramdisk" (the deploy agent) and "local" (the disk).
const (
	modeInstanceRamdisk = "instance-ramdisk" // the instance's own kernel and ramdisk
	modeInstanceISO     = "instance-iso"     // the instance's boot ISO, booted by iPXE's sanboot
)

// bootISOFile is the instance ISO in a node's directory.
const bootISOFile = "boot.iso"

// CanBootRamdiskInstance says the interface boots instances of the ramdisk deploy interface
// (Ironic's ramdisk_boot capability).
func (b *Interface) CanBootRamdiskInstance() bool { return true }

// ramdiskInstance reports whether the node's instance is booted from the network.
func ramdiskInstance(n *ironwork.Node) bool {
	return n.Interfaces[ironwork.DeployInterface] == RamdiskDeploy
}

// ValidateRamdiskInstance checks a ramdisk deploy's instance_info: kernel and ramdisk (local
// files only inside dirs), or boot_iso; ramdisk_kernel_arguments one printable line.
func ValidateRamdiskInstance(n *ironwork.Node, dirs []string, iface string) error {
	str := func(k string) string { s, _ := n.InstanceInfo[k].(string); return s }
	kernel, ramdisk, iso := str("kernel"), str("ramdisk"), str("boot_iso")
	switch {
	case iso != "" && (kernel != "" || ramdisk != ""):
		return errors.New("instance_info.boot_iso and kernel/ramdisk exclude each other: give one or the other")
	case iso != "":
		if iface != IPXE {
			return fmt.Errorf("instance_info.boot_iso is booted by iPXE's sanboot: use the ipxe boot interface, not %s", iface)
		}
		if _, err := SourceURL(iso, dirs); err != nil {
			return fmt.Errorf("instance_info.boot_iso: %w", err)
		}
	case kernel == "" || ramdisk == "":
		return errors.New("the ramdisk deploy interface needs instance_info.kernel and instance_info.ramdisk (or boot_iso)")
	default:
		for k, v := range map[string]string{"kernel": kernel, "ramdisk": ramdisk} {
			if _, err := SourceURL(v, dirs); err != nil {
				return fmt.Errorf("instance_info.%s: %w", k, err)
			}
		}
	}
	if !printable(str("ramdisk_kernel_arguments")) {
		return errors.New("instance_info.ramdisk_kernel_arguments must be one line of printable characters")
	}
	return nil
}

// prepareRamdiskInstance links the instance's kernel and ramdisk (or ISO) into the node's
// directory and records that every network boot loads them.
func (b *Interface) prepareRamdiskInstance(ctx context.Context, t *conductor.Task) error {
	n := t.Node
	if err := ValidateRamdiskInstance(n, b.cfg.FileDirs, b.name); err != nil {
		return err
	}
	dir := NodeDir(b.cfg.Root, n.UUID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove boot files of node %s: %w", n.UUID, err)
	}
	str := func(k string) string { s, _ := n.InstanceInfo[k].(string); return s }
	files := [][2]string{{"kernel", kernelFile}, {"ramdisk", ramdiskFile}}
	mode := modeInstanceRamdisk
	if str("boot_iso") != "" {
		files, mode = [][2]string{{"boot_iso", bootISOFile}}, modeInstanceISO
	}
	for _, f := range files {
		u, _ := b.sourceURL(str(f[0]))
		if err := b.images.Link(ctx, u, "", filepath.Join(dir, f[1])); err != nil {
			return fmt.Errorf("prepare instance %s of node %s: %w", f[0], n.UUID, err)
		}
	}
	rec := record{Mode: mode, BootMode: BootMode(n, b.cfg.DefaultBootMode), Iface: b.name, Params: str("ramdisk_kernel_arguments")}
	if err := t.Save(ctx, rec.save); err != nil {
		return err
	}
	dev := conductor.BootPXE
	if b.name == HTTP {
		dev = conductor.BootUEFIHTTP
	}
	// Every boot of the instance is a network boot.
	return b.setBootDevice(ctx, t, dev, true)
}

// instanceScript boots the instance's kernel and ramdisk, or sanboots its ISO.
func (r *Resolver) instanceScript(b *strings.Builder, t Target, mac string) {
	base := strings.TrimRight(r.Cfg.HTTPURL, "/")
	if t.record.Iface == PXE && r.Cfg.TFTPServer != "" {
		base = "tftp://" + r.Cfg.TFTPServer
	}
	dir := base + "/nodes/" + t.Node + "/"
	if t.record.Mode == modeInstanceISO {
		fmt.Fprintf(b, "echo Ironwork: node %s boots its instance ISO\n", t.Node)
		fmt.Fprintf(b, "sanboot --no-describe %s%s || goto failed\n", dir, bootISOFile)
	} else {
		params := []string{"initrd=" + ramdiskFile, "BOOTIF=01-" + strings.ReplaceAll(strings.ToLower(mac), ":", "-")}
		if t.record.Params != "" {
			params = append(params, t.record.Params)
		}
		fmt.Fprintf(b, "echo Ironwork: node %s boots its instance ramdisk (%s)\n", t.Node, t.record.BootMode)
		for try := 1; try <= loadTries; try++ {
			if try > 1 {
				fmt.Fprintf(b, "echo Ironwork: loading the instance failed, try %d of %d in 2 seconds\nsleep 2\n", try, loadTries)
			}
			fmt.Fprintf(b, "kernel --name %s %s%s %s && initrd --name %s %s%s && boot ||\n",
				kernelFile, dir, kernelFile, strings.Join(params, " "), ramdiskFile, dir, ramdiskFile)
		}
	}
	fmt.Fprintf(b, ":failed\necho Ironwork: could not boot the instance of node %s; rebooting in 10 seconds\nsleep 10\nreboot\n", t.Node)
}
