// Package ramdisk is Ironic's ramdisk deploy interface: the instance is a kernel and ramdisk
// (or an ISO) that the node boots from the network on every boot, and nothing is written to
// its disks (live systems, diskless nodes). Deploying powers the node off, has the boot
// interface serve the instance (PrepareInstance) and powers it on; the node is active at
// once. Undeploy powers it off and stops serving it. The package talks to hardware only
// through the node's boot and power interfaces; it runs no agent.
package ramdisk

import (
	"context"
	"fmt"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/pxe"
)

// Name is the interface's name in the catalogue.
const Name = "ramdisk"

// instanceBooter is a boot interface that can boot a ramdisk instance (Ironic's
// ramdisk_boot capability).
type instanceBooter interface {
	CanBootRamdiskInstance() bool
}

// Interface is the ramdisk deploy interface.
type Interface struct {
	// FileDirs are the directories local kernels, ramdisks and ISOs may come from.
	FileDirs []string
}

var (
	_ conductor.Deploy       = Interface{}
	_ conductor.Validator    = Interface{}
	_ conductor.StepProvider = Interface{}
)

// Steps implements conductor.StepProvider: one deploy step, deploy (priority 100), and no
// clean steps (nothing was written).
func (Interface) Steps(kind conductor.StepKind) []conductor.Step {
	if kind == conductor.DeploySteps {
		return []conductor.Step{{Name: "deploy", Priority: 100}}
	}
	return nil
}

func boot(t *conductor.Task) (conductor.Boot, error) {
	b, ok := t.Driver.Impl(ironwork.BootInterface).(conductor.Boot)
	ib, ok2 := b.(instanceBooter)
	if !ok || !ok2 || !ib.CanBootRamdiskInstance() {
		return nil, fmt.Errorf("the ramdisk deploy interface needs a boot interface that boots ramdisk instances (ipxe, pxe, http), not %q",
			t.Node.Interfaces[ironwork.BootInterface])
	}
	return b, nil
}

// Validate implements conductor.Validator: the boot interface must boot ramdisk instances,
// and instance_info must name the kernel and ramdisk, or a boot_iso (ipxe only).
func (i Interface) Validate(ctx context.Context, t *conductor.Task) error {
	if _, err := boot(t); err != nil {
		return err
	}
	return pxe.ValidateRamdiskInstance(t.Node, i.FileDirs, t.Node.Interfaces[ironwork.BootInterface])
}

// Deploy implements conductor.Deploy: the node boots its instance from the network now and
// on every later boot. A config drive is ignored, with a warning (as Ironic does for boot
// interfaces that cannot hand one over).
func (Interface) Deploy(ctx context.Context, t *conductor.Task) (bool, error) {
	b, err := boot(t)
	if err != nil {
		return false, err
	}
	if _, ok := t.Node.InstanceInfo["configdrive"]; ok {
		t.Log.Warn("the ramdisk deploy interface ignores the configuration drive")
	}
	if err := t.SetPower(ctx, ironwork.PowerOff); err != nil {
		return false, err
	}
	if err := b.PrepareInstance(ctx, t); err != nil {
		return false, fmt.Errorf("prepare the instance's network boot: %w", err)
	}
	if err := t.SetPower(ctx, ironwork.PowerOn); err != nil {
		return false, err
	}
	t.Log.Info("ramdisk instance booting")
	return false, nil
}

// TearDown implements conductor.Deploy: the node ends powered off and is no longer served
// its instance.
func (Interface) TearDown(ctx context.Context, t *conductor.Task) error {
	if err := t.SetPower(ctx, ironwork.PowerOff); err != nil {
		return err
	}
	b, err := boot(t)
	if err != nil {
		return err
	}
	return b.CleanUpInstance(ctx, t)
}
