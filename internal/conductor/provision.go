package conductor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/configdrive"
)

// Provision starts a provision action on a node. Work that takes time runs in the background
// under the node's lock; the call returns once the node is in the first state of the action.
func (c *Conductor) Provision(ctx context.Context, req ProvisionRequest) error {
	verb, ok := ironwork.LookupVerb(req.Target)
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid provision state target %q.", req.Target)
	}
	ev := verb.Event
	t, err := c.lock(ctx, req.Node)
	if err != nil {
		return err
	}
	handedOff := false
	defer func() {
		if !handedOff {
			c.release(t.Node)
		}
	}()
	if err := provisionAllowed(t.Node, ev, req.Target); err != nil {
		return err
	}

	// Events that only change state run here, under the request's lock.
	switch {
	case ev == ironwork.EventAbort:
		var err error
		handedOff, err = c.abort(ctx, t)
		return err
	case ev == ironwork.EventManage && t.Node.ProvisionState != ironwork.Enroll:
		return c.transition(ctx, t, ev, "", "")
	}

	start, ok := c.starters()[ev]
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "The requested action \"%s\" is not supported.", req.Target)
	}
	work, target, err := start(ctx, t, req)
	if err != nil {
		return err
	}
	release, err := c.admit(ev)
	if err != nil {
		return err
	}
	if err := c.transition(ctx, t, ev, "", target); err != nil {
		release()
		return err
	}
	handedOff = true
	c.background(t, release, work)
	return nil
}

// provisionAllowed refuses an event the node's state, protection or maintenance forbids.
func provisionAllowed(n *ironwork.Node, ev ironwork.Event, verb string) error {
	if _, ok := ironwork.NextState(n.ProvisionState, ev); !ok {
		return ironwork.Errorf(ironwork.EINVALID, "The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".",
			verb, n.UUID, n.ProvisionState)
	}
	if n.Protected && (ev == ironwork.EventDelete || ev == ironwork.EventRebuild) {
		return ironwork.Errorf(ironwork.EFORBIDDEN, "Node %s is protected and cannot be undeployed, rebuilt or deleted", n.UUID)
	}
	if n.Maintenance && ev != ironwork.EventManage && ev != ironwork.EventAbort && ev != ironwork.EventDelete {
		return ironwork.Errorf(ironwork.EINVALID, "Node %s is in maintenance mode: take it out of maintenance before \"%s\".", n.UUID, verb)
	}
	return nil
}

// work is what a provision action does in the background, under the node's lock.
type work func(ctx context.Context, t *Task)

// starter checks a provision request under the node's lock and prepares its work; target, when
// not empty, overrides the machine's target state of the first transition.
type starter func(ctx context.Context, t *Task, req ProvisionRequest) (w work, target ironwork.ProvisionState, err error)

// starters maps each event of a provision verb (ironwork.ProvisionVerbs) that starts
// background work to its starter.
func (c *Conductor) starters() map[ironwork.Event]starter {
	return map[ironwork.Event]starter{
		ironwork.EventManage:   only(c.verify),
		ironwork.EventProvide:  only(func(ctx context.Context, t *Task) { c.startClean(ctx, t, nil) }),
		ironwork.EventClean:    c.startManualClean,
		ironwork.EventDeploy:   c.startDeploy,
		ironwork.EventRebuild:  c.startDeploy,
		ironwork.EventDelete:   only(c.tearDown),
		ironwork.EventInspect:  only(c.inspect),
		ironwork.EventAdopt:    only(c.adopt),
		ironwork.EventRescue:   c.startRescue,
		ironwork.EventUnrescue: only(c.unrescue),
		ironwork.EventService:  c.startService,
		ironwork.EventUnhold:   only(c.unhold),
	}
}

// only is the starter of work that needs no checks.
func only(w work) starter {
	return func(context.Context, *Task, ProvisionRequest) (work, ironwork.ProvisionState, error) {
		return w, "", nil
	}
}

func (c *Conductor) startManualClean(ctx context.Context, t *Task, req ProvisionRequest) (work, ironwork.ProvisionState, error) {
	steps, err := manualSteps(t.Driver, CleanSteps, req.CleanSteps)
	if err != nil {
		return nil, "", err
	}
	if err := c.checkSteps(ctx, t, CleanSteps, steps, req.DisableRamdisk); err != nil {
		return nil, "", err
	}
	return func(ctx context.Context, t *Task) { c.startClean(ctx, t, steps) }, ironwork.Manageable, nil
}

