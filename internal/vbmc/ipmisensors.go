package vbmc

import (
	"context"
	"fmt"
	"math"

	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// IPMI sensors: the same modelled readings as the Redfish chassis (sensors.go), as full sensor
// records in the BMC's SDR repository and answered by Get Sensor Reading. go-ipmi's BMC serves
// the SDR repository from its HAL's storage but has no Sensor/Event command: ipmiSensorRegistry
// adds Get Sensor Reading to its standard commands.

// ipmiSensor is one threshold sensor of the SDR: its reading, its IPMI type and unit, and the
// step of its raw byte (reading = raw × m × 10^rExp).
type ipmiSensor struct {
	reading
	typ  types.SensorType
	unit types.SensorUnitType
	m    int16
	rExp int8
}

func (s ipmiSensor) raw(on bool) uint8 {
	step := float64(s.m) * math.Pow10(int(s.rExp))
	return uint8(math.Min(255, math.Round(s.value(on)/step)))
}

// ipmiSensors lists the SDR's sensors; sensor number i+1 is ipmiSensors[i].
func ipmiSensors() []ipmiSensor {
	var out []ipmiSensor
	for _, r := range temperatures {
		out = append(out, ipmiSensor{r, types.SensorTypeTemperature, types.SensorUnitType_DegreesC, 1, 0})
	}
	for _, r := range fans {
		out = append(out, ipmiSensor{r, types.SensorTypeFan, types.SensorUnitType_RPM, 40, 0})
	}
	steps := map[string]int16{"12V": 6} // 0.06 V steps up to 15.3 V; 0.02 V up to 5.1 V
	for _, r := range voltages {
		m := steps[r.name]
		if m == 0 {
			m = 2
		}
		out = append(out, ipmiSensor{r, types.SensorTypeVoltage, types.SensorUnitType_Volts, m, -2})
	}
	out = append(out, ipmiSensor{reading{"PS Input Power", powerDraw.off, powerDraw.on}, types.SensorTypePowerSupply, types.SensorUnitType_Watts, 1, 0})
	return out
}

// writeSDR fills the SDR repository with a full sensor record per sensor.
func writeSDR(ctx context.Context, store hal.SDRStore, sensors []ipmiSensor) error {
	for i, s := range sensors {
		// Owned by the BMC itself (slave address 20h, LUN 0): ipmitool asks the owner.
		rec := &types.SDRFull{
			GeneratorID: 0x20, SensorNumber: types.SensorNumber(i + 1), SensorEntityID: 0x07, SensorEntityInstance: 1,
			SensorType: s.typ, SensorEventReadingType: types.EventReadingTypeThreshold,
			SensorUnit:          types.SensorUnit{AnalogDataFormat: types.SensorAnalogUnitFormat_Unsigned, BaseUnit: s.unit},
			ReadingFactors:      types.ReadingFactors{M: s.m, R_Exp: s.rExp},
			SensorMaxReadingRaw: 255, IDStringBytes: []byte(s.name),
		}
		id := uint16(i + 1)
		if err := store.Write(ctx, id, rec.Pack(id)); err != nil {
			return fmt.Errorf("write SDR record %d: %w", id, err)
		}
	}
	return nil
}

// ipmiSensorRegistry is go-ipmi's standard command set plus Get Sensor Reading of the
// machine's sensors.
func ipmiSensorRegistry(m *Machine, sensors []ipmiSensor) *handlers.Registry {
	reg := handlers.NewRegistry()
	handlers.RegisterAllHandlers(reg)
	reg.RegisterFunc(types.CommandGetSensorReading, func(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		if len(req) < 1 {
			return nil, types.CodeRequestDataLengthInvalid, nil
		}
		n := int(req[0])
		if n < 1 || n > len(sensors) {
			return nil, types.CodeRequestedDataNotPresent, nil
		}
		// The reading, then: event messages and scanning enabled, no threshold crossed.
		return []byte{sensors[n-1].raw(m.On()), 0xc0, 0x00}, types.CodeOK, nil
	})
	return reg
}
