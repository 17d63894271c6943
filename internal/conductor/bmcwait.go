package conductor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// BMC waits: a step that started work the BMC carries on alone (a Redfish task, BIOS settings
// that apply at the next boot) records what to poll in the node (driver_internal_info
// "bmc_wait", see Task.WaitForBMC) and returns wait, so the node rests in clean wait, service
// wait or deploy wait as for an agent step, with no worker and no lock held. The periodic BMC
// poll (PollBMCWaits) asks the step's interface (BMCPoller) how the work goes, for the nodes
// the ring gives this conductor: the steps go on when it is done, fail with the BMC's message
// when it failed, and fail when the wait's deadline passes. The state lives in the node, so a
// conductor restart or a takeover by another conductor resumes the polling.

// bmcWaitKey is the driver_internal_info key of a node's BMC wait.
const bmcWaitKey = "bmc_wait"

// BMCWait is what a step left running on the BMC: Data is the interface's own poll state
// (a task monitor URI, the BIOS values expected...), Deadline when the conductor gives up.
type BMCWait struct {
	Data     map[string]any `json:"data"`
	Started  time.Time      `json:"started"`
	Deadline time.Time      `json:"deadline"`
}

// BMCPoller is a step runner whose steps can leave work running on the BMC: its RunStep
// records the work with Task.WaitForBMC and returns wait; PollBMC then says whether the work
// of the node's current step is done, and may change w (its Data, its Deadline) for the next
// poll. An error fails the step with its message.
type BMCPoller interface {
	PollBMC(ctx context.Context, t *Task, step Step, w *BMCWait) (done bool, err error)
}

// WaitForBMC records a BMC wait of the current step in the task's node; the step's RunStep
// then returns wait. The node's interface must be a BMCPoller.
func (t *Task) WaitForBMC(ctx context.Context, w BMCWait) error {
	if w.Started.IsZero() {
		w.Started = time.Now().UTC()
	}
	raw, err := bmcWaitValue(w)
	if err != nil {
		return err
	}
	return t.Save(ctx, func(n *ironwork.Node) { internalInfo(n)[bmcWaitKey] = raw })
}

// bmcWaitValue converts w to its driver_internal_info form (plain JSON values).
func bmcWaitValue(w BMCWait) (map[string]any, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode bmc wait: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("encode bmc wait: %w", err)
	}
	return out, nil
}

// loadBMCWait reads a node's BMC wait; ok is false when it has none.
func loadBMCWait(n *ironwork.Node) (w BMCWait, ok bool, err error) {
	v, ok := n.DriverInternalInfo[bmcWaitKey]
	if !ok || v == nil {
		return w, false, nil
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, &w)
	}
	if err != nil {
		return w, true, fmt.Errorf("decode bmc wait of node %s: %w", n.UUID, err)
	}
	if w.Data == nil {
		w.Data = map[string]any{}
	}
	return w, true, nil
}

// hasBMCWait reports whether a node waits on its BMC.
func hasBMCWait(n *ironwork.Node) bool {
	_, ok := n.DriverInternalInfo[bmcWaitKey]
	return ok
}

// bmcWaitStates are the states in which a step may wait on the BMC.
var bmcWaitStates = []ironwork.ProvisionState{ironwork.CleanWait, ironwork.ServiceWait, ironwork.DeployWait}

