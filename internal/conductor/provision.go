package conductor

import (
	"context"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/configdrive"
)

// ProvisionRequest is a PUT /states/provision request.
type ProvisionRequest struct {
	Target         string
	ConfigDrive    any
	CleanSteps     []any
	DeploySteps    []any
	ServiceSteps   []any
	RescuePassword string
	DisableRamdisk bool
}

// internal info keys for the steps still to run.
const (
	remainingKey = "ironwork_remaining_steps"
	stepKindKey  = "ironwork_step_kind"
	manualKey    = "ironwork_manual_clean"
)

// Provision starts a provision action on a node. Work that takes time runs in the background
// under the node's lock; the call returns once the node is in the first state of the action.
func (c *Conductor) Provision(ctx context.Context, ident string, req ProvisionRequest) error {
	ev, ok := ironwork.Verbs[req.Target]
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid provision state target %q.", req.Target)
	}
	t, err := c.lock(ctx, ident)
	if err != nil {
		return err
	}
	handedOff := false
	defer func() {
		if !handedOff {
			c.release(t.Node)
		}
	}()
	n := t.Node
	if _, ok := ironwork.NextState(n.ProvisionState, ev); !ok {
		return ironwork.Errorf(ironwork.EINVALID, "The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".",
			req.Target, n.UUID, n.ProvisionState)
	}
	if n.Protected && (ev == ironwork.EventDelete || ev == ironwork.EventRebuild) {
		return ironwork.Errorf(ironwork.EFORBIDDEN, "Node %s is protected and cannot be undeployed, rebuilt or deleted", n.UUID)
	}
	if n.Maintenance && ev != ironwork.EventManage && ev != ironwork.EventAbort && ev != ironwork.EventDelete {
		return ironwork.Errorf(ironwork.EINVALID, "Node %s is in maintenance mode: take it out of maintenance before \"%s\".", n.UUID, req.Target)
	}

	// Events that only change state run here, under the request's lock.
	switch {
	case ev == ironwork.EventAbort:
		return c.abort(ctx, t)
	case ev == ironwork.EventManage && n.ProvisionState != ironwork.Enroll:
		return c.transition(ctx, t, ev, "", "")
	}

	var work func(ctx context.Context, t *Task)
	target := ironwork.ProvisionState("")
	switch ev {
	case ironwork.EventManage:
		work = c.verify
	case ironwork.EventProvide:
		work = func(ctx context.Context, t *Task) { c.startClean(ctx, t, nil) }
	case ironwork.EventClean:
		steps, err := manualSteps(t.Driver, CleanSteps, req.CleanSteps)
		if err != nil {
			return err
		}
		target = ironwork.Manageable
		work = func(ctx context.Context, t *Task) { c.startClean(ctx, t, steps) }
	case ironwork.EventDeploy, ironwork.EventRebuild:
		if err := c.validateFor(ctx, t, ironwork.PowerInterface, ironwork.DeployInterface, ironwork.BootInterface); err != nil {
			return err
		}
		traits, err := instanceTraits(n)
		if err != nil {
			return ironwork.Errorf(ironwork.EINVALID, "Failed to validate deploy or power info for node %s: %s", n.UUID, err.Error())
		}
		steps, failure, err := c.deploySteps(ctx, t, req.DeploySteps, traits)
		if err != nil {
			return err
		}
		if m, ok := req.ConfigDrive.(map[string]any); ok {
			// As Ironic: the dict form is built into an image when the deploy starts, and
			// only the gzipped, base64-encoded image is stored.
			cd, err := configdrive.BuildEncoded(m, n.UUID, n.Name)
			if err != nil {
				return ironwork.Errorf(ironwork.EINVALID, "Invalid configdrive format: %v", err)
			}
			req.ConfigDrive = cd
		}
		if req.ConfigDrive != nil {
			if err := t.Save(ctx, func(n *ironwork.Node) {
				if n.InstanceInfo == nil {
					n.InstanceInfo = ironwork.JSONObject{}
				}
				n.InstanceInfo["configdrive"] = req.ConfigDrive
			}); err != nil {
				return err
			}
		}
		work = func(ctx context.Context, t *Task) {
			if failure != nil {
				c.fail(ctx, t, failure)
				return
			}
			c.runSteps(ctx, t, DeploySteps, steps)
		}
	case ironwork.EventDelete:
		work = c.tearDown
	case ironwork.EventInspect:
		work = c.inspect
	case ironwork.EventAdopt:
		work = c.adopt
	case ironwork.EventRescue:
		if req.RescuePassword == "" {
			return ironwork.Errorf(ironwork.EINVALID, "A non-empty \"rescue_password\" is required when setting target provision state to rescue.")
		}
		if err := t.Save(ctx, func(n *ironwork.Node) {
			if n.InstanceInfo == nil {
				n.InstanceInfo = ironwork.JSONObject{}
			}
			n.InstanceInfo["rescue_password"] = req.RescuePassword
		}); err != nil {
			return err
		}
		work = c.rescue
	case ironwork.EventUnrescue:
		work = c.unrescue
	case ironwork.EventService:
		steps, err := manualSteps(t.Driver, ServiceSteps, req.ServiceSteps)
		if err != nil {
			return err
		}
		work = func(ctx context.Context, t *Task) { c.runSteps(ctx, t, ServiceSteps, steps) }
	case ironwork.EventUnhold:
		work = c.unhold
	default:
		return ironwork.Errorf(ironwork.EINVALID, "The requested action \"%s\" is not supported.", req.Target)
	}

	counter := map[ironwork.Event]*atomicCounter{ironwork.EventDeploy: {&c.deploys, c.cfg.MaxConcurrentDeploy},
		ironwork.EventRebuild: {&c.deploys, c.cfg.MaxConcurrentDeploy}, ironwork.EventProvide: {&c.cleans, c.cfg.MaxConcurrentClean},
		ironwork.EventClean: {&c.cleans, c.cfg.MaxConcurrentClean}}[ev]
	if counter != nil && !counter.take() {
		return ironwork.Errorf(ironwork.EUNAVAILABLE, "The number of concurrent %s operations on this conductor has reached its limit (%d); retry later.", ev, counter.limit)
	}
	done, err := c.acquireWorker()
	if err != nil {
		counter.give()
		return err
	}
	if err := c.transition(ctx, t, ev, "", target); err != nil {
		done()
		counter.give()
		return err
	}
	handedOff = true
	c.background(t, func() { counter.give(); done() }, work)
	return nil
}

