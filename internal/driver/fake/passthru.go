package fake

import (
	"context"
	"slices"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

var (
	_ conductor.Vendor     = Interface{}
	_ conductor.Indicators = Interface{}
)

// The fake vendor interface's methods are Ironic's fake ones (its FakeVendorB), so that a
// client's tests written against Ironic's fake-hardware pass here: each checks its "bar"
// argument against a word and answers true or false.
var fakeWords = map[string]string{"second_method": "kazoo", "third_method_sync": "meow", "fourth_method_shared_lock": "woof"}

// VendorMethods implements conductor.Vendor.
func (Interface) VendorMethods() map[string]conductor.PassthruMethod {
	post := []string{"POST"}
	return map[string]conductor.PassthruMethod{
		"second_method":             {HTTPMethods: post, Async: true, RequireExclusiveLock: true, Description: "Test if the value of bar is kazoo"},
		"third_method_sync":         {HTTPMethods: post, RequireExclusiveLock: true, Description: "Test if the value of bar is meow"},
		"fourth_method_shared_lock": {HTTPMethods: post, Async: true, Description: "Test if the value of bar is woof"},
		"log_passthrough":           {HTTPMethods: post, Async: true, RequireExclusiveLock: true, Description: "Test pass-through to wait."},
	}
}

// ValidatePassthru implements conductor.Vendor: the methods that compare need "bar".
func (Interface) ValidatePassthru(_ context.Context, _ *conductor.Task, call conductor.PassthruCall) error {
	if _, ok := fakeWords[call.Method]; ok {
		if bar, _ := call.Args["bar"].(string); bar == "" {
			return ironwork.Errorf(ironwork.EINVALID, "Parameter 'bar' not passed to method '%s'.", call.Method)
		}
	}
	return nil
}

// CallPassthru implements conductor.Vendor.
func (Interface) CallPassthru(_ context.Context, t *conductor.Task, call conductor.PassthruCall) (any, error) {
	if word, ok := fakeWords[call.Method]; ok {
		bar, _ := call.Args["bar"].(string)
		return bar == word, nil
	}
	t.Log.Debug("fake vendor passthru", "method", call.Method, "args", len(call.Args))
	return nil, nil
}

// SupportedIndicators implements conductor.Indicators with Ironic's fake indicators: a
// read-only chassis LED and a system LED.
func (Interface) SupportedIndicators(context.Context, *conductor.Task) (map[string]map[string]conductor.IndicatorInfo, error) {
	return map[string]map[string]conductor.IndicatorInfo{
		conductor.ComponentChassis: {"led-0": {ReadOnly: true, States: []string{conductor.IndicatorOff, conductor.IndicatorOn}}},
		conductor.ComponentSystem:  {"led": {States: []string{conductor.IndicatorBlinking, conductor.IndicatorOff, conductor.IndicatorOn}}},
	}, nil
}

// IndicatorState implements conductor.Indicators: every fake indicator is on, as Ironic's.
func (f Interface) IndicatorState(ctx context.Context, t *conductor.Task, component, name string) (string, error) {
	all, _ := f.SupportedIndicators(ctx, t)
	if _, ok := all[component]; !ok {
		return "", ironwork.Errorf(ironwork.EINVALID, "Invalid component %s specified.", component)
	}
	if _, ok := all[component][name]; !ok {
		return "", ironwork.Errorf(ironwork.EINVALID, "Invalid indicator %s specified.", name)
	}
	return conductor.IndicatorOn, nil
}

// SetIndicatorState implements conductor.Indicators: the fake LEDs cannot be changed (Ironic's
// fake management interface has no set_indicator_state either), but a wrong name is told first.
func (f Interface) SetIndicatorState(ctx context.Context, t *conductor.Task, component, name, state string) error {
	if _, err := f.IndicatorState(ctx, t, component, name); err != nil {
		return err
	}
	if !slices.Contains(conductor.IndicatorSettable(), state) {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid indicator state %s specified.", state)
	}
	return ironwork.Errorf(ironwork.EINVALID, "Driver %s does not support set_indicator_state (disabled or not implemented).", t.Node.Driver)
}
