package pxe

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Nodes finds the port with a MAC address and its node.
type Nodes interface {
	PortByAddress(ctx context.Context, mac string) (*ironwork.Port, error)
	GetNodeByID(ctx context.Context, id int64) (*ironwork.Node, error)
	GetPortgroup(ctx context.Context, ident string) (*ironwork.Portgroup, error)
}

// Target is what a MAC address should network-boot now.
type Target struct {
	Known   bool   // a port of an enrolled node has the address
	NetBoot bool   // the port is pxe_enabled and its node is meant to network-boot now
	Node    string // the node's UUID
	// StaticIP is the address the port must get in full DHCP mode, from the port's
	// extra.ip_address; empty when it has none.
	StaticIP string
	// TenantVIF is the VIF attached to the port or to its portgroup (internal_info
	// tenant_vif_port_id): the instance's network identity after deploy.
	TenantVIF string
	record    record
}

// Resolver answers the boot services' questions about a MAC address.
type Resolver struct {
	Nodes Nodes
	Cfg   Config
}

// Lookup tells what mac should boot now.
func (r *Resolver) Lookup(ctx context.Context, mac string) (Target, error) {
	hw, err := net.ParseMAC(strings.ReplaceAll(mac, "-", ":"))
	if err != nil {
		return Target{}, fmt.Errorf("look up port %q: %w", mac, err)
	}
	p, err := r.Nodes.PortByAddress(ctx, hw.String())
	if ironwork.ErrorCode(err) == ironwork.ENOTFOUND {
		return Target{}, nil
	}
	if err != nil {
		return Target{}, fmt.Errorf("look up port %s: %w", mac, err)
	}
	n, err := r.Nodes.GetNodeByID(ctx, p.NodeID)
	if err != nil {
		return Target{}, fmt.Errorf("look up node of port %s: %w", mac, err)
	}
	t := Target{Known: true, Node: n.UUID}
	if ip, _ := p.Extra["ip_address"].(string); net.ParseIP(ip) != nil {
		t.StaticIP = ip
	}
	t.TenantVIF, _ = p.InternalInfo[conductor.TenantVIFKey].(string)
	if t.TenantVIF == "" && p.PortgroupUUID != "" {
		g, err := r.Nodes.GetPortgroup(ctx, p.PortgroupUUID)
		if err != nil {
			return Target{}, fmt.Errorf("look up portgroup of port %s: %w", mac, err)
		}
		t.TenantVIF, _ = g.InternalInfo[conductor.TenantVIFKey].(string)
	}
	t.record, t.NetBoot = recordOf(n)
	t.NetBoot = t.NetBoot && p.PXEEnabled
	return t, nil
}

// Script renders the iPXE script of the node with a MAC address. A MAC that is unknown, or
// whose node should not network-boot now, gets a script that leaves iPXE, so the firmware
// goes on to its next boot device.
func (r *Resolver) Script(ctx context.Context, mac string) (string, error) {
	if mac == UnknownMAC && r.Cfg.Discovery {
		return r.discoveryScript(), nil
	}
	t, err := r.Lookup(ctx, mac)
	if err != nil {
		return "", err
	}
	if hw, err := net.ParseMAC(strings.ReplaceAll(mac, "-", ":")); err == nil {
		mac = hw.String()
	}
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	switch {
	case !t.Known && r.Cfg.Discovery:
		return r.discoveryScript(), nil
	case !t.Known:
		fmt.Fprintf(&b, "echo Ironwork: no node has a port with MAC %s; booting the next device\nexit 1\n", mac)
	case !t.NetBoot:
		fmt.Fprintf(&b, "echo Ironwork: node %s is not meant to network-boot now; booting the next device\nexit 1\n", t.Node)
	case t.record.Mode == "ramdisk":
		r.ramdiskScript(&b, t, mac)
	case t.record.Mode == modeInstanceRamdisk || t.record.Mode == modeInstanceISO:
		r.instanceScript(&b, t, mac)
	default:
		localScript(&b, t)
	}
	return b.String(), nil
}

