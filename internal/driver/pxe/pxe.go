// Package pxe implements the network boot interfaces ipxe, pxe and http. Preparing a ramdisk
// boot links the node's deploy (or rescue) kernel and ramdisk from the image cache into the
// node's directory under the boot root, records in the node what it should boot, and sets the
// boot device; the boot services (DHCP, TFTP, HTTP) read that record when the node asks.
// The three differ in transport: ipxe fetches the kernel and ramdisk over HTTP, pxe over
// TFTP (for networks where nodes cannot reach the HTTP boot server's port), and http boots
// UEFI firmware over HTTP with no TFTP at all (Redfish's UefiHttp boot device).
// The package writes files only below its boot root and never talks to a BMC directly: it
// uses the node's management interface.
package pxe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Names of the boot interfaces.
const (
	IPXE = "ipxe"
	PXE  = "pxe"
	HTTP = "http"
)

// bootKey is the driver_internal_info key that tells the boot services what a node boots.
const bootKey = "ironwork_boot"

// Boot modes.
const (
	BIOS = "bios"
	UEFI = "uefi"
)

// Files a node's directory holds while it boots a ramdisk.
const (
	kernelFile  = "kernel"
	ramdiskFile = "ramdisk"
)

// Images links an image, fetched once into a cache, to dest.
type Images interface {
	Link(ctx context.Context, url, checksum, dest string) error
}

// Config is shared by the boot interfaces of one conductor.
type Config struct {
	// Root is the boot root: the TFTP root and the HTTP boot server's file root. Node files
	// go to Root/nodes/<uuid>/.
	Root string
	// HTTPURL is the HTTP boot server's base URL as nodes reach it (http://10.0.0.1:8080).
	HTTPURL string
	// TFTPServer is the TFTP server's address as nodes reach it, for the pxe interface.
	TFTPServer string
	// APIURL is the API's URL as the deploy agent reaches it (the ipa-api-url parameter).
	APIURL string
	// KernelParams are added to every ramdisk's kernel command line.
	KernelParams string
	// DefaultBootMode is used when nothing about a node says bios or uefi.
	DefaultBootMode string
	// Discovery serves machines nobody enrolled the discovery ramdisk (Root/discovery/kernel
	// and ramdisk), which posts its inventory to the inspection callback.
	Discovery bool
	// FileDirs are the only directories a node's kernel and ramdisk may come from as local
	// files (paths or file:// URLs), as Ironic's [conductor]file_url_allowed_paths: boot files
	// are served to the whole provisioning network without authentication.
	FileDirs []string
	// DeployKernelByArch and DeployRamdiskByArch are the deploy kernel and ramdisk of nodes
	// whose driver_info has none, by properties.cpu_arch (keys in CPUArch's spelling:
	// x86_64, aarch64), as Ironic's [conductor]deploy_kernel_by_arch.
	DeployKernelByArch  map[string]string
	DeployRamdiskByArch map[string]string
}

// Interface is one of the boot interfaces.
type Interface struct {
	name   string
	cfg    Config
	images Images
	log    *slog.Logger
}

var (
	_ conductor.Boot               = (*Interface)(nil)
	_ conductor.Validator          = (*Interface)(nil)
	_ conductor.NetworkBootRetrier = (*Interface)(nil)
)

// New returns the boot interface called name (IPXE, PXE or HTTP).
func New(name string, cfg Config, images Images, log *slog.Logger) (*Interface, error) {
	switch name {
	case IPXE, PXE, HTTP:
	default:
		return nil, fmt.Errorf("unknown network boot interface %q", name)
	}
	if cfg.Root == "" || cfg.HTTPURL == "" {
		return nil, errors.New("network boot needs a boot root and an HTTP boot URL")
	}
	if cfg.DefaultBootMode == "" {
		cfg.DefaultBootMode = UEFI
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Interface{name: name, cfg: cfg, images: images, log: log}, nil
}

// Validate implements conductor.Validator: a node needs a deploy kernel and ramdisk, and the
// http interface needs UEFI.
func (b *Interface) Validate(_ context.Context, t *conductor.Task) error {
	var missing []string
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
		if b.cfg.deployImage(t.Node, k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		where := ""
		if len(b.cfg.DeployKernelByArch)+len(b.cfg.DeployRamdiskByArch) > 0 {
			where = fmt.Sprintf(" (and the conductor's deploy_kernel_by_arch and deploy_ramdisk_by_arch have none for cpu_arch %q)", CPUArch(t.Node))
		}
		return fmt.Errorf("some parameters were missing in node's driver_info: %s%s", strings.Join(missing, ", "), where)
	}
	if p, _ := t.Node.DriverInfo["kernel_append_params"].(string); !printable(p) {
		return errors.New("driver_info.kernel_append_params must be one line of printable characters")
	}
	rk, _ := t.Node.DriverInfo["rescue_kernel"].(string)
	rr, _ := t.Node.DriverInfo["rescue_ramdisk"].(string)
	if (rk == "") != (rr == "") {
		return errors.New("driver_info.rescue_kernel and rescue_ramdisk go together: give both or neither")
	}
	mode := BootMode(t.Node, b.cfg.DefaultBootMode)
	if mode != BIOS && mode != UEFI {
		return fmt.Errorf("boot mode %q is neither bios nor uefi", mode)
	}
	if b.name == HTTP && mode != UEFI {
		return fmt.Errorf("the http boot interface boots UEFI firmware only, and node %s boots in %s mode", t.Node.UUID, mode)
	}
	return nil
}

// BootMode is the mode a node boots in (ironwork.ResolveBootMode).
func BootMode(n *ironwork.Node, def string) string { return ironwork.ResolveBootMode(n, def) }

// record is what a node boots, kept in driver_internal_info[bootKey].
type record struct {
	Mode     string // "ramdisk" or "local"
	BootMode string
	Iface    string
	Params   string // the ramdisk's kernel parameters from the node, if any
}

// save records what a node boots.
func (r record) save(n *ironwork.Node) {
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = ironwork.JSONObject{}
	}
	n.DriverInternalInfo[bootKey] = ironwork.JSONObject{"mode": r.Mode, "boot_mode": r.BootMode, "interface": r.Iface, "kernel_params": r.Params}
}