// PollBMCWaits polls the BMC work of this conductor's nodes that wait on it, BMCPollWorkers
// at a time.
func (c *Conductor) PollBMCWaits(ctx context.Context) error {
	var nodes []*ironwork.Node
	for _, st := range bmcWaitStates {
		ns, err := c.myNodes(ctx, sqlstore.NodeKeyFilter{ProvisionState: string(st)}, nil)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.Reservation == "" && hasBMCWait(n) {
				nodes = append(nodes, n)
			}
		}
	}
	jobs := make(chan *ironwork.Node)
	var wg sync.WaitGroup
	for range c.cfg.BMCPollWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				c.pollBMCOne(ctx, n.UUID)
			}
		}()
	}
	for _, n := range nodes {
		select {
		case jobs <- n:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return ctx.Err()
}

// pollBMCOne polls one node's BMC wait under its lock, and resumes or fails its steps.
func (c *Conductor) pollBMCOne(ctx context.Context, uuid string) {
	t, err := c.lock(ctx, uuid)
	if err != nil {
		return // busy (an API request, an abort): next round
	}
	handedOff := false
	defer func() {
		if !handedOff && !t.released {
			c.release(t.Node)
		}
	}()
	if !slices.Contains(bmcWaitStates, t.Node.ProvisionState) || !hasBMCWait(t.Node) {
		return // moved on meanwhile
	}
	s := loadSteps(t.Node)
	step := currentStep(t.Node, s.Kind)
	fail := func(err error) {
		c.metrics.StepDone(s.Kind, step.Interface, step.Name, "failure", 0)
		c.failSteps(ctx, t, s.Kind, fmt.Errorf("%s step %s.%s failed on node %s: %s", s.Kind, step.Interface, step.Name, t.Node.UUID, errText(err)))
	}
	w, _, err := loadBMCWait(t.Node)
	if err != nil {
		fail(err)
		return
	}
	p, ok := t.Driver.Impl(step.Interface).(BMCPoller)
	if !ok {
		fail(ironwork.Errorf(ironwork.EINVALID, "the %s interface of the node cannot poll the BMC work it waits on", step.Interface))
		return
	}
	done, _ := w.Data[bmcDoneKey].(bool)
	if !done {
		done, err = p.PollBMC(ctx, t, step, &w)
	}
	if isContextErr(err) || ctx.Err() != nil {
		return
	}
	if err != nil {
		fail(err)
		return
	}
	if !done {
		if time.Now().After(w.Deadline) {
			fail(ironwork.Errorf(ironwork.EINVALID, "the BMC did not finish the step's work within %s (started %s)",
				w.Deadline.Sub(w.Started).Round(time.Second), w.Started.Format(time.RFC3339)))
			return
		}
		raw, err := bmcWaitValue(w)
		if err == nil {
			err = t.Save(ctx, func(n *ironwork.Node) { internalInfo(n)[bmcWaitKey] = raw })
		}
		if err != nil {
			t.Log.Warn("record bmc wait", "error", err)
		}
		return
	}
	t.Log.Info("bmc work of the step done", "kind", s.Kind, "interface", step.Interface, "step", step.Name,
		"seconds", time.Since(w.Started).Round(time.Second).Seconds())
	c.metrics.StepDone(s.Kind, step.Interface, step.Name, "success", time.Since(w.Started))
	if err := t.Save(ctx, func(n *ironwork.Node) { delete(n.DriverInternalInfo, bmcWaitKey) }); err != nil {
		t.Log.Warn("clear bmc wait", "error", err)
		return
	}
	switch step.Interface {
	case ironwork.BIOSInterface:
		c.cacheBIOS(ctx, t)
	case ironwork.FirmwareInterface:
		c.cacheFirmware(ctx, t)
	}
	if after, _ := (*stepField(t.Node, s.Kind))["abort_after"].(bool); after {
		_ = t.Save(ctx, func(n *ironwork.Node) {
			*stepField(n, s.Kind) = ironwork.JSONObject{}
			dropRemainingSteps(n)
		})
		reason := fmt.Sprintf("%s operation aborted by request for node %s after its step %s.%s ended.", kindTitle(s.Kind), t.Node.UUID, step.Interface, step.Name)
		if err := c.transitionWith(ctx, t, ironwork.EventAbort, reason, "", nil); err != nil {
			t.Log.Error("abort after the step", "error", err)
		}
		return
	}
	release, err := c.acquireWorker()
	if err != nil {
		// Put the wait back with a deadline already met: the next round resumes.
		raw, _ := bmcWaitValue(BMCWait{Data: map[string]any{bmcDoneKey: true}, Started: w.Started, Deadline: w.Deadline})
		_ = t.Save(ctx, func(n *ironwork.Node) { internalInfo(n)[bmcWaitKey] = raw })
		return
	}
	if err := c.transition(ctx, t, ironwork.EventResume, "", ""); err != nil {
		release()
		t.Log.Error("resume after the bmc work", "error", err)
		return
	}
	handedOff = true
	c.background(t, release, c.continueSteps)
}

// bmcDoneKey in a BMC wait's Data says the work is done and only the resume is left (no
// worker was free when it ended).
const bmcDoneKey = "_done"

// currentStep reads the node's current step of a kind from its step field.
func currentStep(n *ironwork.Node, kind StepKind) Step {
	steps := stepsFromInfo([]any{map[string]any(*stepField(n, kind))})
	if len(steps) == 0 {
		return Step{}
	}
	return steps[0]
}

func kindTitle(k StepKind) string {
	switch k {
	case DeploySteps:
		return "Deploy"
	case ServiceSteps:
		return "Service"
	}
	return "Clean"
}
