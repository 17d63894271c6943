package conductor

import (
	"context"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
)

// Indicator states, as Ironic's indicator_states.
const (
	IndicatorOn       = "ON"
	IndicatorOff      = "OFF"
	IndicatorBlinking = "BLINKING"
	IndicatorUnknown  = "UNKNOWN"
)

// Indicator components, as Ironic's components.
const (
	ComponentSystem  = "system"
	ComponentChassis = "chassis"
	ComponentDisk    = "disk"
)

// IndicatorComponents are the hardware components indicators belong to, in Ironic's order.
func IndicatorComponents() []string {
	return []string{ComponentSystem, ComponentChassis, ComponentDisk}
}

// IndicatorSettable are the states an indicator can be set to.
func IndicatorSettable() []string { return []string{IndicatorOn, IndicatorOff, IndicatorBlinking} }

// IndicatorInfo is what a management interface says about one of its indicators.
type IndicatorInfo struct {
	ReadOnly bool     `json:"readonly"`
	States   []string `json:"states"`
}

// Indicators is a management interface's ability to list, read and set a node's indicators
// (LEDs), Ironic's get_supported_indicators, get_indicator_state and set_indicator_state.
// Supported maps component to indicator name to its description.
type Indicators interface {
	SupportedIndicators(ctx context.Context, t *Task) (map[string]map[string]IndicatorInfo, error)
	IndicatorState(ctx context.Context, t *Task, component, name string) (string, error)
	SetIndicatorState(ctx context.Context, t *Task, component, name, state string) error
}

type (
	// IndicatorRequest names one indicator of a node.
	IndicatorRequest struct {
		NodeRef
		Component string `json:"component"`
		Name      string `json:"name"`
	}
	// SetIndicatorRequest sets one indicator of a node to State.
	SetIndicatorRequest struct {
		IndicatorRequest
		State string `json:"state"`
	}
)

// The indicator operations (API 1.63).
var (
	OpSupportedIndicators = Op[NodeRef, map[string]map[string]IndicatorInfo]{Name: "get_supported_indicators", Run: (*Conductor).SupportedIndicators}
	OpIndicatorState      = Op[IndicatorRequest, string]{Name: "get_indicator_state", Run: (*Conductor).IndicatorState}
	OpSetIndicatorState   = Action("set_indicator_state", (*Conductor).SetIndicatorState)
)

// indicatorsOf validates the node's management interface and returns its indicators.
func indicatorsOf(ctx context.Context, t *Task) (Indicators, error) {
	impl := t.Driver.Impl(ironwork.ManagementInterface)
	if v, ok := impl.(Validator); ok {
		if err := v.Validate(ctx, t); err != nil {
			return nil, err
		}
	}
	ind, ok := impl.(Indicators)
	if !ok {
		return nil, ironwork.Errorf(ironwork.EINVALID, "Driver %s does not support indicators (disabled or not implemented).", t.Node.Driver)
	}
	return ind, nil
}

func checkComponent(component string) error {
	if !slices.Contains(IndicatorComponents(), component) {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid component %s specified (valid are %s).", component, strings.Join(IndicatorComponents(), ", "))
	}
	return nil
}

// SupportedIndicators lists a node's indicators by component.
func (c *Conductor) SupportedIndicators(ctx context.Context, req NodeRef) (map[string]map[string]IndicatorInfo, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	ind, err := indicatorsOf(ctx, t)
	if err != nil {
		return nil, err
	}
	return ind.SupportedIndicators(ctx, t)
}

// IndicatorState reads the state of one indicator of a node.
func (c *Conductor) IndicatorState(ctx context.Context, req IndicatorRequest) (string, error) {
	if err := checkComponent(req.Component); err != nil {
		return "", err
	}
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return "", err
	}
	ind, err := indicatorsOf(ctx, t)
	if err != nil {
		return "", err
	}
	return ind.IndicatorState(ctx, t, req.Component, req.Name)
}

// SetIndicatorState sets one indicator of a node, under the node's lock.
func (c *Conductor) SetIndicatorState(ctx context.Context, req SetIndicatorRequest) error {
	if err := checkComponent(req.Component); err != nil {
		return err
	}
	if !slices.Contains(IndicatorSettable(), req.State) {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid indicator state %s specified (valid are %s).", req.State, strings.Join(IndicatorSettable(), ", "))
	}
	return c.withLock(ctx, req.Node, func(t *Task) error {
		ind, err := indicatorsOf(ctx, t)
		if err != nil {
			return err
		}
		if err := ind.SetIndicatorState(ctx, t, req.Component, req.Name, req.State); err != nil {
			return err
		}
		t.Log.Info("indicator set", "component", req.Component, "indicator", req.Name, "state", req.State)
		return nil
	})
}
