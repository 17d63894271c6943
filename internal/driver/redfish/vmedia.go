package redfish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/pxe"
	"github.com/ironwork/ironwork/internal/vmedia"
)

// VirtualMediaName is the boot interface's name, Ironic's.
const VirtualMediaName = "redfish-virtual-media"

// vmediaKey is the driver_internal_info key of what a node's virtual media boot holds; this
// file owns it.
const vmediaKey = "ironwork_vmedia"

// Images links an image, fetched once into a cache, to dest.
type Images interface {
	Link(ctx context.Context, url, checksum, dest string) error
}

// VirtualMediaConfig is the virtual media boot interface's settings.
type VirtualMediaConfig struct {
	// Root is the HTTP boot server's file root; boot ISOs go to Root/vmedia/<node>/.
	Root string
	// HTTPURL is the HTTP boot server's base URL as BMCs reach it.
	HTTPURL string
	// APIURL is the API's URL as the deploy agent reaches it (ipa-api-url).
	APIURL string
	// KernelParams are added to every ramdisk's kernel command line.
	KernelParams string
	// DefaultBootMode is used when nothing about a node says bios or uefi.
	DefaultBootMode string
	// FileDirs are the only directories local kernel and ramdisk files may come from.
	FileDirs []string
	// LoaderDir keeps the GRUB boot images, made once (vmedia.LoadLoaders).
	LoaderDir string
}

// VirtualMediaBoot is the redfish-virtual-media boot interface (NewVirtualMediaBoot): the
// deploy ramdisk boots from an ISO the node's BMC attaches as a virtual CD, with no DHCP, PXE
// or TFTP; and the redfish-https one (NewHTTPSBoot, https.go), where the UEFI firmware
// downloads the same ISO as its HTTP boot URI. The ISO (per node, cached until the ramdisk is
// cleaned up) carries the kernel, the ramdisk, the agent's parameters with its token, and the
// node's network_data.
type VirtualMediaBoot struct {
	cfg    VirtualMediaConfig
	images Images
	log    *slog.Logger
	via    attacher // how the ISO reaches the node

	mu      sync.Mutex // guards loaders
	loaders *vmedia.Loaders
}

var (
	_ conductor.Boot      = (*VirtualMediaBoot)(nil)
	_ conductor.Validator = (*VirtualMediaBoot)(nil)
)

// NewVirtualMediaBoot returns the boot interface.
func NewVirtualMediaBoot(cfg VirtualMediaConfig, images Images, log *slog.Logger) (*VirtualMediaBoot, error) {
	if cfg.Root == "" || cfg.HTTPURL == "" || cfg.LoaderDir == "" {
		return nil, errors.New("virtual media boot needs a boot root, an HTTP boot URL and a loader directory")
	}
	if cfg.DefaultBootMode == "" {
		cfg.DefaultBootMode = ironwork.BootModeUEFI
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VirtualMediaBoot{cfg: cfg, images: images, log: log, via: mediaAttacher{log: log}}, nil
}

// attacher is how a node's boot ISO reaches it: inserted as virtual media, or given to the
// firmware as its HTTP boot URI (https.go).
type attacher interface {
	// name is the boot interface's.
	name() string
	// check says whether the node's management interface and boot mode can do it.
	check(t *conductor.Task, mode string) error
	// attach has the node boot the ISO at url once; nothing stays attached when it fails.
	attach(ctx context.Context, t *conductor.Task, url string) error
	// detach undoes attach (and does nothing when nothing is attached).
	detach(ctx context.Context, t *conductor.Task) error
}

// mediaAttacher inserts the ISO into the BMC's virtual CD (or USB stick) and boots it.
type mediaAttacher struct{ log *slog.Logger }

func (mediaAttacher) name() string { return VirtualMediaName }

func (mediaAttacher) check(t *conductor.Task, _ string) error {
	_, err := virtualMedia(t)
	return err
}

func (a mediaAttacher) attach(ctx context.Context, t *conductor.Task, url string) error {
	n := t.Node
	vm, err := virtualMedia(t)
	if err != nil {
		return err
	}
	if err := vm.InsertVirtualMedia(ctx, t, url); err != nil {
		a.eject(ctx, t, vm)
		return fmt.Errorf("insert virtual media into the BMC of node %s: %w", n.UUID, err)
	}
	device := conductor.BootCDROM
	if d, ok := vm.(mediaBootDevice); ok {
		if device, err = d.VirtualMediaBootDevice(ctx, t); err != nil {
			a.eject(ctx, t, vm)
			return fmt.Errorf("virtual media boot device of node %s: %w", n.UUID, err)
		}
	}
	m, _ := t.Driver.Management()
	if err := m.SetBootDevice(ctx, t, conductor.BootDevice{Device: device, Persistent: pxe.Persistent(n, false)}); err != nil {
		a.eject(ctx, t, vm)
		return fmt.Errorf("set boot device of node %s to %s: %w", n.UUID, device, err)
	}
	return nil
}

func (mediaAttacher) detach(ctx context.Context, t *conductor.Task) error {
	vm, err := virtualMedia(t)
	if err != nil {
		return nil // nothing can have been inserted
	}
	if err := vm.EjectVirtualMedia(ctx, t); err != nil {
		return fmt.Errorf("eject virtual media of node %s: %w", t.Node.UUID, err)
	}
	return nil
}

// eject ejects after a failure; its own error is logged, the first failure is the one told.
func (a mediaAttacher) eject(ctx context.Context, t *conductor.Task, vm conductor.VirtualMedia) {
	if err := vm.EjectVirtualMedia(context.WithoutCancel(ctx), t); err != nil {
		a.log.Warn("eject virtual media after a failure", "node", t.Node.UUID, "error", err)
	}
}

// virtualMedia is the node's management interface's virtual media.
func virtualMedia(t *conductor.Task) (conductor.VirtualMedia, error) {
	m, _ := t.Driver.Management()
	vm, ok := m.(conductor.VirtualMedia)
	if !ok {
		return nil, ironwork.Errorf(ironwork.EINVALID, "the management interface of node %s cannot attach virtual media: %s needs the redfish management interface", t.Node.UUID, VirtualMediaName)
	}
	return vm, nil
}

// Validate implements conductor.Validator.
func (b *VirtualMediaBoot) Validate(_ context.Context, t *conductor.Task) error {
	var missing []string
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
		if s, _ := t.Node.DriverInfo[k].(string); s == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("some parameters were missing in node's driver_info: %s", strings.Join(missing, ", "))
	}
	rk, _ := t.Node.DriverInfo["rescue_kernel"].(string)
	rr, _ := t.Node.DriverInfo["rescue_ramdisk"].(string)
	if (rk == "") != (rr == "") {
		return errors.New("driver_info.rescue_kernel and rescue_ramdisk go together: give both or neither")
	}
	mode := ironwork.ResolveBootMode(t.Node, b.cfg.DefaultBootMode)
	if mode != ironwork.BootModeBIOS && mode != ironwork.BootModeUEFI {
		return fmt.Errorf("boot mode %q is neither bios nor uefi", mode)
	}
	if err := b.via.check(t, mode); err != nil {
		return err
	}
	if _, err := params(t.Node, ""); err != nil {
		return err
	}
	return nil
}