// clearRecord records that a node is not meant to network-boot.
func clearRecord(n *ironwork.Node) { delete(n.DriverInternalInfo, bootKey) }

// recordOf reads what a node boots; ok is false when it is not meant to network-boot.
func recordOf(n *ironwork.Node) (r record, ok bool) {
	o, _ := n.DriverInternalInfo[bootKey].(map[string]any)
	if o == nil {
		return record{}, false
	}
	str := func(k string) string { s, _ := o[k].(string); return s }
	r = record{Mode: str("mode"), BootMode: str("boot_mode"), Iface: str("interface"), Params: str("kernel_params")}
	return r, r.Mode != ""
}

// NodeDir is the directory of a node's boot files under root.
func NodeDir(root, uuid string) string { return filepath.Join(root, "nodes", uuid) }

// PrepareRamdisk implements conductor.Boot: the node's next network boot loads the deploy
// ramdisk (the rescue ramdisk while rescuing; with the inspection callback while inspecting).
func (b *Interface) PrepareRamdisk(ctx context.Context, t *conductor.Task) error {
	n := t.Node
	kernelKey, ramdiskKey := "deploy_kernel", "deploy_ramdisk"
	if n.ProvisionState == ironwork.Rescuing || n.ProvisionState == ironwork.RescueWait {
		if s, _ := n.DriverInfo["rescue_kernel"].(string); s != "" {
			kernelKey, ramdiskKey = "rescue_kernel", "rescue_ramdisk"
		}
	}
	dir := NodeDir(b.cfg.Root, n.UUID)
	for _, kf := range [][2]string{{kernelKey, kernelFile}, {ramdiskKey, ramdiskFile}} {
		key, file := kf[0], kf[1]
		src := b.cfg.deployImage(n, key)
		if src == "" {
			return fmt.Errorf("node %s has no %s in driver_info, nor the conductor one for its cpu_arch %q", n.UUID, key, CPUArch(n))
		}
		u, err := b.sourceURL(src)
		if err != nil {
			return fmt.Errorf("prepare %s of node %s: %w", key, n.UUID, err)
		}
		if err := b.images.Link(ctx, u, "", filepath.Join(dir, file)); err != nil {
			return fmt.Errorf("prepare %s of node %s: %w", key, n.UUID, err)
		}
	}
	params, _ := n.DriverInfo["kernel_append_params"].(string)
	if !printable(params) {
		// A line break would add commands to the node's iPXE script.
		return fmt.Errorf("driver_info.kernel_append_params of node %s must be one line of printable characters", n.UUID)
	}
	if n.ProvisionState == ironwork.Inspecting || n.ProvisionState == ironwork.InspectWait {
		// The agent posts its inventory there (IPA's parameter), then goes on as usual.
		if b.cfg.APIURL == "" {
			return fmt.Errorf("node %s cannot be inspected: this conductor has no API URL for the agent's inspection callback", n.UUID)
		}
		params = strings.TrimSpace(InspectionCallbackParam(b.cfg.APIURL) + " " + params)
	}
	rec := record{Mode: "ramdisk", BootMode: BootMode(n, b.cfg.DefaultBootMode), Iface: b.name, Params: params}
	if err := t.Save(ctx, rec.save); err != nil {
		return err
	}
	return b.RetryRamdiskBoot(ctx, t)
}

