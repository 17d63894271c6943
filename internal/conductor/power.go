package conductor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ironwork/ironwork"
)

// powerTargets are the targets PUT /states/power accepts.
var powerTargets = []ironwork.PowerState{ironwork.PowerOn, ironwork.PowerOff, ironwork.Rebooting,
	ironwork.SoftPowerOff, ironwork.SoftRebooting}

// SetPower starts a power change of a node in the background: it records the target, then the
// worker drives the BMC and records the outcome.
func (c *Conductor) SetPower(ctx context.Context, req SetPowerRequest) error {
	ident, target, timeout := req.Node, req.Target, req.Timeout
	if !slices.Contains(powerTargets, target) {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid power state target %q.", target)
	}
	if timeout <= 0 {
		timeout = c.cfg.PowerActionTimeout
	}
	t, err := c.lock(ctx, ident)
	if err != nil {
		return err
	}
	if _, ok := t.Driver.Power(); !ok {
		c.release(t.Node)
		return ironwork.Errorf(ironwork.EINVALID, "Node %s: the power interface %q is not available on conductor %s.",
			t.Node.UUID, t.Node.Interfaces[ironwork.PowerInterface], c.cfg.Hostname)
	}
	if t.Node.DisablePowerOff && (target == ironwork.PowerOff || target == ironwork.SoftPowerOff) {
		c.release(t.Node)
		return ironwork.Errorf(ironwork.EINVALID, "Node %s does not allow power off (disable_power_off is set).", t.Node.UUID)
	}
	done, err := c.acquireWorker()
	if err != nil {
		c.release(t.Node)
		return err
	}
	shown := target
	if target == ironwork.Rebooting || target == ironwork.SoftRebooting {
		shown = ironwork.PowerOn
	} else if target == ironwork.SoftPowerOff {
		shown = ironwork.PowerOff
	}
	if err := t.Save(ctx, func(n *ironwork.Node) { n.TargetPowerState, n.LastError = shown, "" }); err != nil {
		done()
		c.release(t.Node)
		return err
	}
	c.background(t, done, func(ctx context.Context, t *Task) {
		if err := c.doPower(ctx, t, target, timeout); err != nil {
			t.Log.Warn("power action failed", "target", target, "error", err)
		}
	})
	return nil
}

// doPower drives the node's power to target and records the result (power_state, and
// last_error on failure). The caller holds the node's lock.
func (c *Conductor) doPower(ctx context.Context, t *Task, target ironwork.PowerState, timeout time.Duration) error {
	p, ok := t.Driver.Power()
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "no power interface")
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	switch target {
	case ironwork.Rebooting, ironwork.SoftRebooting:
		if r, ok := p.(Rebooter); ok {
			err = r.Reboot(pctx, t, target == ironwork.SoftRebooting, timeout)
		} else if target == ironwork.SoftRebooting {
			err = ironwork.Errorf(ironwork.EINVALID, "the power interface cannot soft reboot")
		} else if err = p.SetPowerState(pctx, t, ironwork.PowerOff, timeout); err == nil {
			err = p.SetPowerState(pctx, t, ironwork.PowerOn, timeout)
		}
	case ironwork.SoftPowerOff:
		if s, ok := p.(SoftPower); ok {
			err = s.SoftPowerOff(pctx, t, timeout)
		} else {
			err = ironwork.Errorf(ironwork.EINVALID, "the power interface cannot power off softly")
		}
	default:
		err = p.SetPowerState(pctx, t, target, timeout)
	}
	final := target
	switch target {
	case ironwork.Rebooting, ironwork.SoftRebooting:
		final = ironwork.PowerOn
	case ironwork.SoftPowerOff:
		final = ironwork.PowerOff
	}
	if err != nil {
		c.metrics.BMCError(t.Node.Driver, "set_power_state")
		// Record what the hardware says now, if it says anything.
		if st, rerr := p.PowerState(ctx, t); rerr == nil {
			final = st
		} else {
			final = ironwork.PowerError
		}
		msg := fmt.Sprintf("Failed to change power state to '%s' by '%s': %s", final, target, errText(err))
		_ = t.Save(ctx, func(n *ironwork.Node) { n.PowerState, n.TargetPowerState, n.LastError = final, "", msg })
		return ironwork.Errorf(ironwork.EINVALID, "%s", msg)
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		n.PowerState, n.TargetPowerState = final, ""
		// An agent does not outlive a power off or a reboot: the next one looks up anew and
		// gets a new token, as in Ironic.
		if final == ironwork.PowerOff || target == ironwork.Rebooting || target == ironwork.SoftRebooting {
			forgetAgentBoot(n)
		}
	}); err != nil {
		return err
	}
	t.Log.Info("power state changed", "target", target, "state", final)
	return nil
}

// BootDevice returns a node's boot device.
func (c *Conductor) BootDevice(ctx context.Context, req NodeRef) (BootDevice, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return BootDevice{}, err
	}
	m, ok := t.Driver.Management()
	if !ok {
		return BootDevice{}, notSupported(t, ironwork.ManagementInterface)
	}
	return m.BootDevice(ctx, t)
}

// SupportedBootDevices lists the boot devices a node can use.
func (c *Conductor) SupportedBootDevices(ctx context.Context, req NodeRef) ([]string, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	m, ok := t.Driver.Management()
	if !ok {
		return nil, notSupported(t, ironwork.ManagementInterface)
	}
	return m.SupportedBootDevices(ctx, t)
}