// validateFor runs the Validate of the given interfaces of a task's driver.
func (c *Conductor) validateFor(ctx context.Context, t *Task, kinds ...ironwork.InterfaceKind) error {
	for _, k := range kinds {
		impl := t.Driver.Impl(k)
		if impl == nil {
			return ironwork.Errorf(ironwork.EINVALID, "Node %s: the %s interface %q is not available on conductor %s.",
				t.Node.UUID, k, t.Node.Interfaces[k], c.cfg.Hostname)
		}
		if v, ok := impl.(Validator); ok {
			if err := v.Validate(ctx, t); err != nil {
				return ironwork.Errorf(ironwork.EINVALID, "Failed to validate %s interface of node %s: %s", k, t.Node.UUID, errText(err))
			}
		}
	}
	return nil
}

// verify checks the BMC of an enrolled node and reads its power state.
func (c *Conductor) verify(ctx context.Context, t *Task) {
	if err := c.validateFor(ctx, t, ironwork.PowerInterface, ironwork.ManagementInterface); err != nil {
		c.fail(ctx, t, err)
		return
	}
	p, _ := t.Driver.Power()
	st, err := p.PowerState(ctx, t)
	if err != nil {
		c.fail(ctx, t, fmt.Errorf("Failed to get power state of node %s: %w", t.Node.UUID, err))
		return
	}
	if err := t.Save(ctx, func(n *ironwork.Node) { n.PowerState = st }); err != nil {
		c.fail(ctx, t, err)
		return
	}
	c.transitionOrLog(ctx, t, ironwork.EventDone, "")
}

