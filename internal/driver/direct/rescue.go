package direct

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Rescue is the agent rescue interface, Ironic's "agent": rescue boots the node's rescue
// ramdisk (driver_info rescue_kernel and rescue_ramdisk, else the deploy ramdisk) through the
// node's boot interface; at the ramdisk agent's first heartbeat the conductor has it set the
// rescue user's password (rescue.finalize_rescue with the SHA-512-crypt hash and hashed:
// true, never the password) and the ramdisk boot is removed; unrescue boots the instance
// from its disk again. Networking is that of Ironic's flat networking: the rescue ramdisk
// comes up on the network the instance uses, which the network interface leaves as it is.
type Rescue struct {
	agent agentClient
	log   *slog.Logger
}

var (
	_ conductor.Rescuer         = (*Rescue)(nil)
	_ conductor.RescueFinalizer = (*Rescue)(nil)
	_ conductor.Validator       = (*Rescue)(nil)
)

// NewRescue returns the agent rescue interface; it calls agents as cfg says.
func NewRescue(cfg Config, log *slog.Logger) *Rescue {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rescue{agent: newAgentClient(cfg, log), log: log}
}

// errNoRescueHash is a rescue with no password hash in instance_info (the API refuses such
// a rescue; a node edited by hand may still have none).
var errNoRescueHash = errors.New("instance_info has no hashed_rescue_password: rescue the node with a rescue_password")

// Validate implements conductor.Validator: the node's boot interface must boot ramdisks; its
// own Validate checks the ramdisk's driver_info (rescue_kernel and rescue_ramdisk go
// together, deploy_kernel and deploy_ramdisk are the fallback).
func (r *Rescue) Validate(ctx context.Context, t *conductor.Task) error {
	b, err := boot(t)
	if err != nil {
		return err
	}
	if v, ok := b.(conductor.Validator); ok {
		return v.Validate(ctx, t)
	}
	return nil
}

// Rescue implements conductor.Rescuer, as Ironic's agent rescue: power off, stop booting the
// instance, boot the rescue ramdisk and wait for its agent.
func (r *Rescue) Rescue(ctx context.Context, t *conductor.Task) (bool, error) {
	if h, _ := t.Node.InstanceInfo[conductor.RescuePasswordHashKey].(string); h == "" {
		return false, errNoRescueHash
	}
	b, err := boot(t)
	if err != nil {
		return false, err
	}
	if err := t.SetPower(ctx, ironwork.PowerOff); err != nil {
		return false, fmt.Errorf("power off the instance: %w", err)
	}
	if err := b.CleanUpInstance(ctx, t); err != nil {
		return false, fmt.Errorf("remove the instance boot: %w", err)
	}
	if err := t.Save(ctx, func(n *ironwork.Node) { conductor.ForgetAgent(n) }); err != nil {
		return false, err
	}
	if err := b.PrepareRamdisk(ctx, t); err != nil {
		return false, fmt.Errorf("prepare the rescue ramdisk boot: %w", err)
	}
	if err := t.SetPower(ctx, ironwork.PowerOn); err != nil {
		return false, fmt.Errorf("boot the rescue ramdisk: %w", err)
	}
	t.Log.Info("waiting for the rescue ramdisk's agent")
	return true, nil
}

// FinalizeRescue implements conductor.RescueFinalizer: the agent that heartbeat gets
// rescue.finalize_rescue with the password's hash, and once it succeeded the ramdisk boot is
// removed (the node runs the ramdisk from memory; a reboot boots nothing from the network).
func (r *Rescue) FinalizeRescue(ctx context.Context, t *conductor.Task, hb conductor.Heartbeat) error {
	hash, _ := t.Node.InstanceInfo[conductor.RescuePasswordHashKey].(string)
	if hash == "" {
		return errNoRescueHash
	}
	res, err := r.agent.run(ctx, heartbeatEndpoint(t, hb), "rescue.finalize_rescue",
		map[string]any{"rescue_password": hash, "hashed": true}, true)
	if err != nil {
		return err
	}
	if res.CommandStatus != api.CommandSucceeded {
		return fmt.Errorf("agent returned bad result for command finalize_rescue: %s", commandError(res))
	}
	t.Log.Info("the rescue agent set the rescue password and stopped its API")
	b, err := boot(t)
	if err != nil {
		return err
	}
	if err := b.CleanUpRamdisk(ctx, t); err != nil {
		return fmt.Errorf("remove the rescue ramdisk boot: %w", err)
	}
	return nil
}

// Unrescue implements conductor.Rescuer: power off, remove the ramdisk boot, boot the
// instance from its disk (which the rescue did not touch unless the person logged in did).
func (r *Rescue) Unrescue(ctx context.Context, t *conductor.Task) error {
	b, err := boot(t)
	if err != nil {
		return err
	}
	if err := t.SetPower(ctx, ironwork.PowerOff); err != nil {
		return fmt.Errorf("power off the rescue ramdisk: %w", err)
	}
	if err := b.CleanUpRamdisk(ctx, t); err != nil {
		return fmt.Errorf("remove the rescue ramdisk boot: %w", err)
	}
	if err := b.PrepareInstance(ctx, t); err != nil {
		return fmt.Errorf("prepare the instance boot: %w", err)
	}
	if err := t.SetPower(ctx, ironwork.PowerOn); err != nil {
		return fmt.Errorf("boot the instance: %w", err)
	}
	return nil
}
