// Package fake implements every driver interface without hardware, as Ironic's fake-hardware
// does: power and boot device live in the node record, steps succeed at once. Tests and demos
// use it to drive nodes through the whole state machine. A node's driver_info can ask for
// failures to exercise error paths: fake_power_fail, fake_deploy_fail, fake_deploy_wait,
// fake_clean_fail (all booleans), and fake_deploy_delay (seconds) slows the deploy step down.
package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Interface is the fake implementation of every interface kind. Kind is the kind it is
// registered as: as in Ironic, only the fake deploy interface offers automatic steps (deploy,
// and one cleaning step), so a deploy or a cleaning runs one step, not one per interface. The
// zero Kind offers them too.
type Interface struct{ Kind ironwork.InterfaceKind }

var (
	_ conductor.Power               = Interface{}
	_ conductor.Management          = Interface{}
	_ conductor.Deploy              = Interface{}
	_ conductor.Boot                = Interface{}
	_ conductor.StepProvider        = Interface{}
	_ conductor.StepRunner          = Interface{}
	_ conductor.Inspector           = Interface{}
	_ conductor.Rescuer             = Interface{}
	_ conductor.Rebooter            = Interface{}
	_ conductor.SoftPower           = Interface{}
	_ conductor.Validator           = Interface{}
	_ conductor.SerialConsole       = Interface{}
	_ conductor.RAIDConfigValidator = Interface{}
)

func flag(t *conductor.Task, key string) bool {
	v, _ := t.Node.DriverInfo[key].(bool)
	return v
}

// Validate implements conductor.Validator.
func (Interface) Validate(context.Context, *conductor.Task) error { return nil }

// PowerState implements conductor.Power: the recorded state, "power off" when none.
func (Interface) PowerState(_ context.Context, t *conductor.Task) (ironwork.PowerState, error) {
	if flag(t, "fake_power_fail") {
		return "", errors.New("fake BMC does not answer (fake_power_fail is set)")
	}
	if t.Node.PowerState == "" {
		return ironwork.PowerOff, nil
	}
	return t.Node.PowerState, nil
}

// SetPowerState implements conductor.Power.
func (Interface) SetPowerState(ctx context.Context, t *conductor.Task, target ironwork.PowerState, _ time.Duration) error {
	if flag(t, "fake_power_fail") {
		return errors.New("fake BMC does not answer (fake_power_fail is set)")
	}
	return t.Save(ctx, func(n *ironwork.Node) { n.PowerState = target })
}

// Reboot implements conductor.Rebooter.
func (f Interface) Reboot(ctx context.Context, t *conductor.Task, _ bool, timeout time.Duration) error {
	return f.SetPowerState(ctx, t, ironwork.PowerOn, timeout)
}

// SoftPowerOff implements conductor.SoftPower.
func (f Interface) SoftPowerOff(ctx context.Context, t *conductor.Task, timeout time.Duration) error {
	return f.SetPowerState(ctx, t, ironwork.PowerOff, timeout)
}

// BootDevice implements conductor.Management.
func (Interface) BootDevice(_ context.Context, t *conductor.Task) (conductor.BootDevice, error) {
	dev, _ := t.Node.DriverInternalInfo["fake_boot_device"].(string)
	persistent, _ := t.Node.DriverInternalInfo["fake_boot_device_persistent"].(bool)
	if dev == "" {
		dev = conductor.BootDisk
	}
	return conductor.BootDevice{Device: dev, Persistent: persistent}, nil
}

// SetBootDevice implements conductor.Management.
func (Interface) SetBootDevice(ctx context.Context, t *conductor.Task, dev conductor.BootDevice) error {
	return t.Save(ctx, func(n *ironwork.Node) {
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = ironwork.JSONObject{}
		}
		n.DriverInternalInfo["fake_boot_device"] = dev.Device
		n.DriverInternalInfo["fake_boot_device_persistent"] = dev.Persistent
	})
}