func (c *Conductor) transitionOrLog(ctx context.Context, t *Task, ev ironwork.Event, target ironwork.ProvisionState) {
	if err := c.transition(ctx, t, ev, "", target); err != nil {
		t.Log.Error("transition failed", "event", ev, "error", err)
	}
}

// automatedClean says whether the node runs automated cleaning.
func (c *Conductor) automatedClean(n *ironwork.Node) bool {
	if n.AutomatedClean != nil {
		return *n.AutomatedClean
	}
	return c.cfg.AutomatedClean
}

// startClean runs cleaning: the given manual steps, or the automated ones.
func (c *Conductor) startClean(ctx context.Context, t *Task, manual []Step) {
	steps := manual
	if manual == nil {
		if !c.automatedClean(t.Node) {
			c.transitionOrLog(ctx, t, ironwork.EventDone, "")
			return
		}
		steps = automaticSteps(t.Driver, CleanSteps)
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = ironwork.JSONObject{}
		}
		n.DriverInternalInfo[manualKey] = manual != nil
	}); err != nil {
		c.fail(ctx, t, err)
		return
	}
	c.runSteps(ctx, t, CleanSteps, steps)
}

// deploySteps merges the driver's automatic deploy steps with the requested ones and those of
// the deploy templates the instance traits name, as Ironic: requested steps override template
// steps, both override the driver's step of the same interface and name, and priority 0
// disables a step. failure is the error the deploy must fail with (a template step the driver
// does not offer); err refuses the request.
func (c *Conductor) deploySteps(ctx context.Context, t *Task, requested []any, traits []string) (steps []Step, failure, err error) {
	var user []Step
	if len(requested) > 0 {
		if user, err = manualSteps(t.Driver, DeploySteps, requested); err != nil {
			return nil, nil, err
		}
	}
	tpl, failure, err := c.templateSteps(ctx, t, traits)
	if err != nil {
		return nil, nil, err
	}
	return mergeDeploySteps(automaticSteps(t.Driver, DeploySteps), user, tpl), failure, nil
}

// stepField returns the node field that shows the current step of a kind.
func stepField(n *ironwork.Node, kind StepKind) *ironwork.JSONObject {
	switch kind {
	case DeploySteps:
		return &n.DeployStep
	case ServiceSteps:
		return &n.ServiceStep
	}
	return &n.CleanStep
}

// runSteps runs steps in order, showing each in the node's step field. A step that waits for
// a callback, or a hold step, parks the node with the remaining steps saved; resume continues.
func (c *Conductor) runSteps(ctx context.Context, t *Task, kind StepKind, steps []Step) {
	for i, step := range steps {
		if err := t.Save(ctx, func(n *ironwork.Node) {
			*stepField(n, kind) = step.Object()
			if n.DriverInternalInfo == nil {
				n.DriverInternalInfo = ironwork.JSONObject{}
			}
			n.DriverInternalInfo[remainingKey] = stepsToInfo(steps[i+1:])
			n.DriverInternalInfo[stepKindKey] = string(kind)
		}); err != nil {
			c.fail(ctx, t, err)
			return
		}
		t.Log.Info("running step", "kind", kind, "interface", step.Interface, "step", step.Name, "priority", step.Priority)
		wait, err := c.runStep(ctx, t, step)
		if err != nil {
			c.failSteps(ctx, t, kind, fmt.Errorf("%s step %s.%s failed on node %s: %s", kind, step.Interface, step.Name, t.Node.UUID, errText(err)))
			return
		}
		if step.Name == "hold" {
			c.transitionOrLog(ctx, t, ironwork.EventHold, "")
			return
		}
		if wait {
			c.transitionOrLog(ctx, t, ironwork.EventWait, "")
			return
		}
	}
	manual, _ := t.Node.DriverInternalInfo[manualKey].(bool)
	ev := ironwork.EventDone
	if kind == CleanSteps && manual {
		ev = ironwork.EventManage
	}
	if err := c.transitionWith(ctx, t, ev, "", "", func(n *ironwork.Node) {
		*stepField(n, kind) = ironwork.JSONObject{}
		delete(n.DriverInternalInfo, remainingKey)
		delete(n.DriverInternalInfo, stepKindKey)
		delete(n.DriverInternalInfo, manualKey)
		if kind == DeploySteps {
			n.ConductorAffinity = c.id
		}
	}); err != nil {
		t.Log.Error("finish steps", "kind", kind, "error", err)
	}
}