// params are the split kernel_append_params of a node after extra (the conductor's). Ironic's
// "%default%" (the conductor's parameters, which Metal3 puts first) is dropped: they are
// always there.
func params(n *ironwork.Node, extra string) ([]string, error) {
	p, _ := n.DriverInfo["kernel_append_params"].(string)
	out := strings.Fields(extra + " " + p)
	out = slices.DeleteFunc(out, func(w string) bool { return w == "%default%" })
	for _, w := range out {
		if strings.ContainsAny(w, `'"\`) || strings.ContainsFunc(w, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			return nil, fmt.Errorf("driver_info.kernel_append_params of node %s: %q: use printable words with no quote or backslash", n.UUID, w)
		}
	}
	return out, nil
}

func (b *VirtualMediaBoot) nodeDir(uuid string) string {
	return filepath.Join(b.cfg.Root, "vmedia", uuid)
}

func (b *VirtualMediaBoot) loadLoaders(ctx context.Context) (vmedia.Loaders, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.loaders != nil {
		return *b.loaders, nil
	}
	l, err := vmedia.LoadLoaders(ctx, b.cfg.LoaderDir)
	if err != nil {
		return vmedia.Loaders{}, err
	}
	b.loaders = &l
	return l, nil
}

// PrepareRamdisk implements conductor.Boot: build the node's boot ISO, have the BMC insert
// it and boot from it once. Nothing stays inserted when a step fails.
func (b *VirtualMediaBoot) PrepareRamdisk(ctx context.Context, t *conductor.Task) (err error) {
	n := t.Node
	mode := ironwork.ResolveBootMode(n, b.cfg.DefaultBootMode)
	if err := b.via.check(t, mode); err != nil {
		return err
	}
	extra, err := params(n, b.cfg.KernelParams)
	if err != nil {
		return err
	}
	loaders, err := b.loadLoaders(ctx)
	if err != nil {
		return fmt.Errorf("prepare virtual media of node %s: %w", n.UUID, err)
	}
	dir := b.nodeDir(n.UUID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("prepare virtual media of node %s: %w", n.UUID, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
			_ = t.Save(context.WithoutCancel(ctx), func(n *ironwork.Node) { delete(n.DriverInternalInfo, vmediaKey) })
		}
	}()
	keys := []string{"deploy_kernel", "deploy_ramdisk"}
	if n.ProvisionState == ironwork.Rescuing || n.ProvisionState == ironwork.RescueWait {
		if s, _ := n.DriverInfo["rescue_kernel"].(string); s != "" {
			keys = []string{"rescue_kernel", "rescue_ramdisk"}
		}
	}
	var parts [2][]byte
	for i, key := range keys {
		src, _ := n.DriverInfo[key].(string)
		if src == "" {
			return fmt.Errorf("node %s has no %s in driver_info", n.UUID, key)
		}
		u, err := pxe.SourceURL(src, b.cfg.FileDirs)
		if err != nil {
			return fmt.Errorf("prepare %s of node %s: %w", key, n.UUID, err)
		}
		dest := filepath.Join(dir, key)
		if err := b.images.Link(ctx, u, "", dest); err != nil {
			return fmt.Errorf("prepare %s of node %s: %w", key, n.UUID, err)
		}
		if parts[i], err = os.ReadFile(dest); err != nil {
			return fmt.Errorf("prepare %s of node %s: %w", key, n.UUID, err)
		}
		os.Remove(dest)
	}
	var token string
	var terr error
	if err := t.Save(ctx, func(n *ironwork.Node) { token, terr = conductor.PregenerateAgentToken(n) }); err != nil {
		return err
	}
	if terr != nil {
		return terr
	}
	kp := append([]string{"ipa-api-url=" + b.cfg.APIURL, "ironwork-node=" + n.UUID, "ironwork-boot-mode=" + mode,
		"ipa-agent-token=" + token}, extra...)
	if n.ProvisionState == ironwork.Inspecting || n.ProvisionState == ironwork.InspectWait {
		kp = append(kp, pxe.InspectionCallbackParam(b.cfg.APIURL)) // in-band inspection, as over the network
	}
	iso, err := vmedia.ISO(vmedia.Boot{Kernel: parts[0], Ramdisk: parts[1], Params: kp, NetworkData: n.NetworkData}, loaders)
	if err != nil {
		return fmt.Errorf("prepare virtual media of node %s: %w", n.UUID, err)
	}
	name := make([]byte, 16)
	if _, err := rand.Read(name); err != nil {
		return err
	}
	// The ISO carries the agent's token: its name is not guessable, the directory not listed.
	file := hex.EncodeToString(name) + ".iso"
	if err := os.WriteFile(filepath.Join(dir, file), iso, 0o644); err != nil {
		return fmt.Errorf("prepare virtual media of node %s: %w", n.UUID, err)
	}
	url := strings.TrimRight(b.cfg.HTTPURL, "/") + "/vmedia/" + n.UUID + "/" + file
	if err := t.Save(ctx, func(n *ironwork.Node) {
		internalInfo(n)[vmediaKey] = ironwork.JSONObject{"image": url, "boot_mode": mode, "bytes": len(iso)}
	}); err != nil {
		return err
	}
	if err := b.via.attach(ctx, t, url); err != nil {
		return err
	}
	b.log.Info("boot ISO attached", "node", n.UUID, "boot_interface", b.via.name(), "boot_mode", mode, "bytes", len(iso))
	return nil
}

// mediaBootDevice is a management interface that says which boot device boots the media it
// inserts (a CD, or a USB stick on a BMC without one); without it the media is a CD.
type mediaBootDevice interface {
	VirtualMediaBootDevice(ctx context.Context, t *conductor.Task) (string, error)
}

func internalInfo(n *ironwork.Node) ironwork.JSONObject {
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = ironwork.JSONObject{}
	}
	return n.DriverInternalInfo
}

// remove detaches the ISO (ejects the media, or clears the HTTP boot URI) and removes the
// node's ISO and record.
func (b *VirtualMediaBoot) remove(ctx context.Context, t *conductor.Task) error {
	var errs []error
	if err := b.via.detach(ctx, t); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(b.nodeDir(t.Node.UUID)); err != nil {
		errs = append(errs, fmt.Errorf("remove boot ISO of node %s: %w", t.Node.UUID, err))
	}
	if _, ok := t.Node.DriverInternalInfo[vmediaKey]; ok {
		if err := t.Save(ctx, func(n *ironwork.Node) { delete(n.DriverInternalInfo, vmediaKey) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanUpRamdisk implements conductor.Boot: detach, remove the ISO.
func (b *VirtualMediaBoot) CleanUpRamdisk(ctx context.Context, t *conductor.Task) error {
	return b.remove(ctx, t)
}

// PrepareInstance implements conductor.Boot: the media goes and the node boots from its
// disk, persistently, in its boot mode.
func (b *VirtualMediaBoot) PrepareInstance(ctx context.Context, t *conductor.Task) error {
	if err := b.remove(ctx, t); err != nil {
		return err
	}
	m, ok := t.Driver.Management()
	if !ok {
		return nil
	}
	if err := m.SetBootDevice(ctx, t, conductor.BootDevice{Device: conductor.BootDisk, Persistent: true}); err != nil {
		return fmt.Errorf("set boot device of node %s to disk: %w", t.Node.UUID, err)
	}
	return nil
}

// CleanUpInstance implements conductor.Boot.
func (b *VirtualMediaBoot) CleanUpInstance(ctx context.Context, t *conductor.Task) error {
	return b.remove(ctx, t)
}
