package conductor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ironwork/ironwork"
)

// Rescue through a ramdisk, as Ironic's agent rescue: the rescue interface boots the node's
// rescue ramdisk and the node waits in "rescue wait"; the ramdisk's agent heartbeats, the
// rescue interface finalizes the rescue through it (the agent sets the rescue user's password
// from the hash and stops its API), and the node is in "rescue". Every failure on the way, the
// rescue callback timeout among them, ends as Ironic's rescuing error handler: the node is
// powered off, no longer boots the ramdisk, forgets its agent and the password's hash.

// RescueFinalizer is a rescue interface whose rescue ends when the rescue ramdisk calls back:
// at the first heartbeat of its agent in "rescue wait", FinalizeRescue hands the agent what
// it needs and removes the ramdisk boot. An error wrapping ErrAgentUnreachable waits for the
// next heartbeat; any other fails the rescue.
type RescueFinalizer interface {
	FinalizeRescue(ctx context.Context, t *Task, hb Heartbeat) error
}

// Ironic's words for the ends of a rescue that did not finish.
const (
	rescueTimeoutReason = "Timeout reached while waiting for rescue ramdisk callback for node"
	rescueAbortReason   = "By request, the rescue operation was aborted."
	faultRescueAbort    = "rescue abort failure"
)

// checkRescuable refuses a rescue the node's driver cannot do, before any state changes:
// as Ironic validates the power and rescue interfaces before it rescues.
func (c *Conductor) checkRescuable(ctx context.Context, t *Task) error {
	impl := t.Driver.Impl(ironwork.RescueInterface)
	if _, ok := impl.(Rescuer); !ok {
		return ironwork.Errorf(ironwork.EINVALID, "Error validating before rescue for node %s: Driver %s does not support rescue (disabled or not implemented).",
			t.Node.UUID, t.Node.Driver)
	}
	if err := c.validateFor(ctx, t, ironwork.PowerInterface, ironwork.RescueInterface); err != nil {
		return ironwork.Errorf(ironwork.EINVALID, "Error validating before rescue for node %s: %s", t.Node.UUID, ironwork.ErrorMessage(err))
	}
	return nil
}

// rescueHeartbeat is AgentHeartbeat's part for a node in "rescue wait": when the node's
// rescue interface finalizes rescues and nobody works on the node, a worker does it.
func (c *Conductor) rescueHeartbeat(ctx context.Context, n *ironwork.Node, hb Heartbeat) error {
	return c.onAgentCall(ctx, n, hb, "heartbeat of a node in maintenance: its rescue waits until maintenance ends",
		func(t *Task) func(context.Context, *Task) {
			f, ok := t.Driver.Impl(ironwork.RescueInterface).(RescueFinalizer)
			if !ok {
				return nil
			}
			return func(ctx context.Context, t *Task) { c.finalizeRescue(ctx, t, f, hb) }
		})
}

// finalizeRescue ends a rescue whose ramdisk called back: "rescue wait" -> "rescuing" ->
// "rescue", or "rescue failed" when the agent refuses.
func (c *Conductor) finalizeRescue(ctx context.Context, t *Task, f RescueFinalizer, hb Heartbeat) {
	err := f.FinalizeRescue(ctx, t, hb)
	if errors.Is(err, ErrAgentUnreachable) {
		t.Log.Warn("the rescue agent did not answer; trying again at its next heartbeat", "error", err)
		return
	}
	if err != nil {
		c.failRescue(ctx, t, fmt.Sprintf("Failed to rescue node %s: %s", t.Node.UUID, errText(err)))
		return
	}
	if err := c.transition(ctx, t, ironwork.EventResume, "", ""); err != nil {
		t.Log.Error("resume the rescue", "error", err)
		return
	}
	if err := c.transitionWith(ctx, t, ironwork.EventDone, "", "", ForgetAgent); err != nil {
		t.Log.Error("finish the rescue", "error", err)
		return
	}
	t.Log.Info("node rescued: its rescue ramdisk accepts the rescue user's login")
}

// failRescue is Ironic's rescuing error handler: the node is powered off, no longer boots
// its ramdisk, forgets its agent and the rescue password's hash, and fails with reason (plus
// what of that clean-up failed).
func (c *Conductor) failRescue(ctx context.Context, t *Task, reason string) {
	if problems := c.cleanUpRescue(ctx, t, true); len(problems) > 0 {
		reason += " Cleaning up after the rescue failed: " + strings.Join(problems, "; ")
	}
	if err := c.transitionWith(ctx, t, ironwork.EventFail, reason, "", func(n *ironwork.Node) {
		ForgetAgent(n)
		forgetRescuePassword(n)
	}); err != nil {
		t.Log.Error("record the rescue failure", "reason", reason, "error", err)
	}
}

// cleanUpRescue powers a node off (when asked) and removes its ramdisk boot; it returns what
// failed.
func (c *Conductor) cleanUpRescue(ctx context.Context, t *Task, powerOff bool) []string {
	var problems []string
	if powerOff {
		if err := c.doPower(ctx, t, ironwork.PowerOff, c.cfg.PowerActionTimeout); err != nil {
			problems = append(problems, "power off: "+errText(err))
		}
	}
	if b, ok := t.Driver.Impl(ironwork.BootInterface).(Boot); ok {
		if err := b.CleanUpRamdisk(ctx, t); err != nil {
			problems = append(problems, "remove the ramdisk boot: "+errText(err))
		}
	}
	if len(problems) > 0 {
		t.Log.Warn("clean up after the rescue", "error", strings.Join(problems, "; "))
	}
	return problems
}

// abortRescue is abort in "rescue wait", as Ironic's: the password's hash is forgotten, the
// ramdisk boot removed (and, as for Ironwork's other aborts, the node powered off so the
// agent's API goes away), and the node shows "rescue failed" with Ironic's reason. When
// the clean-up fails the node also goes into maintenance with fault "rescue abort failure".
func (c *Conductor) abortRescue(ctx context.Context, t *Task) {
	problems := c.cleanUpRescue(ctx, t, true)
	reason := rescueAbortReason
	if len(problems) > 0 {
		reason = "Failed to clean up rescue after aborting the operation: " + strings.Join(problems, "; ")
	}
	if err := c.transitionWith(ctx, t, ironwork.EventAbort, reason, "", func(n *ironwork.Node) {
		ForgetAgent(n)
		forgetRescuePassword(n)
		if len(problems) > 0 {
			n.Maintenance, n.MaintenanceReason, n.Fault = true, reason, faultRescueAbort
		}
	}); err != nil {
		t.Log.Error("abort the rescue", "error", err)
	}
}

// forgetRescuePassword drops the rescue password's hash (and a clear-text password a
// client may have put in instance_info itself).
func forgetRescuePassword(n *ironwork.Node) {
	delete(n.InstanceInfo, "rescue_password")
	delete(n.InstanceInfo, RescuePasswordHashKey)
}