func errText(err error) string {
	if ironwork.ErrorCode(err) == ironwork.EINTERNAL {
		return err.Error()
	}
	return ironwork.ErrorMessage(err)
}

// failSteps clears the step fields and fails the node.
func (c *Conductor) failSteps(ctx context.Context, t *Task, kind StepKind, err error) {
	_ = t.Save(ctx, func(n *ironwork.Node) {
		*stepField(n, kind) = ironwork.JSONObject{}
		delete(n.DriverInternalInfo, remainingKey)
	})
	c.fail(ctx, t, err)
}

// runStep runs one step: the conductor's own steps (power, hold), or the interface's.
func (c *Conductor) runStep(ctx context.Context, t *Task, step Step) (bool, error) {
	switch step.Name {
	case "hold", "wait":
		return step.Name == "wait", nil
	case "power_on", "power_off", "reboot":
		target := map[string]ironwork.PowerState{"power_on": ironwork.PowerOn, "power_off": ironwork.PowerOff, "reboot": ironwork.Rebooting}[step.Name]
		return false, c.doPower(ctx, t, target, c.cfg.PowerActionTimeout)
	}
	impl := t.Driver.Impl(step.Interface)
	if step.Interface == ironwork.DeployInterface && step.Name == "deploy" {
		if d, ok := impl.(Deploy); ok {
			return d.Deploy(ctx, t)
		}
	}
	r, ok := impl.(StepRunner)
	if !ok {
		return false, ironwork.Errorf(ironwork.EINVALID, "the %s interface cannot run steps", step.Interface)
	}
	return r.RunStep(ctx, t, step)
}

// Resume continues the steps of a node that waited for a callback (an agent finished a step).
func (c *Conductor) Resume(ctx context.Context, ident string) error {
	t, err := c.lock(ctx, ident)
	if err != nil {
		return err
	}
	done, err := c.acquireWorker()
	if err != nil {
		c.release(t.Node)
		return err
	}
	if err := c.transition(ctx, t, ironwork.EventResume, "", ""); err != nil {
		done()
		c.release(t.Node)
		return err
	}
	c.background(t, done, c.continueSteps)
	return nil
}

// continueSteps runs the remaining steps saved in a node's internal info.
func (c *Conductor) continueSteps(ctx context.Context, t *Task) {
	kind := StepKind(fmt.Sprint(t.Node.DriverInternalInfo[stepKindKey]))
	steps := stepsFromInfo(t.Node.DriverInternalInfo, remainingKey)
	c.runSteps(ctx, t, kind, steps)
}

// unhold moves a held node back to its wait state and continues its steps.
func (c *Conductor) unhold(ctx context.Context, t *Task) {
	// The unhold event already moved the node to the wait state; the remaining steps go on.
	if err := c.transition(ctx, t, ironwork.EventResume, "", ""); err != nil {
		t.Log.Error("resume after unhold", "error", err)
		return
	}
	c.continueSteps(ctx, t)
}

// abort stops the work of a node that waits or holds.
func (c *Conductor) abort(ctx context.Context, t *Task) error {
	reason := fmt.Sprintf("Operation aborted by request while the node was in state \"%s\".", t.Node.ProvisionState)
	if t.Node.ProvisionState == ironwork.ServiceFailed {
		reason = ""
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		n.CleanStep, n.DeployStep, n.ServiceStep = ironwork.JSONObject{}, ironwork.JSONObject{}, ironwork.JSONObject{}
		delete(n.DriverInternalInfo, remainingKey)
	}); err != nil {
		return err
	}
	return c.transition(ctx, t, ironwork.EventAbort, reason, "")
}