// ramdiskScript loads the node's kernel and ramdisk and passes the agent its settings.
// Kernel and ramdisk loads are retried a few times: a lost packet must not fail a deploy.
func (r *Resolver) ramdiskScript(b *strings.Builder, t Target, mac string) {
	base := strings.TrimRight(r.Cfg.HTTPURL, "/")
	if t.record.Iface == PXE && r.Cfg.TFTPServer != "" {
		base = "tftp://" + r.Cfg.TFTPServer
	}
	dir := base + "/nodes/" + t.Node + "/"
	// BOOTIF tells the agent which NIC booted, in pxelinux's form.
	params := []string{"initrd=" + ramdiskFile, "BOOTIF=01-" + strings.ReplaceAll(strings.ToLower(mac), ":", "-"),
		"ipa-api-url=" + r.Cfg.APIURL, "ironwork-node=" + t.Node, "ironwork-boot-mode=" + t.record.BootMode}
	if r.Cfg.KernelParams != "" {
		params = append(params, r.Cfg.KernelParams)
	}
	if t.record.Params != "" {
		params = append(params, t.record.Params)
	}
	fmt.Fprintf(b, "echo Ironwork: node %s boots the deploy ramdisk (%s)\n", t.Node, t.record.BootMode)
	for try := 1; try <= loadTries; try++ {
		if try > 1 {
			fmt.Fprintf(b, "echo Ironwork: loading the ramdisk failed, try %d of %d in 2 seconds\nsleep 2\n", try, loadTries)
		}
		fmt.Fprintf(b, "kernel --name %s %s%s %s && initrd --name %s %s%s && boot ||\n",
			kernelFile, dir, kernelFile, strings.Join(params, " "), ramdiskFile, dir, ramdiskFile)
	}
	fmt.Fprintf(b, "echo Ironwork: could not load the ramdisk of node %s; rebooting in 10 seconds\nsleep 10\nreboot\n", t.Node)
}

// loadTries is how often a ramdisk script tries to load its kernel and ramdisk.
const loadTries = 3

// localScript boots the first local disk: BIOS through the disk's boot sector, UEFI by
// leaving iPXE so the firmware boots its next entry.
func localScript(b *strings.Builder, t Target) {
	fmt.Fprintf(b, "echo Ironwork: node %s boots from its local disk\n", t.Node)
	if t.record.BootMode == BIOS {
		b.WriteString("sanboot --no-describe --drive 0x80 || exit 1\n")
		return
	}
	b.WriteString("exit 1\n")
}

// ChainScript is the script served to iPXE loaded by a firmware that got no script URL from
// DHCP (proxy mode, other DHCP servers): it asks for the script of the booting NIC's MAC.
func (r *Resolver) ChainScript() string {
	return fmt.Sprintf("#!ipxe\nchain %s/boot/${netX/mac}.ipxe || exit 1\n", strings.TrimRight(r.Cfg.HTTPURL, "/"))
}

// UnknownMAC is what the script of a machine is asked for by when the DHCP server did not
// know it (/boot/unknown.ipxe): with discovery on, it gets the discovery script.
const UnknownMAC = "unknown"

// DiscoveryDir is the directory under the boot root of the discovery kernel and ramdisk.
const DiscoveryDir = "discovery"

// discoveryScript boots a machine nobody enrolled into the discovery ramdisk: the agent
// inspects it and posts its inventory, and discovery enrols it. The booting NIC and boot mode
// come from iPXE's own variables, as the machine is known by nothing else yet.
func (r *Resolver) discoveryScript() string {
	var b strings.Builder
	dir := strings.TrimRight(r.Cfg.HTTPURL, "/") + "/" + DiscoveryDir + "/"
	b.WriteString("#!ipxe\n")
	b.WriteString("echo Ironwork: unknown machine ${netX/mac}: booting the discovery ramdisk\n")
	b.WriteString("set bootmode bios\niseq ${platform} efi && set bootmode uefi ||\n")
	params := []string{"initrd=" + ramdiskFile, "BOOTIF=01-${netX/mac:hexhyp}", "ipa-api-url=" + r.Cfg.APIURL,
		InspectionCallbackParam(r.Cfg.APIURL), "ironwork-boot-mode=${bootmode}"}
	if r.Cfg.KernelParams != "" {
		params = append(params, r.Cfg.KernelParams)
	}
	for try := 1; try <= loadTries; try++ {
		if try > 1 {
			fmt.Fprintf(&b, "echo Ironwork: loading the ramdisk failed, try %d of %d in 2 seconds\nsleep 2\n", try, loadTries)
		}
		fmt.Fprintf(&b, "kernel --name %s %s%s %s && initrd --name %s %s%s && boot ||\n",
			kernelFile, dir, kernelFile, strings.Join(params, " "), ramdiskFile, dir, ramdiskFile)
	}
	b.WriteString("echo Ironwork: could not load the discovery ramdisk; booting the next device\nexit 1\n")
	return b.String()
}