// SupportedBootDevices implements conductor.Management.
func (Interface) SupportedBootDevices(context.Context, *conductor.Task) ([]string, error) {
	return []string{conductor.BootPXE, conductor.BootDisk}, nil
}

// InjectNMI implements conductor.NMIInjector.
func (Interface) InjectNMI(context.Context, *conductor.Task) error { return nil }

// SetBootMode implements conductor.BootModeSetter.
func (Interface) SetBootMode(context.Context, *conductor.Task, string) error { return nil }

// SetSecureBoot implements conductor.SecureBootSetter.
func (Interface) SetSecureBoot(context.Context, *conductor.Task, bool) error { return nil }

// Deploy implements conductor.Deploy. driver_info fake_deploy_delay (seconds) makes it take
// that long, to hold a node in "deploying"; a number, or a string of one as the CLIs send.
func (Interface) Deploy(ctx context.Context, t *conductor.Task) (bool, error) {
	d, ok := t.Node.DriverInfo["fake_deploy_delay"].(float64)
	if s, isString := t.Node.DriverInfo["fake_deploy_delay"].(string); isString {
		v, err := strconv.ParseFloat(s, 64)
		d, ok = v, err == nil
	}
	if ok && d > 0 {
		select {
		case <-time.After(time.Duration(d * float64(time.Second))):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if flag(t, "fake_deploy_fail") {
		return false, errors.New("fake deploy failed (fake_deploy_fail is set)")
	}
	return flag(t, "fake_deploy_wait"), nil
}

// TearDown implements conductor.Deploy.
func (f Interface) TearDown(ctx context.Context, t *conductor.Task) error {
	return f.SetPowerState(ctx, t, ironwork.PowerOff, time.Minute)
}

// PrepareRamdisk implements conductor.Boot.
func (Interface) PrepareRamdisk(context.Context, *conductor.Task) error { return nil }

// CleanUpRamdisk implements conductor.Boot.
func (Interface) CleanUpRamdisk(context.Context, *conductor.Task) error { return nil }

// PrepareInstance implements conductor.Boot.
func (Interface) PrepareInstance(context.Context, *conductor.Task) error { return nil }

// CanBootRamdiskInstance lets the ramdisk deploy interface run on fake boot.
func (Interface) CanBootRamdiskInstance() bool { return true }

// CleanUpInstance implements conductor.Boot.
func (Interface) CleanUpInstance(context.Context, *conductor.Task) error { return nil }

// Steps implements conductor.StepProvider: one automatic step per kind on the deploy
// interface; the other interfaces offer the same steps as manual ones (priority 0).
func (i Interface) Steps(kind conductor.StepKind) []conductor.Step {
	var steps []conductor.Step
	switch kind {
	case conductor.CleanSteps:
		steps = []conductor.Step{
			{Name: "erase_devices_metadata", Priority: 99, Abortable: true},
			{Name: "erase_devices", Priority: 0, Abortable: true},
		}
	case conductor.DeploySteps:
		// fake_record is disabled unless a deploy template or the request enables it.
		steps = []conductor.Step{{Name: "deploy", Priority: 100}, {Name: "fake_record", Priority: 0}}
	case conductor.ServiceSteps:
		steps = []conductor.Step{{Name: "noop", Priority: 0}}
	}
	if i.Kind != "" && i.Kind != ironwork.DeployInterface {
		for j := range steps {
			steps[j].Priority = 0
		}
	}
	return steps
}

// RunStep implements conductor.StepRunner. The fake_record step appends its interface and
// arguments to driver_internal_info.fake_record, so tests can see which steps ran.
func (Interface) RunStep(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	if step.Name == "fake_record" {
		return false, t.Save(ctx, func(n *ironwork.Node) {
			if n.DriverInternalInfo == nil {
				n.DriverInternalInfo = ironwork.JSONObject{}
			}
			rec, _ := n.DriverInternalInfo["fake_record"].([]any)
			n.DriverInternalInfo["fake_record"] = append(rec, map[string]any{"interface": string(step.Interface), "args": step.Args})
		})
	}
	if flag(t, "fake_clean_fail") && (step.Name == "erase_devices_metadata" || step.Name == "erase_devices") {
		return false, errors.New("fake clean step failed (fake_clean_fail is set)")
	}
	return false, nil
}

// Inspect implements conductor.Inspector: it records a small fixed inventory.
func (Interface) Inspect(ctx context.Context, t *conductor.Task) (bool, error) {
	return false, t.Save(ctx, func(n *ironwork.Node) {
		if n.Properties == nil {
			n.Properties = ironwork.JSONObject{}
		}
		for k, v := range map[string]any{"cpus": 4, "memory_mb": 8192, "local_gb": 100, "cpu_arch": "x86_64"} {
			if _, ok := n.Properties[k]; !ok {
				n.Properties[k] = v
			}
		}
	})
}

// Rescue implements conductor.Rescuer.
func (Interface) Rescue(context.Context, *conductor.Task) (bool, error) { return false, nil }

// Unrescue implements conductor.Rescuer.
func (Interface) Unrescue(context.Context, *conductor.Task) error { return nil }

// AttachConsole implements conductor.SerialConsole with a serial line that needs no hardware:
// it prints a banner naming the node, then echoes what is typed, until ctx ends or in does.
// An empty line (Enter alone) prints the banner again, as a getty prints its prompt: a client
// that connects after the line was attached sees who it talks to.
func (Interface) AttachConsole(ctx context.Context, t *conductor.Task, in io.Reader, out io.Writer) error {
	banner := fmt.Sprintf("fake serial console of node %s\r\n", t.Node.UUID)
	if _, err := io.WriteString(out, banner); err != nil {
		return err
	}
	buf := make([]byte, 256)
	empty := true // nothing typed on the current line
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return werr
			}
			for _, b := range buf[:n] {
				if b != '\r' && b != '\n' {
					empty = false
					continue
				}
				if empty && b == '\r' {
					if _, werr := io.WriteString(out, "\n"+banner); werr != nil {
						return werr
					}
				}
				empty = true
			}
		}
		if err != nil {
			return ctx.Err()
		}
	}
}