// RetryRamdiskBoot implements conductor.NetworkBootRetrier: the node's next boot is its network
// boot again (PXE, or UEFI HTTP for the http interface), as PrepareRamdisk set it; the files it
// boots are still in place.
func (b *Interface) RetryRamdiskBoot(ctx context.Context, t *conductor.Task) error {
	dev := conductor.BootPXE
	if b.name == HTTP {
		dev = conductor.BootUEFIHTTP
	}
	return b.setBootDevice(ctx, t, dev, persistent(t.Node, false))
}

// InspectionCallbackParam is the kernel parameter that tells the agent where to post its
// inventory: the API's /v1/continue_inspection.
func InspectionCallbackParam(apiURL string) string {
	return "ipa-inspection-callback-url=" + strings.TrimRight(apiURL, "/") + "/v1/continue_inspection"
}

// sourceURL turns a kernel or ramdisk source into a URL (SourceURL).
func (b *Interface) sourceURL(s string) (string, error) { return SourceURL(s, b.cfg.FileDirs) }

// SourceURL turns a kernel or ramdisk source into a URL: http(s) URLs as they are, local
// files (paths, file:// URLs) only inside dirs. Ironic's Glance image IDs are not supported.
func SourceURL(s string, dirs []string) (string, error) {
	p, isFile := strings.CutPrefix(s, "file://")
	if !isFile && !strings.HasPrefix(s, "/") {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			return s, nil
		}
		return "", fmt.Errorf("%q is neither an http(s) URL nor an absolute path", s)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		return "", fmt.Errorf("boot file %s: %w", p, err)
	}
	for _, d := range dirs {
		if rd, err := filepath.EvalSymlinks(filepath.Clean(d)); err == nil && (real == rd || strings.HasPrefix(real, rd+string(filepath.Separator))) {
			return "file://" + real, nil
		}
	}
	return "", fmt.Errorf("boot file %s is outside the directories local boot files may come from (file_url_allowed_paths: %s)",
		p, strings.Join(dirs, ", "))
}

// Persistent applies driver_info's force_persistent_boot_device (Always, Never, Default) to
// def, the boot interface's own choice.
func Persistent(n *ironwork.Node, def bool) bool { return persistent(n, def) }

// persistent applies driver_info's force_persistent_boot_device (Always, Never, Default).
func persistent(n *ironwork.Node, def bool) bool {
	switch v := n.DriverInfo["force_persistent_boot_device"].(type) {
	case string:
		switch strings.ToLower(v) {
		case "always", "true":
			return true
		case "never", "false":
			return false
		}
	case bool:
		return v
	}
	return def
}

func (b *Interface) setBootDevice(ctx context.Context, t *conductor.Task, dev string, persistent bool) error {
	m, ok := t.Driver.Management()
	if !ok {
		return nil
	}
	if err := m.SetBootDevice(ctx, t, conductor.BootDevice{Device: dev, Persistent: persistent}); err != nil {
		return fmt.Errorf("set boot device of node %s to %s: %w", t.Node.UUID, dev, err)
	}
	return nil
}

// CleanUpRamdisk implements conductor.Boot: the ramdisk's files go and the node is no longer
// served a ramdisk.
func (b *Interface) CleanUpRamdisk(ctx context.Context, t *conductor.Task) error {
	if err := os.RemoveAll(NodeDir(b.cfg.Root, t.Node.UUID)); err != nil {
		return fmt.Errorf("remove boot files of node %s: %w", t.Node.UUID, err)
	}
	return t.Save(ctx, clearRecord)
}

// PrepareInstance implements conductor.Boot: the instance boots from the local disk, and a
// node that network-boots anyway is told to boot its disk. An instance of the ramdisk deploy
// interface boots its kernel and ramdisk (or ISO) from the network instead.
func (b *Interface) PrepareInstance(ctx context.Context, t *conductor.Task) error {
	if ramdiskInstance(t.Node) {
		return b.prepareRamdiskInstance(ctx, t)
	}
	if err := os.RemoveAll(NodeDir(b.cfg.Root, t.Node.UUID)); err != nil {
		return fmt.Errorf("remove boot files of node %s: %w", t.Node.UUID, err)
	}
	rec := record{Mode: "local", BootMode: BootMode(t.Node, b.cfg.DefaultBootMode), Iface: b.name}
	if err := t.Save(ctx, rec.save); err != nil {
		return err
	}
	return b.setBootDevice(ctx, t, conductor.BootDisk, true)
}

// CleanUpInstance implements conductor.Boot (an instance ramdisk's files go too).
func (b *Interface) CleanUpInstance(ctx context.Context, t *conductor.Task) error {
	if rec, ok := recordOf(t.Node); ok && (rec.Mode == modeInstanceRamdisk || rec.Mode == modeInstanceISO) {
		if err := os.RemoveAll(NodeDir(b.cfg.Root, t.Node.UUID)); err != nil {
			return fmt.Errorf("remove boot files of node %s: %w", t.Node.UUID, err)
		}
	}
	return t.Save(ctx, clearRecord)
}

// printable reports whether s is one line of printable ASCII, safe on an iPXE command line.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
