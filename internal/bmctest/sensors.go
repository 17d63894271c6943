package bmctest

import (
	"fmt"
	"strings"
	"testing"
)

// SimSensor is a threshold sensor ipmi_sim serves: its SDR (a full sensor record) and a fixed
// reading. Value is what the reading means once converted (Raw x M x 10^RExp).
type SimSensor struct {
	Number   uint8
	Name     string
	Type     uint8 // IPMI sensor type: 0x01 temperature, 0x02 voltage, 0x04 fan, 0x08 power supply
	Unit     uint8 // IPMI base unit: 1 degrees C, 4 volts, 6 watts, 18 RPM
	M        uint8
	RExp     int8 // result exponent, -8..7
	Raw      uint8
	Value    float64
	TypeName string // as ironwork names the type
	UnitName string // as ironwork names the unit
	// Disabled leaves the sensor's scanning off: BMCs answer its reading as unavailable
	// (ipmitool shows "ns"), and readers must leave it out.
	Disabled bool
}

// SimSensors are the sensors of NewIPMISimWithSensors.
var SimSensors = []SimSensor{
	{Number: 1, Name: "CPU Temp", Type: 0x01, Unit: 1, M: 1, Raw: 45, Value: 45, TypeName: "Temperature", UnitName: "celsius"},
	{Number: 2, Name: "FAN1", Type: 0x04, Unit: 18, M: 100, Raw: 24, Value: 2400, TypeName: "Fan", UnitName: "rpm"},
	{Number: 3, Name: "12V", Type: 0x02, Unit: 4, M: 64, RExp: -3, Raw: 190, Value: 12.16, TypeName: "Voltage", UnitName: "volts"},
	{Number: 4, Name: "PSU1 Power", Type: 0x08, Unit: 6, M: 2, Raw: 75, Value: 150, TypeName: "Power", UnitName: "watts"},
	{Number: 5, Name: "Spare Temp", Type: 0x01, Unit: 1, M: 1, Raw: 30, Value: 30, TypeName: "Temperature", UnitName: "celsius", Disabled: true},
}

// fullSDR is a full sensor record (IPMI 2.0 section 43.1) for a threshold sensor of the BMC
// at 0x20, linear, unsigned, with no thresholds.
func (s SimSensor) fullSDR() []byte {
	body := []byte{
		0x20, 0x00, s.Number, // owner, LUN, sensor number
		0x07, 0x01, // entity: system board, instance 1
		0x67,         // initialization: scanning, events, thresholds, type; scanning enabled
		0x40,         // capabilities: thresholds readable only, no events
		s.Type, 0x01, // sensor type; event/reading type: threshold
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // assertion, deassertion and reading masks
		0x00, s.Unit, 0x00, // units 1 (unsigned, no rate, no modifier), base unit, modifier unit
		0x00,      // linearization: linear
		s.M, 0x00, // M, M high bits and tolerance
		0x00, 0x00, // B, B high bits and accuracy
		0x00,                         // accuracy high bits, accuracy exponent, direction
		byte(s.RExp&0x0f) << 4,       // R (result) exponent; B exponent 0
		0x00,                         // analog characteristics: no nominal, normal max or min given
		0x00, 0x00, 0x00, 0xff, 0x00, // nominal, normal max, normal min, sensor max, sensor min
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // thresholds
		0x00, 0x00, 0x00, 0x00, 0x00, // hysteresis, reserved, OEM
		0xc0 | byte(len(s.Name)), // ID string: 8-bit ASCII
	}
	body = append(body, s.Name...)
	return append([]byte{0x00, 0x00, 0x51, 0x01, byte(len(body))}, body...)
}

// sensorEmu is the ipmi_sim commands adding the sensors, their SDRs and their readings.
func sensorEmu(sensors []SimSensor) string {
	var b strings.Builder
	for _, s := range sensors {
		fmt.Fprintf(&b, "sensor_add 0x20 0 %d 0x%02x 0x01\n", s.Number, s.Type)
		b.WriteString("main_sdr_add 0x20")
		for _, x := range s.fullSDR() {
			fmt.Fprintf(&b, " 0x%02x", x)
		}
		b.WriteString("\n")
		if !s.Disabled {
			fmt.Fprintf(&b, "sensor_set_event_support 0x20 0 %d enable scanning per-state 000000000000000 000000000000000 000000000000000 000000000000000\n", s.Number)
		}
		fmt.Fprintf(&b, "sensor_set_value 0x20 0 %d 0x%02x 0\n", s.Number, s.Raw)
	}
	return b.String()
}

// NewIPMISimWithSensors is NewIPMISim with the threshold sensors of SimSensors in the BMC's
// SDR repository, each reading its fixed value.
func NewIPMISimWithSensors(t testing.TB) *IPMISim {
	t.Helper()
	return newIPMISim(t, sensorEmu(SimSensors))
}