// SetBootDevice sets a node's boot device, under its lock.
func (c *Conductor) SetBootDevice(ctx context.Context, req SetBootDeviceRequest) error {
	dev := req.Device
	return c.withLock(ctx, req.Node, func(t *Task) error {
		m, ok := t.Driver.Management()
		if !ok {
			return notSupported(t, ironwork.ManagementInterface)
		}
		supported, err := m.SupportedBootDevices(ctx, t)
		if err != nil {
			return err
		}
		if !slices.Contains(supported, dev.Device) {
			return ironwork.Errorf(ironwork.EINVALID, "Invalid boot device %s specified. Supported boot devices: %v", dev.Device, supported)
		}
		return m.SetBootDevice(ctx, t, dev)
	})
}

// InjectNMI sends an NMI to a node.
func (c *Conductor) InjectNMI(ctx context.Context, req NodeRef) error {
	return withManagement(ctx, c, req.Node, func(t *Task, n NMIInjector) error { return n.InjectNMI(ctx, t) })
}

// SetBootMode switches a node between bios and uefi.
func (c *Conductor) SetBootMode(ctx context.Context, req SetBootModeRequest) error {
	mode := req.Mode
	if mode != "bios" && mode != "uefi" {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid boot mode %q: use bios or uefi.", mode)
	}
	return withManagement(ctx, c, req.Node, func(t *Task, s BootModeSetter) error {
		if err := s.SetBootMode(ctx, t, mode); err != nil {
			return err
		}
		return t.Save(ctx, func(n *ironwork.Node) { n.BootMode = mode })
	})
}

// SetSecureBoot turns a node's secure boot on or off.
func (c *Conductor) SetSecureBoot(ctx context.Context, req SetSecureBootRequest) error {
	on := req.On
	return withManagement(ctx, c, req.Node, func(t *Task, s SecureBootSetter) error {
		if err := s.SetSecureBoot(ctx, t, on); err != nil {
			return err
		}
		return t.Save(ctx, func(n *ironwork.Node) { n.SecureBoot = &on })
	})
}

// withManagement runs fn, under a node's lock, with the optional ability A of its management
// interface; a node whose interface lacks it is refused.
func withManagement[A any](ctx context.Context, c *Conductor, ident string, fn func(t *Task, a A) error) error {
	return c.withLock(ctx, ident, func(t *Task) error {
		a, ok := t.Driver.Impl(ironwork.ManagementInterface).(A)
		if !ok {
			return notSupported(t, ironwork.ManagementInterface)
		}
		return fn(t, a)
	})
}

// SetMaintenance puts a node into maintenance with a reason, or takes it out.
func (c *Conductor) SetMaintenance(ctx context.Context, req SetMaintenanceRequest) error {
	n, err := c.store.UpdateNode(ctx, req.Node, func(n *ironwork.Node) error {
		n.Maintenance = req.On
		if req.On {
			n.MaintenanceReason = req.Reason
		} else {
			n.MaintenanceReason, n.Fault = "", ""
		}
		return nil
	})
	if err == nil {
		c.syncFailures.Delete(n.ID)
	}
	return err
}

// ErrUnsupported is what the Validate of a "no-" interface (no-bios, no-console, ...) returns:
// node validate then reports, as Ironic, that the driver does not support that interface.
var ErrUnsupported = errors.New("the interface is not supported by this node's driver")

// ValidationResult is the outcome of validating one interface.
type ValidationResult struct {
	Result *bool  `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// Validate checks every interface of a node but the vendor one (Ironic leaves it out too).
func (c *Conductor) Validate(ctx context.Context, req NodeRef) (map[ironwork.InterfaceKind]ValidationResult, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	out := map[ironwork.InterfaceKind]ValidationResult{}
	yes, no := true, false
	for _, k := range ironwork.InterfaceKinds {
		if k == ironwork.VendorInterface {
			continue // as Ironic: the vendor interface is validated by its own methods, not here
		}
		impl := t.Driver.Impl(k)
		switch v := impl.(type) {
		case nil:
			out[k] = ValidationResult{Result: &no, Reason: fmt.Sprintf("the %s interface %q is not available on conductor %s", k, t.Node.Interfaces[k], c.cfg.Hostname)}
		case Validator:
			if err := v.Validate(ctx, t); errors.Is(err, ErrUnsupported) {
				out[k] = ValidationResult{Result: &no, Reason: fmt.Sprintf("Driver %s does not support %s (disabled or not implemented).", t.Node.Driver, k)}
			} else if err != nil {
				out[k] = ValidationResult{Result: &no, Reason: errText(err)}
			} else {
				out[k] = ValidationResult{Result: &yes}
			}
		default:
			out[k] = ValidationResult{Result: &yes}
		}
	}
	return out, nil
}

// WithNode runs fn on a node under its exclusive lock, with its composed driver, and releases
// the lock when fn returns. Tools and tests use it to call a driver interface directly.
func (c *Conductor) WithNode(ctx context.Context, ident string, fn func(t *Task) error) error {
	return c.withLock(ctx, ident, fn)
}

// withLock runs fn on a node under its lock, in the request.
func (c *Conductor) withLock(ctx context.Context, ident string, fn func(t *Task) error) error {
	t, err := c.lock(ctx, ident)
	if err != nil {
		return err
	}
	defer c.release(t.Node)
	return fn(t)
}

func notSupported(t *Task, kind ironwork.InterfaceKind) error {
	return ironwork.Errorf(ironwork.EINVALID, "The %s interface %q of node %s does not support this operation.", kind, t.Node.Interfaces[kind], t.Node.UUID)
}
