package conductor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
)

// VirtualMediaDeviceTypes are the virtual media device types, as Ironic's API names them
// (boot_devices.VMEDIA_DEVICES), in its order.
func VirtualMediaDeviceTypes() []string { return []string{"disk", BootCDROM, "floppy"} }

// VirtualMediaDevice is one virtual drive of a node's BMC as GET /v1/nodes/{node}/vmedia
// shows it.
type VirtualMediaDevice struct {
	MediaTypes []string `json:"media_types"`
	Inserted   bool     `json:"inserted"`
	Image      string   `json:"image"`
}

// VirtualMediaLister lists a BMC's virtual drives.
type VirtualMediaLister interface {
	ListVirtualMedia(ctx context.Context, t *Task) ([]VirtualMediaDevice, error)
}

type (
	// AttachVirtualMediaRequest inserts an image into a node's virtual drive.
	AttachVirtualMediaRequest struct {
		NodeRef
		DeviceType     string `json:"device_type"`
		ImageURL       string `json:"image_url"`
		DownloadSource string `json:"image_download_source,omitempty"`
	}
	// DetachVirtualMediaRequest ejects the given device types (all when empty).
	DetachVirtualMediaRequest struct {
		NodeRef
		DeviceTypes []string `json:"device_types,omitempty"`
	}
)

// The virtual media operations (API 1.89 and 1.93).
var (
	OpAttachVirtualMedia = Action("attach_virtual_media", (*Conductor).AttachVirtualMedia)
	OpDetachVirtualMedia = Action("detach_virtual_media", (*Conductor).DetachVirtualMedia)
	OpVirtualMedia       = Op[NodeRef, []VirtualMediaDevice]{Name: "get_virtual_media", Run: (*Conductor).VirtualMedia}
)

// supportedVirtualMedia checks a device type against what Ironwork's drivers attach: a CD.
func supportedVirtualMedia(device string) error {
	if !slices.Contains(VirtualMediaDeviceTypes(), device) {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid device type %s (valid are %s)", device, strings.Join(VirtualMediaDeviceTypes(), ", "))
	}
	if device != BootCDROM {
		return ironwork.Errorf(ironwork.EINVALID, "Virtual media device type %s is not supported: only cdrom is", device)
	}
	return nil
}

// AttachVirtualMedia has the node's BMC insert an image as a virtual CD. Unlike Ironic, which
// answers first and records a failure in last_error, the call returns when the BMC has
// answered; a failure is also recorded in last_error. The image URL is handed to the BMC as
// it is, for image_download_source http and local alike (the conductor does not serve a copy).
func (c *Conductor) AttachVirtualMedia(ctx context.Context, req AttachVirtualMediaRequest) error {
	if err := supportedVirtualMedia(req.DeviceType); err != nil {
		return err
	}
	if req.DownloadSource == "swift" {
		return ironwork.Errorf(ironwork.EINVALID, "image_download_source swift is not supported: use http or local")
	}
	return withManagement(ctx, c, req.Node, func(t *Task, vm VirtualMedia) error {
		if err := vm.InsertVirtualMedia(ctx, t, req.ImageURL); err != nil {
			msg := fmt.Sprintf("Could not attach device %s to node %s: %s", req.DeviceType, t.Node.UUID, errText(err))
			_ = t.Save(ctx, func(n *ironwork.Node) { n.LastError = msg })
			return ironwork.Errorf(ironwork.EINVALID, "%s", msg)
		}
		t.Log.Info("virtual media attached", "device", req.DeviceType)
		return t.Save(ctx, func(n *ironwork.Node) { n.LastError = "" })
	})
}

// DetachVirtualMedia ejects a node's virtual media.
func (c *Conductor) DetachVirtualMedia(ctx context.Context, req DetachVirtualMediaRequest) error {
	for _, d := range req.DeviceTypes {
		if !slices.Contains(VirtualMediaDeviceTypes(), d) {
			return ironwork.Errorf(ironwork.EINVALID, "Invalid device type(s) %s (valid are %s)", d, strings.Join(VirtualMediaDeviceTypes(), ", "))
		}
	}
	if len(req.DeviceTypes) > 0 && !slices.Contains(req.DeviceTypes, BootCDROM) {
		return nil // only a CD is ever attached
	}
	return withManagement(ctx, c, req.Node, func(t *Task, vm VirtualMedia) error {
		if err := vm.EjectVirtualMedia(ctx, t); err != nil {
			msg := fmt.Sprintf("Could not detach device(s) %s from node %s: %s", strings.Join(req.DeviceTypes, ", "), t.Node.UUID, errText(err))
			_ = t.Save(ctx, func(n *ironwork.Node) { n.LastError = msg })
			return ironwork.Errorf(ironwork.EINVALID, "%s", msg)
		}
		return t.Save(ctx, func(n *ironwork.Node) { n.LastError = "" })
	})
}

// VirtualMedia lists a node's virtual drives.
func (c *Conductor) VirtualMedia(ctx context.Context, req NodeRef) ([]VirtualMediaDevice, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	l, ok := t.Driver.Impl(ironwork.ManagementInterface).(VirtualMediaLister)
	if !ok {
		return nil, notSupported(t, ironwork.ManagementInterface)
	}
	return l.ListVirtualMedia(ctx, t)
}