// Noop implements the noop storage and management interfaces, which need no work. The flat
// and noop network interfaces live in package network.
type Noop struct{}

// ValidateRAIDConfig implements conductor.RAIDConfigValidator: the fake raid interface takes
// any configuration that passes Ironic's schema, as Ironic's fake one.
func (Interface) ValidateRAIDConfig(context.Context, *conductor.Task, []ironwork.LogicalDisk) error {
	return nil
}

// Unsupported implements Ironic's "no-" interfaces (no-bios, no-console, ...): the hardware
// type cannot do that, and node validate says so.
type Unsupported struct{}

var _ conductor.Validator = Unsupported{}

// Validate implements conductor.Validator: always conductor.ErrUnsupported.
func (Unsupported) Validate(context.Context, *conductor.Task) error { return conductor.ErrUnsupported }

// Register adds the fake implementations to a registry: "fake" for every kind but network
// (fake-hardware uses the real flat and noop ones, as Ironic's), and no-op stand-ins for the
// generic interfaces that have no work to do.
func Register(r conductor.Registry) {
	for _, k := range ironwork.InterfaceKinds {
		if k != ironwork.NetworkInterface {
			r.Add(k, "fake", Interface{Kind: k})
		}
	}
	for kind, name := range map[ironwork.InterfaceKind]string{
		ironwork.BIOSInterface: "no-bios", ironwork.ConsoleInterface: "no-console",
		ironwork.FirmwareInterface: "no-firmware", ironwork.InspectInterface: "no-inspect",
		ironwork.RAIDInterface: "no-raid", ironwork.RescueInterface: "no-rescue",
		ironwork.VendorInterface: "no-vendor",
	} {
		r.Add(kind, name, Unsupported{})
	}
	r.Add(ironwork.StorageInterface, "noop", Noop{})
	r.Add(ironwork.ManagementInterface, "noop", Noop{})
}