func (c *Conductor) startService(ctx context.Context, t *Task, req ProvisionRequest) (work, ironwork.ProvisionState, error) {
	steps, err := manualSteps(t.Driver, ServiceSteps, req.ServiceSteps)
	if err != nil {
		return nil, "", err
	}
	if err := c.checkSteps(ctx, t, ServiceSteps, steps, req.DisableRamdisk); err != nil {
		return nil, "", err
	}
	return func(ctx context.Context, t *Task) { c.runSteps(ctx, t, ServiceSteps, steps) }, "", nil
}

// startDeploy validates a deploy or rebuild, merges its steps and stores its config drive.
func (c *Conductor) startDeploy(ctx context.Context, t *Task, req ProvisionRequest) (work, ironwork.ProvisionState, error) {
	n := t.Node
	if err := c.validateFor(ctx, t, ironwork.PowerInterface, ironwork.DeployInterface, ironwork.BootInterface); err != nil {
		return nil, "", err
	}
	traits, err := instanceTraits(n)
	if err != nil {
		return nil, "", ironwork.Errorf(ironwork.EINVALID, "Failed to validate deploy or power info for node %s: %s", n.UUID, err.Error())
	}
	steps, failure, err := c.deploySteps(ctx, t, req.DeploySteps, traits)
	if err != nil {
		return nil, "", err
	}
	if err := c.checkSteps(ctx, t, DeploySteps, steps, false); err != nil {
		return nil, "", err
	}
	if err := c.saveConfigDrive(ctx, t, req.ConfigDrive); err != nil {
		return nil, "", err
	}
	if failure == nil && len(steps) > 0 {
		// The node shows its first step as it enters deploying: one write less per deploy.
		t.pending = func(n *ironwork.Node) { showStep(n, DeploySteps, steps, 0) }
	}
	return func(ctx context.Context, t *Task) {
		if failure != nil {
			c.fail(ctx, t, failure)
			return
		}
		c.runSteps(ctx, t, DeploySteps, steps)
	}, "", nil
}

// saveConfigDrive stores a deploy's config drive in instance_info. As Ironic, the object form
// is built into an image when the deploy starts, and only the gzipped, base64-encoded image is
// stored.
func (c *Conductor) saveConfigDrive(ctx context.Context, t *Task, cd *ConfigDrive) error {
	if cd == nil {
		return nil
	}
	encoded := cd.Encoded
	if cd.Dict != nil {
		built, err := configdrive.BuildEncoded(cd.Dict, t.Node.UUID, t.Node.Name)
		if err != nil {
			return ironwork.Errorf(ironwork.EINVALID, "Invalid configdrive format: %v", err)
		}
		encoded = built
	}
	return t.Save(ctx, func(n *ironwork.Node) { setInstanceInfo(n, "configdrive", encoded) })
}

// startRescue stores the hash of the rescue password the rescue ramdisk sets; the password
// itself is never stored.
func (c *Conductor) startRescue(ctx context.Context, t *Task, req ProvisionRequest) (work, ironwork.ProvisionState, error) {
	if err := req.HashRescuePassword(); err != nil {
		return nil, "", err
	}
	if !strings.HasPrefix(req.RescuePasswordHash, "$6$") {
		return nil, "", ironwork.Errorf(ironwork.EINVALID, "A non-empty \"rescue_password\" is required when setting target provision state to rescue.")
	}
	if err := c.checkRescuable(ctx, t); err != nil {
		return nil, "", err
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		delete(n.InstanceInfo, "rescue_password")
		setInstanceInfo(n, RescuePasswordHashKey, req.RescuePasswordHash)
	}); err != nil {
		return nil, "", err
	}
	return c.rescue, "", nil
}

func setInstanceInfo(n *ironwork.Node, key string, v any) {
	if n.InstanceInfo == nil {
		n.InstanceInfo = ironwork.JSONObject{}
	}
	n.InstanceInfo[key] = v
}

// admit takes a worker, and a deploy or clean slot for those events, before any state
// changes; release gives them back.
func (c *Conductor) admit(ev ironwork.Event) (release func(), err error) {
	counter := map[ironwork.Event]*atomicCounter{ironwork.EventDeploy: {&c.deploys, c.cfg.MaxConcurrentDeploy},
		ironwork.EventRebuild: {&c.deploys, c.cfg.MaxConcurrentDeploy}, ironwork.EventProvide: {&c.cleans, c.cfg.MaxConcurrentClean},
		ironwork.EventClean: {&c.cleans, c.cfg.MaxConcurrentClean}}[ev]
	if !counter.take() {
		return nil, ironwork.Errorf(ironwork.EUNAVAILABLE, "The number of concurrent %s operations on this conductor has reached its limit (%d); retry later.", ev, counter.limit)
	}
	done, err := c.acquireWorker()
	if err != nil {
		counter.give()
		return nil, err
	}
	return func() { counter.give(); done() }, nil
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
	c.cacheBIOS(ctx, t)
	c.cacheFirmware(ctx, t)
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
	if err := t.Save(ctx, func(n *ironwork.Node) { setManualClean(n, manual != nil) }); err != nil {
		c.fail(ctx, t, err)
		return
	}
	c.cacheBIOS(ctx, t)
	c.cacheFirmware(ctx, t)
	c.runSteps(ctx, t, CleanSteps, steps)
}

