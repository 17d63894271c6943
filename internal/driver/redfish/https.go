package redfish

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/stmcginnis/gofish/schemas"
)

// HTTPSName is the redfish-https boot interface's name, Ironic's.
const HTTPSName = "redfish-https"

// NewHTTPSBoot returns the redfish-https boot interface: the node's boot ISO, built and served
// as for redfish-virtual-media, is not inserted but given to the UEFI firmware as its one-time
// HTTP boot URI (Boot.HttpBootUri with BootSourceOverrideTarget UefiHttp). UEFI only.
func NewHTTPSBoot(cfg VirtualMediaConfig, images Images, log *slog.Logger) (*VirtualMediaBoot, error) {
	b, err := NewVirtualMediaBoot(cfg, images, log)
	if err != nil {
		return nil, err
	}
	b.via = httpBootAttacher{}
	return b, nil
}

// httpBooter is a management interface that can have the firmware boot a URI over HTTP(S).
type httpBooter interface {
	SetHTTPBootURI(ctx context.Context, t *conductor.Task, uri string) error
	ClearHTTPBootURI(ctx context.Context, t *conductor.Task) error
}

func httpBooterOf(t *conductor.Task) (httpBooter, error) {
	m, _ := t.Driver.Management()
	hb, ok := m.(httpBooter)
	if !ok {
		return nil, ironwork.Errorf(ironwork.EINVALID, "the management interface of node %s cannot set an HTTP boot URI: %s needs the redfish management interface", t.Node.UUID, HTTPSName)
	}
	return hb, nil
}

// httpBootAttacher gives the ISO's URL to the firmware as its HTTP boot URI.
type httpBootAttacher struct{}

func (httpBootAttacher) name() string { return HTTPSName }

func (httpBootAttacher) check(t *conductor.Task, mode string) error {
	if mode != ironwork.BootModeUEFI {
		return ironwork.Errorf(ironwork.EINVALID, "node %s boots in %s mode: %s needs uefi (UEFI HTTP boot)", t.Node.UUID, mode, HTTPSName)
	}
	_, err := httpBooterOf(t)
	return err
}

func (httpBootAttacher) attach(ctx context.Context, t *conductor.Task, url string) error {
	hb, err := httpBooterOf(t)
	if err != nil {
		return err
	}
	if err := hb.SetHTTPBootURI(ctx, t, url); err != nil {
		return fmt.Errorf("set the HTTP boot URI of node %s: %w", t.Node.UUID, err)
	}
	return nil
}

func (httpBootAttacher) detach(ctx context.Context, t *conductor.Task) error {
	hb, err := httpBooterOf(t)
	if err != nil {
		return nil // nothing can have been set
	}
	if err := hb.ClearHTTPBootURI(ctx, t); err != nil {
		return fmt.Errorf("clear the HTTP boot URI of node %s: %w", t.Node.UUID, err)
	}
	return nil
}

// SetHTTPBootURI has the system boot uri once through its UEFI firmware's HTTP boot: one
// PATCH of Boot with the UefiHttp target, the URI and the UEFI mode. A BMC whose
// BootSourceOverrideTarget@Redfish.AllowableValues lacks UefiHttp is refused before (one
// that publishes no such list is tried).
func (d Interface) SetHTTPBootURI(ctx context.Context, t *conductor.Task, uri string) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	if mode := d.bootMode(t.Node); mode != ironwork.BootModeUEFI {
		return ironwork.Errorf(ironwork.EINVALID, "UEFI HTTP boot needs the uefi boot mode, node %s boots in %s", t.Node.UUID, mode)
	}
	if allowed := sys.Boot.AllowableBootSourceOverrideTargetValues; len(allowed) > 0 && !slices.Contains(allowed, schemas.UefiHTTPBootSource) {
		return ironwork.Errorf(ironwork.EINVALID, "the BMC of Redfish system %s does not offer UEFI HTTP boot: BootSourceOverrideTarget allows %v, not %s",
			sys.ODataID, allowed, schemas.UefiHTTPBootSource)
	}
	body := map[string]any{"Boot": map[string]any{
		"BootSourceOverrideTarget": schemas.UefiHTTPBootSource, "BootSourceOverrideEnabled": schemas.OnceBootSourceOverrideEnabled,
		"BootSourceOverrideMode": schemas.UEFIBootSourceOverrideMode, "HttpBootUri": uri,
	}}
	if err := sys.Patch(sys.ODataID, body); err != nil {
		return fmt.Errorf("set Redfish boot override to %s: %w", schemas.UefiHTTPBootSource, err)
	}
	return nil
}

// ClearHTTPBootURI removes the system's HTTP boot URI (Boot.HttpBootUri: null); a system
// that has none is left alone.
func (d Interface) ClearHTTPBootURI(ctx context.Context, t *conductor.Task) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	if sys.Boot.HTTPBootURI == "" {
		return nil
	}
	if err := sys.Patch(sys.ODataID, map[string]any{"Boot": map[string]any{"HttpBootUri": nil}}); err != nil {
		return fmt.Errorf("clear Redfish HttpBootUri: %w", err)
	}
	return nil
}
