package ipmi

import (
	"context"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ironwork/ironwork/internal/conductor"
)

var _ conductor.SensorReader = Interface{}

// Sensors implements conductor.SensorReader: the BMC's Sensor Data Repository (full and
// compact records), each threshold sensor's current reading (Get Sensor Reading) converted
// with its SDR's factors. Discrete sensors (states, not numbers) and sensors whose reading is
// unavailable or whose scanning is disabled are left out.
func (d Interface) Sensors(ctx context.Context, t *conductor.Task) ([]conductor.Sensor, error) {
	var out []conductor.Sensor
	err := d.do(ctx, t, func(c *client.Client) error {
		ss, err := c.GetSensors(ctx, client.SensorFilterOptionIsThreshold, client.SensorFilterOptionIsReadingValid)
		if err != nil {
			return fmt.Errorf("IPMI read sensors: %w", err)
		}
		out = out[:0]
		for _, s := range ss {
			if !s.SensorUnit.IsAnalog() || s.ScanningDisabled {
				continue
			}
			out = append(out, conductor.Sensor{Name: s.Name, Type: sensorType(s.SensorType), Unit: sensorUnit(s.SensorUnit), Value: s.Value})
		}
		return nil
	})
	return out, err
}

// sensorType names an IPMI sensor type as Ironic's sensor data does for the common ones, and
// by the IPMI specification's name otherwise.
func sensorType(t types.SensorType) string {
	switch t {
	case types.SensorTypeTemperature:
		return "Temperature"
	case types.SensorTypeVoltage:
		return "Voltage"
	case types.SensorTypeCurrent:
		return "Current"
	case types.SensorTypeFan:
		return "Fan"
	case types.SensorTypePowerSupply:
		return "Power"
	}
	return t.String()
}

// sensorUnit names a reading's unit; rates and modifiers ("% RPM") keep the library's name.
func sensorUnit(u types.SensorUnit) string {
	if u.ModifierRelation == types.SensorModifierRelation_None && !u.Percentage && u.RateUnit == types.SensorRateUnit_None {
		switch u.BaseUnit {
		case types.SensorUnitType_DegreesC:
			return "celsius"
		case types.SensorUnitType_RPM:
			return "rpm"
		case types.SensorUnitType_Volts:
			return "volts"
		case types.SensorUnitType_Amps:
			return "amperes"
		case types.SensorUnitType_Watts:
			return "watts"
		case types.SensorUnitType_Unspecified:
			return ""
		}
	}
	return u.String()
}