// tearDown undeploys a node, then cleans it.
func (c *Conductor) tearDown(ctx context.Context, t *Task) {
	if d, ok := t.Driver.Impl(ironwork.DeployInterface).(Deploy); ok {
		if err := d.TearDown(ctx, t); err != nil {
			c.fail(ctx, t, fmt.Errorf("Failed to tear down node %s: %s", t.Node.UUID, errText(err)))
			return
		}
	}
	// As in Ironic, a torn-down node loses its allocation.
	if err := c.store.DeleteNodeAllocation(ctx, t.Node.ID); err != nil {
		c.fail(ctx, t, err)
		return
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		n.InstanceInfo, n.InstanceUUID, n.InstanceName = ironwork.JSONObject{}, "", ""
		n.DeployStep = ironwork.JSONObject{}
	}); err != nil {
		c.fail(ctx, t, err)
		return
	}
	if err := c.transition(ctx, t, ironwork.EventClean, "", ""); err != nil {
		t.Log.Error("start cleaning after tear down", "error", err)
		return
	}
	c.startClean(ctx, t, nil)
}

func (c *Conductor) inspect(ctx context.Context, t *Task) {
	now := time.Now().UTC()
	_ = t.Save(ctx, func(n *ironwork.Node) { n.InspectionStartedAt, n.InspectionFinishedAt = &now, nil })
	in, ok := t.Driver.Impl(ironwork.InspectInterface).(Inspector)
	if !ok {
		c.fail(ctx, t, ironwork.Errorf(ironwork.EINVALID, "the inspect interface %q cannot inspect", t.Node.Interfaces[ironwork.InspectInterface]))
		return
	}
	wait, err := in.Inspect(ctx, t)
	if err != nil {
		c.fail(ctx, t, fmt.Errorf("Failed to inspect node %s: %s", t.Node.UUID, errText(err)))
		return
	}
	if wait {
		c.transitionOrLog(ctx, t, ironwork.EventWait, "")
		return
	}
	end := time.Now().UTC()
	_ = t.Save(ctx, func(n *ironwork.Node) { n.InspectionFinishedAt = &end })
	c.transitionOrLog(ctx, t, ironwork.EventDone, "")
}

func (c *Conductor) adopt(ctx context.Context, t *Task) {
	if err := c.validateFor(ctx, t, ironwork.PowerInterface, ironwork.DeployInterface, ironwork.BootInterface); err != nil {
		c.fail(ctx, t, err)
		return
	}
	if b, ok := t.Driver.Impl(ironwork.BootInterface).(Boot); ok {
		if err := b.PrepareInstance(ctx, t); err != nil {
			c.fail(ctx, t, fmt.Errorf("Failed to prepare the instance boot of node %s: %s", t.Node.UUID, errText(err)))
			return
		}
	}
	c.transitionOrLog(ctx, t, ironwork.EventDone, "")
}

func (c *Conductor) rescue(ctx context.Context, t *Task) {
	r, ok := t.Driver.Impl(ironwork.RescueInterface).(Rescuer)
	if !ok {
		c.fail(ctx, t, ironwork.Errorf(ironwork.EINVALID, "the rescue interface %q cannot rescue", t.Node.Interfaces[ironwork.RescueInterface]))
		return
	}
	wait, err := r.Rescue(ctx, t)
	if err != nil {
		c.fail(ctx, t, fmt.Errorf("Failed to rescue node %s: %s", t.Node.UUID, errText(err)))
		return
	}
	if wait {
		c.transitionOrLog(ctx, t, ironwork.EventWait, "")
		return
	}
	c.transitionOrLog(ctx, t, ironwork.EventDone, "")
}

func (c *Conductor) unrescue(ctx context.Context, t *Task) {
	r, ok := t.Driver.Impl(ironwork.RescueInterface).(Rescuer)
	if ok {
		if err := r.Unrescue(ctx, t); err != nil {
			c.fail(ctx, t, fmt.Errorf("Failed to unrescue node %s: %s", t.Node.UUID, errText(err)))
			return
		}
	}
	_ = t.Save(ctx, func(n *ironwork.Node) { delete(n.InstanceInfo, "rescue_password") })
	c.transitionOrLog(ctx, t, ironwork.EventDone, "")
}
