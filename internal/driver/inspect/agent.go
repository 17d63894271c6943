// Package inspect implements the agent inspect interface: in-band inspection by the deploy
// agent. Inspect boots the node's deploy ramdisk through its boot interface (the same one a
// deploy uses) and leaves the node waiting; the boot interface adds IPA's
// ipa-inspection-callback-url to the ramdisk's kernel command line while a node inspects,
// the agent posts its inventory there, and the conductor (ContinueInspection) does the rest.
// The package neither reads inventories nor talks to a BMC or the database directly.
package inspect

import (
	"context"
	"fmt"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Agent is the agent inspect interface.
type Agent struct{}

var (
	_ conductor.Inspector = Agent{}
	_ conductor.Validator = Agent{}
)

// boot returns the node's boot interface, which must boot ramdisks.
func boot(t *conductor.Task) (conductor.Boot, error) {
	b, ok := t.Driver.Impl(ironwork.BootInterface).(conductor.Boot)
	if !ok {
		return nil, fmt.Errorf("the boot interface %q cannot boot the inspection ramdisk", t.Node.Interfaces[ironwork.BootInterface])
	}
	return b, nil
}

// Validate implements conductor.Validator: the node's boot interface must be able to boot the
// deploy ramdisk.
func (Agent) Validate(ctx context.Context, t *conductor.Task) error {
	b, err := boot(t)
	if err != nil {
		return err
	}
	if v, ok := b.(conductor.Validator); ok {
		return v.Validate(ctx, t)
	}
	return nil
}

// Inspect implements conductor.Inspector: the node boots the deploy ramdisk and waits for its
// inventory.
func (a Agent) Inspect(ctx context.Context, t *conductor.Task) (bool, error) {
	if err := a.Validate(ctx, t); err != nil {
		return false, err
	}
	b, _ := boot(t)
	if err := t.Save(ctx, conductor.ForgetAgent); err != nil {
		return false, err
	}
	if err := b.PrepareRamdisk(ctx, t); err != nil {
		return false, fmt.Errorf("prepare the inspection ramdisk boot: %w", err)
	}
	target := ironwork.PowerOn
	if t.Node.PowerState == ironwork.PowerOn {
		target = ironwork.Rebooting
	}
	if err := t.SetPower(ctx, target); err != nil {
		return false, fmt.Errorf("boot the inspection ramdisk: %w", err)
	}
	t.Log.Info("waiting for the inventory of the inspection ramdisk")
	return true, nil
}
