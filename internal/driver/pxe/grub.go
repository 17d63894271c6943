package pxe

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// GRUB network boot for firmware without an iPXE build: ARM64 UEFI (DHCP architectures 11 and
// 19). The loader (DefaultGrubLoader, built by scripts/grub-arm64.sh) has its prefix on the
// TFTP server, (tftp)/grub, and reads GrubMenuPath there: GrubMenu, written by the conductor
// at start, which asks the HTTP boot server for the booting MAC's configuration
// (/boot/<mac>.grub, GrubConfig). Kernels and ramdisks then come over HTTP, as with iPXE.

// GrubMenuPath is where the loader reads its configuration, relative to the boot root.
const GrubMenuPath = "grub/grub.cfg"

// GrubLoaderName is the arm64 GRUB loader's file name in the boot root, the DHCP server's
// boot file for ARM64 UEFI clients.
const GrubLoaderName = "grubnetaa64.efi"

// grubDevice turns a base URL (http://host:port/path) into GRUB's device and path prefix,
// "(http,host:port)/path"; tftp://host the same with tftp.
func grubDevice(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "tftp") || u.Host == "" {
		return "", fmt.Errorf("GRUB cannot load from %q: want http://host[:port] or tftp://host", base)
	}
	return "(" + u.Scheme + "," + u.Host + ")" + u.Path, nil
}

// GrubMenu is GrubMenuPath's content: load the configuration of the booting NIC's MAC from
// the HTTP boot server; when that fails, leave GRUB so the firmware boots its next entry.
func (r *Resolver) GrubMenu() (string, error) {
	dev, err := grubDevice(r.Cfg.HTTPURL)
	if err != nil {
		return "", err
	}
	return "set timeout=0\n" +
		"echo \"Ironwork: asking " + strings.TrimRight(r.Cfg.HTTPURL, "/") + " what ${net_default_mac} boots\"\n" +
		"configfile " + dev + "/boot/${net_default_mac}.grub\n" +
		"echo \"Ironwork: no configuration for ${net_default_mac}; booting the next device\"\n" +
		"exit\n", nil
}

// GrubConfig renders the GRUB configuration of the node with a MAC address, the GRUB
// counterpart of Script: the deploy (or rescue, inspection) ramdisk, the instance's kernel and
// ramdisk, or leaving GRUB (exit) so the firmware boots the local disk. Unknown MACs and nodes
// that should not network-boot leave GRUB too (discovery needs iPXE and is not offered).
func (r *Resolver) GrubConfig(ctx context.Context, mac string) (string, error) {
	t, err := r.Lookup(ctx, mac)
	if err != nil {
		return "", err
	}
	if hw, err := net.ParseMAC(strings.ReplaceAll(mac, "-", ":")); err == nil {
		mac = hw.String()
	}
	var b strings.Builder
	b.WriteString("set timeout=0\n")
	leave := func(why string) string {
		fmt.Fprintf(&b, "echo \"Ironwork: %s; booting the next device\"\nexit\n", why)
		return b.String()
	}
	switch {
	case !t.Known:
		return leave("no node has a port with MAC " + mac), nil
	case !t.NetBoot:
		return leave("node " + t.Node + " is not meant to network-boot now"), nil
	case t.record.Mode == modeInstanceISO:
		return leave("node " + t.Node + " boots an instance ISO, which the GRUB loader cannot"), nil
	case t.record.Mode != "ramdisk" && t.record.Mode != modeInstanceRamdisk:
		return leave("node " + t.Node + " boots from its local disk"), nil
	}
	base := strings.TrimRight(r.Cfg.HTTPURL, "/")
	if t.record.Iface == PXE && r.Cfg.TFTPServer != "" {
		base = "tftp://" + r.Cfg.TFTPServer
	}
	dev, err := grubDevice(base)
	if err != nil {
		return "", err
	}
	dir := dev + "/nodes/" + t.Node + "/"
	params := []string{"BOOTIF=01-" + strings.ReplaceAll(strings.ToLower(mac), ":", "-")}
	what := "its instance ramdisk"
	if t.record.Mode == "ramdisk" {
		what = "the deploy ramdisk"
		params = append(params, "ipa-api-url="+r.Cfg.APIURL, "ironwork-node="+t.Node, "ironwork-boot-mode="+t.record.BootMode)
		if r.Cfg.KernelParams != "" {
			params = append(params, r.Cfg.KernelParams)
		}
	}
	if t.record.Params != "" {
		params = append(params, t.record.Params)
	}
	fmt.Fprintf(&b, "echo \"Ironwork: node %s boots %s (%s, GRUB)\"\n", t.Node, what, t.record.BootMode)
	// GRUB's script language quotes with single quotes; params are printable ASCII (checked
	// when they are set), and a single quote in them is closed, escaped and reopened.
	fmt.Fprintf(&b, "if linux %s%s %s; then\n  if initrd %s%s; then\n    boot\n  fi\nfi\n",
		dir, kernelFile, grubQuote(strings.Join(params, " ")), dir, ramdiskFile)
	fmt.Fprintf(&b, "echo \"Ironwork: could not load %s of node %s; rebooting in 10 seconds\"\nsleep 10\nreboot\n", what, t.Node)
	return b.String(), nil
}

// grubQuote quotes each word of s for GRUB's shell-like parser.
func grubQuote(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ")
}
