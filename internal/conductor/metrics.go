package conductor

import (
	"sync"
	"time"

	"github.com/ironwork/ironwork"
)

// Metrics receives what the conductor measures. The server passes one backed by Prometheus
// (internal/metrics); a nil Config.Metrics measures nothing. Implementations must be safe for
// concurrent use and return at once.
type Metrics interface {
	// Transition counts one provision state change.
	Transition(from, to ironwork.ProvisionState, ev ironwork.Event)
	// StepDone records a clean, deploy or service step that finished (result "success" or
	// "failure"), from its start to its end, waits for the agent included.
	StepDone(kind StepKind, iface ironwork.InterfaceKind, step, result string, d time.Duration)
	// PhaseDone records a whole deploy, clean or inspection (phase "deploy", "clean",
	// "inspect"), from entering it to leaving it, waits included.
	PhaseDone(phase, result string, d time.Duration)
	// BMCError counts a failed call to a node's BMC by the node's hardware type (driver).
	BMCError(driver, call string)
	// SensorsRead replaces the sensor readings of the last collection, by node UUID.
	SensorsRead(readings map[string][]Sensor)
}

// noMetrics measures nothing.
type noMetrics struct{}

func (noMetrics) Transition(ironwork.ProvisionState, ironwork.ProvisionState, ironwork.Event) {}
func (noMetrics) StepDone(StepKind, ironwork.InterfaceKind, string, string, time.Duration)    {}
func (noMetrics) PhaseDone(string, string, time.Duration)                                     {}
func (noMetrics) BMCError(string, string)                                                     {}
func (noMetrics) SensorsRead(map[string][]Sensor)                                             {}

// phaseOf names the long operation a provision state belongs to, or "".
func phaseOf(s ironwork.ProvisionState) string {
	switch s {
	case ironwork.Deploying, ironwork.DeployWait, ironwork.DeployHold:
		return "deploy"
	case ironwork.Cleaning, ironwork.CleanWait, ironwork.CleanHold:
		return "clean"
	case ironwork.Inspecting, ironwork.InspectWait:
		return "inspect"
	}
	return ""
}

// timings remembers, per node, when its current phase and its waiting step began, so that a
// deploy or a step that waits for an agent is measured from start to end. It is the
// conductor's memory only: a phase begun by another conductor (or before a restart) is not
// measured.
type timings struct {
	mu     sync.Mutex
	phases map[string]phaseStart // by node UUID
	steps  map[string]stepStart  // by node UUID: the step that waits for a callback
}

type phaseStart struct {
	phase string
	at    time.Time
}

type stepStart struct {
	kind StepKind
	step Step
	at   time.Time
}

// observeTransition counts a transition and starts or ends the node's phase.
func (c *Conductor) observeTransition(node string, from, to ironwork.ProvisionState, ev ironwork.Event, now time.Time) {
	c.metrics.Transition(from, to, ev)
	pf, pt := phaseOf(from), phaseOf(to)
	if pf == pt {
		return
	}
	c.timings.mu.Lock()
	start, started := c.timings.phases[node]
	delete(c.timings.phases, node)
	if pt != "" {
		c.timings.phases[node] = phaseStart{phase: pt, at: now}
	}
	var waiting *stepStart
	if pf != "" {
		if s, ok := c.timings.steps[node]; ok {
			waiting = &s
			delete(c.timings.steps, node)
		}
	}
	c.timings.mu.Unlock()
	result := "success"
	if failedState(to) {
		result = "failure"
	}
	if waiting != nil && result == "failure" {
		c.metrics.StepDone(waiting.kind, waiting.step.Interface, waiting.step.Name, result, now.Sub(waiting.at))
	}
	if pf != "" && started && start.phase == pf {
		c.metrics.PhaseDone(pf, result, now.Sub(start.at))
	}
}

// failedState reports whether s is one of the "... failed" states.
func failedState(s ironwork.ProvisionState) bool {
	switch s {
	case ironwork.DeployFailed, ironwork.CleanFailed, ironwork.InspectFailed, ironwork.RescueFailed,
		ironwork.UnrescueFailed, ironwork.ServiceFailed, ironwork.AdoptFailed, ironwork.ProvisionError:
		return true
	}
	return false
}

// stepWaits remembers a step that now waits for its agent; stepResumed ends it.
func (c *Conductor) stepWaits(node string, kind StepKind, step Step, start time.Time) {
	c.timings.mu.Lock()
	c.timings.steps[node] = stepStart{kind: kind, step: step, at: start}
	c.timings.mu.Unlock()
}

// stepResumed records the end of the step a node waited on, if this conductor started it.
func (c *Conductor) stepResumed(node string, now time.Time) {
	c.timings.mu.Lock()
	s, ok := c.timings.steps[node]
	delete(c.timings.steps, node)
	c.timings.mu.Unlock()
	if ok {
		c.metrics.StepDone(s.kind, s.step.Interface, s.step.Name, "success", now.Sub(s.at))
	}
}
