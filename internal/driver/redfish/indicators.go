package redfish

import (
	"context"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

var _ conductor.Indicators = Interface{}

// Indicator states to Redfish IndicatorLED values and back.
var (
	toLED = map[string]schemas.IndicatorLED{
		conductor.IndicatorOn: schemas.LitIndicatorLED, conductor.IndicatorOff: schemas.OffIndicatorLED,
		conductor.IndicatorBlinking: schemas.BlinkingIndicatorLED,
	}
	fromLED = map[schemas.IndicatorLED]string{
		schemas.LitIndicatorLED: conductor.IndicatorOn, schemas.OffIndicatorLED: conductor.IndicatorOff,
		schemas.BlinkingIndicatorLED: conductor.IndicatorBlinking,
	}
)

// ledIndicator is one IndicatorLED of the node: the resource that has it and its state.
type ledIndicator struct {
	component string
	name      string // the resource's UUID (Ironic's indicator name), its Id when it has none
	path      string
	led       schemas.IndicatorLED
}

// indicators lists the IndicatorLEDs of the node's system and of its chassis, as Ironic's
// redfish management interface does (disks are not offered: see docs/vendor-passthru.md).
func (d Interface) indicators(ctx context.Context, t *conductor.Task) ([]ledIndicator, schemas.Client, func(), error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return nil, nil, nil, err
	}
	name := func(uuid, id string) string {
		if uuid != "" {
			return uuid
		}
		return id
	}
	var out []ledIndicator
	if chassis, err := sys.Chassis(); err == nil {
		for _, ch := range chassis {
			if ch.IndicatorLED != "" {
				out = append(out, ledIndicator{conductor.ComponentChassis, name(ch.UUID, ch.ID), ch.ODataID, ch.IndicatorLED})
			}
		}
	} else {
		t.Log.Debug("no chassis of the Redfish system", "error", err)
	}
	if sys.IndicatorLED != "" {
		out = append(out, ledIndicator{conductor.ComponentSystem, name(sys.UUID, sys.ID), sys.ODataID, sys.IndicatorLED})
	}
	return out, sys.GetClient(), done, nil
}

// SupportedIndicators implements conductor.Indicators: every IndicatorLED can be set to ON,
// OFF or BLINKING.
func (d Interface) SupportedIndicators(ctx context.Context, t *conductor.Task) (map[string]map[string]conductor.IndicatorInfo, error) {
	leds, _, done, err := d.indicators(ctx, t)
	if err != nil {
		return nil, err
	}
	defer done()
	out := map[string]map[string]conductor.IndicatorInfo{}
	for _, l := range leds {
		if out[l.component] == nil {
			out[l.component] = map[string]conductor.IndicatorInfo{}
		}
		out[l.component][l.name] = conductor.IndicatorInfo{States: []string{conductor.IndicatorBlinking, conductor.IndicatorOff, conductor.IndicatorOn}}
	}
	return out, nil
}

func (d Interface) findIndicator(ctx context.Context, t *conductor.Task, component, name string) (ledIndicator, schemas.Client, func(), error) {
	leds, c, done, err := d.indicators(ctx, t)
	if err != nil {
		return ledIndicator{}, nil, nil, err
	}
	for _, l := range leds {
		if l.component == component && l.name == name {
			return l, c, done, nil
		}
	}
	done()
	return ledIndicator{}, nil, nil, ironwork.Errorf(ironwork.EINVALID, "Unknown indicator %s for component %s of node %s", name, component, t.Node.UUID)
}

// IndicatorState implements conductor.Indicators.
func (d Interface) IndicatorState(ctx context.Context, t *conductor.Task, component, name string) (string, error) {
	l, _, done, err := d.findIndicator(ctx, t, component, name)
	if err != nil {
		return "", err
	}
	defer done()
	if s, ok := fromLED[l.led]; ok {
		return s, nil
	}
	return conductor.IndicatorUnknown, nil
}

// SetIndicatorState implements conductor.Indicators with a PATCH of IndicatorLED.
func (d Interface) SetIndicatorState(ctx context.Context, t *conductor.Task, component, name, state string) error {
	led, ok := toLED[state]
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid indicator state %s specified.", state)
	}
	l, c, done, err := d.findIndicator(ctx, t, component, name)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.Patch(l.path, map[string]any{"IndicatorLED": led})
	if err == nil {
		_, err = readJSON(resp)
	}
	if err != nil {
		return ironwork.Errorf(ironwork.EINVALID, "Redfish set %s indicator %s state %s failed for node %s. Error: %s", component, name, state, t.Node.UUID, err)
	}
	return nil
}