// deploySteps merges the driver's automatic deploy steps with the requested ones and those of
// the deploy templates the instance traits name, as Ironic: requested steps override template
// steps, both override the driver's step of the same interface and name, and priority 0
// disables a step. failure is the error the deploy must fail with (a template step the driver
// does not offer); err refuses the request.
func (c *Conductor) deploySteps(ctx context.Context, t *Task, requested []StepRequest, traits []string) (steps []Step, failure, err error) {
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

// showStep shows steps[i] as the node's current step of a kind and saves the steps after it.
func showStep(n *ironwork.Node, kind StepKind, steps []Step, i int) {
	*stepField(n, kind) = steps[i].Object()
	setRemainingSteps(n, kind, steps[i+1:])
}

// runSteps runs steps in order, showing each in the node's step field. A step that waits for
// a callback, or a hold step, parks the node with the remaining steps saved; resume continues.
func (c *Conductor) runSteps(ctx context.Context, t *Task, kind StepKind, steps []Step) {
	for i, step := range steps {
		if i == 0 && t.stepShown {
			t.stepShown = false // the transition that started the work wrote it
		} else if err := t.Save(ctx, func(n *ironwork.Node) { showStep(n, kind, steps, i) }); err != nil {
			c.fail(ctx, t, err)
			return
		}
		t.Log.Info("running step", "kind", kind, "interface", step.Interface, "step", step.Name, "priority", step.Priority)
		start := time.Now()
		wait, err := c.runStep(ctx, t, step)
		switch {
		case err != nil:
			c.metrics.StepDone(kind, step.Interface, step.Name, "failure", time.Since(start))
		case wait:
			c.stepWaits(t.Node.UUID, kind, step, start)
		default:
			c.metrics.StepDone(kind, step.Interface, step.Name, "success", time.Since(start))
			switch step.Interface {
			case ironwork.BIOSInterface:
				c.cacheBIOS(ctx, t)
			case ironwork.FirmwareInterface:
				c.cacheFirmware(ctx, t)
			}
		}
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
	ev := ironwork.EventDone
	if kind == CleanSteps && loadSteps(t.Node).Manual {
		ev = ironwork.EventManage
	}
	if kind == DeploySteps {
		c.restoreConsoleAfterDeploy(ctx, t)
	}
	if err := c.transitionWith(ctx, t, ev, "", "", func(n *ironwork.Node) {
		*stepField(n, kind) = ironwork.JSONObject{}
		clearSteps(n)
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
		dropRemainingSteps(n)
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
	c.stepResumed(t.Node.UUID, time.Now())
	s := loadSteps(t.Node)
	c.runSteps(ctx, t, s.Kind, s.Remaining)
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

// abort stops the work of a node that waits or holds. As in Ironic, a node that was booted
// into a ramdisk (to deploy, clean, inspect or rescue) is powered off and no longer
// network-boots it, and its agent is forgotten: a worker does that while the node keeps its
// wait state and lock, then shows the failed state with the reason (and any clean-up failure).
// handedOff says the worker owns the node's lock now.
func (c *Conductor) abort(ctx context.Context, t *Task) (handedOff bool, err error) {
	from := t.Node.ProvisionState
	reason := fmt.Sprintf("Operation aborted by request while the node was in state \"%s\".", from)
	if from == ironwork.ServiceFailed {
		reason = ""
	}
	if (from == ironwork.CleanWait || from == ironwork.ServiceWait) && hasBMCWait(t.Node) {
		kind := loadSteps(t.Node).Kind
		if step := *stepField(t.Node, kind); len(step) > 0 {
			if abortable, _ := step["abortable"].(bool); !abortable {
				// As Ironic's: a step that cannot be stopped ends first; the BMC poll then
				// aborts instead of going on.
				t.Log.Info("the step waiting on the BMC is not abortable; aborting after it", "step", step["step"])
				return false, t.Save(ctx, func(n *ironwork.Node) {
					f := stepField(n, kind)
					cp := ironwork.JSONObject{}
					for k, v := range *f {
						cp[k] = v
					}
					cp["abort_after"] = true
					*f = cp
				})
			}
		}
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		n.CleanStep, n.DeployStep, n.ServiceStep = ironwork.JSONObject{}, ironwork.JSONObject{}, ironwork.JSONObject{}
		dropRemainingSteps(n)
	}); err != nil {
		return false, err
	}
	switch from {
	case ironwork.DeployWait, ironwork.DeployHold, ironwork.CleanWait, ironwork.CleanHold, ironwork.InspectWait, ironwork.RescueWait:
	default:
		return false, c.transition(ctx, t, ironwork.EventAbort, reason, "")
	}
	done, err := c.acquireWorker()
	if err != nil {
		return false, err
	}
	if from == ironwork.RescueWait {
		c.background(t, done, c.abortRescue)
		return true, nil
	}
	c.background(t, done, func(ctx context.Context, t *Task) {
		var problems []string
		if err := c.doPower(ctx, t, ironwork.PowerOff, c.cfg.PowerActionTimeout); err != nil {
			problems = append(problems, "power off: "+errText(err))
		}
		if b, ok := t.Driver.Impl(ironwork.BootInterface).(Boot); ok {
			if err := b.CleanUpRamdisk(ctx, t); err != nil {
				problems = append(problems, "remove the ramdisk boot: "+errText(err))
			}
		}
		msg := reason
		if len(problems) > 0 {
			msg += " Cleaning up after the abort failed: " + strings.Join(problems, "; ")
			t.Log.Warn("clean up after abort", "state", from, "error", strings.Join(problems, "; "))
		}
		if err := c.transitionWith(ctx, t, ironwork.EventAbort, msg, "", ForgetAgent); err != nil {
			t.Log.Error("abort", "state", from, "error", err)
		}
	})
	return true, nil
}

// tearDown undeploys a node, then cleans it.
func (c *Conductor) tearDown(ctx context.Context, t *Task) {
	c.hideConsole(ctx, t)
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
	if hw, ok := t.Driver.Impl(ironwork.InspectInterface).(HardwareInspector); ok {
		c.inspectOutOfBand(ctx, t, hw)
		return
	}
	in, ok := t.Driver.Impl(ironwork.InspectInterface).(Inspector)
	if !ok {
		c.fail(ctx, t, cannot(t, ironwork.InspectInterface, "inspect"))
		return
	}
	wait, err := in.Inspect(ctx, t)
	if !c.settle(ctx, t, wait, err, "Failed to inspect") {
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
		c.fail(ctx, t, cannot(t, ironwork.RescueInterface, "rescue"))
		return
	}
	wait, err := r.Rescue(ctx, t)
	if err != nil {
		c.failRescue(ctx, t, fmt.Sprintf("Failed to rescue node %s: %s", t.Node.UUID, errText(err)))
		return
	}
	if c.settle(ctx, t, wait, nil, "Failed to rescue") {
		c.transitionOrLog(ctx, t, ironwork.EventDone, "")
	}
}

// settle moves a node on after work that may wait for a callback: it fails the node with
// err ("<failure> node X: <err>"), or parks it in the wait state; done reports neither.
func (c *Conductor) settle(ctx context.Context, t *Task, wait bool, err error, failure string) (done bool) {
	if err != nil {
		c.fail(ctx, t, fmt.Errorf("%s node %s: %s", failure, t.Node.UUID, errText(err)))
		return false
	}
	if wait {
		c.transitionOrLog(ctx, t, ironwork.EventWait, "")
		return false
	}
	return true
}

// cannot is the error for a node whose interface of kind lacks an ability.
func cannot(t *Task, kind ironwork.InterfaceKind, verb string) error {
	return ironwork.Errorf(ironwork.EINVALID, "the %s interface %q cannot %s", kind, t.Node.Interfaces[kind], verb)
}

func (c *Conductor) unrescue(ctx context.Context, t *Task) {
	r, ok := t.Driver.Impl(ironwork.RescueInterface).(Rescuer)
	if ok {
		if err := r.Unrescue(ctx, t); err != nil {
			c.fail(ctx, t, fmt.Errorf("Failed to unrescue node %s: %s", t.Node.UUID, errText(err)))
			return
		}
	}
	if err := c.transitionWith(ctx, t, ironwork.EventDone, "", "", func(n *ironwork.Node) {
		forgetRescuePassword(n)
		ForgetAgent(n)
	}); err != nil {
		t.Log.Error("finish the unrescue", "error", err)
	}
}
