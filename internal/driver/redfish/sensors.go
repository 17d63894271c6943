package redfish

import (
	"context"
	"fmt"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork/internal/conductor"
)

var _ conductor.SensorReader = Interface{}

// Sensors implements conductor.SensorReader: the readings of the chassis that contain the
// node's system, from each chassis's Thermal (temperatures, fans) and Power (power consumed,
// voltages) resources, as Ironic's redfish management interface reads them; a chassis with
// neither is read from its Sensors collection (Redfish 2020.4 and later). Sensors that are
// not enabled or give no reading are left out.
func (d Interface) Sensors(ctx context.Context, t *conductor.Task) ([]conductor.Sensor, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return nil, err
	}
	defer done()
	chassis, err := sys.Chassis()
	if err != nil {
		return nil, fmt.Errorf("get the chassis of Redfish system %s: %w", sys.ID, err)
	}
	var out []conductor.Sensor
	for _, ch := range chassis {
		got, err := chassisSensors(ch)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// enabled reports whether a Redfish status shows the sensor working (an absent state counts).
func enabled(s schemas.Status) bool { return s.State == "" || s.State == schemas.EnabledState }

// chassisSensors reads one chassis.
func chassisSensors(ch *schemas.Chassis) ([]conductor.Sensor, error) {
	thermal, err := ch.Thermal()
	if err != nil {
		return nil, fmt.Errorf("get Redfish chassis %s thermal: %w", ch.ID, err)
	}
	power, err := ch.Power()
	if err != nil {
		return nil, fmt.Errorf("get Redfish chassis %s power: %w", ch.ID, err)
	}
	var out []conductor.Sensor
	if thermal != nil {
		for _, x := range thermal.Temperatures {
			if enabled(x.Status) && x.ReadingCelsius != nil {
				out = append(out, conductor.Sensor{Name: x.Name, Type: "Temperature", Unit: "celsius", Value: *x.ReadingCelsius})
			}
		}
		for _, x := range thermal.Fans {
			if enabled(x.Status) && x.Reading != nil {
				name := x.Name
				if name == "" {
					name = x.FanName
				}
				out = append(out, conductor.Sensor{Name: name, Type: "Fan", Unit: strings.ToLower(string(x.ReadingUnits)), Value: float64(*x.Reading)})
			}
		}
	}
	if power != nil {
		for _, x := range power.PowerControl {
			if x.PowerConsumedWatts != nil {
				out = append(out, conductor.Sensor{Name: x.Name, Type: "Power", Unit: "watts", Value: float64(*x.PowerConsumedWatts)})
			}
		}
		for _, x := range power.Voltages {
			if enabled(x.Status) && x.ReadingVolts != nil {
				out = append(out, conductor.Sensor{Name: x.Name, Type: "Voltage", Unit: "volts", Value: float64(*x.ReadingVolts)})
			}
		}
	}
	if thermal != nil || power != nil {
		return out, nil
	}
	sensors, err := ch.Sensors()
	if err != nil {
		return nil, fmt.Errorf("get Redfish chassis %s sensors: %w", ch.ID, err)
	}
	for _, s := range sensors {
		if !enabled(s.Status) || s.Reading == nil {
			continue
		}
		unit := sensorUnit(s.ReadingUnits)
		out = append(out, conductor.Sensor{Name: s.Name, Type: sensorType(s.ReadingType, unit), Unit: unit, Value: *s.Reading})
	}
	return out, nil
}

// sensorType names a Sensors-collection reading type as the Thermal and Power readings are
// named; a sensor without one (some services leave it out of temperatures) is named by its
// unit.
func sensorType(t schemas.ReadingType, unit string) string {
	switch {
	case t == schemas.RotationalReadingType:
		return "Fan"
	case t != "":
		return string(t)
	}
	switch unit {
	case "celsius":
		return "Temperature"
	case "volts":
		return "Voltage"
	case "watts":
		return "Power"
	case "amperes":
		return "Current"
	case "rpm":
		return "Fan"
	}
	return ""
}

// sensorUnit turns a Sensors-collection unit (UCUM: "Cel", "V", "W", "A", "{rev}/min") into
// the names of the other readings.
func sensorUnit(u string) string {
	switch u {
	case "Cel":
		return "celsius"
	case "V":
		return "volts"
	case "W":
		return "watts"
	case "A":
		return "amperes"
	case "{rev}/min", "RPM":
		return "rpm"
	case "%":
		return "percent"
	}
	return u
}
