package vbmc

import (
	"net/http"
	"strconv"
	"strings"
)

// Redfish sensors: one Chassis per machine (linked from its ComputerSystem), with Thermal
// (temperatures, fans) and Power (power drawn, voltages) resources. There is no hardware to
// read: the values are a plausible model of a small server that depends on the machine's power
// state only, so that a reader sees them change when the machine is powered on or off.

// reading is one modelled sensor value, off and on.
type reading struct {
	name    string
	off, on float64
}

var (
	temperatures = []reading{{"Inlet Temp", 22, 24}, {"CPU1 Temp", 27, 48}, {"System Board Temp", 25, 36}}
	fans         = []reading{{"Fan1", 0, 4200}, {"Fan2", 0, 4080}}
	voltages     = []reading{{"12V", 0, 12.06}, {"5V", 0, 5.02}, {"3.3VSB", 3.32, 3.32}}
	// powerDraw is what the machine takes from the wall, in watts (a standby BMC when off).
	powerDraw = reading{"System Power Control", 9, 142}
)

func (r reading) value(on bool) float64 {
	if on {
		return r.on
	}
	return r.off
}

// chassisLinks is the ComputerSystem's link to its chassis.
func chassisLinks(name string) []map[string]any {
	return []map[string]any{{"@odata.id": "/redfish/v1/Chassis/" + name}}
}

// serveChassis serves GET /redfish/v1/Chassis[/{machine}[/Thermal|/Power]], and PATCH of a
// chassis' IndicatorLED (leds.go).
func (v *VBMC) serveChassis(w http.ResponseWriter, r *http.Request, rest string) {
	if name := strings.TrimPrefix(rest, "/"); r.Method == http.MethodPatch && v.machines[name] != nil {
		v.patchChassis(w, r, v.machines[name])
		return
	}
	if r.Method != http.MethodGet {
		redfishError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	if rest == "" {
		writeJSON(w, http.StatusOK, collection("/redfish/v1/Chassis", "Chassis", v.order))
		return
	}
	name, sub, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	m := v.machines[name]
	if m == nil {
		redfishError(w, http.StatusNotFound, "no chassis "+name)
		return
	}
	base := "/redfish/v1/Chassis/" + name
	on := m.On()
	power := "Off"
	if on {
		power = "On"
	}
	switch sub {
	case "":
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.id": base, "@odata.type": "#Chassis.v1_10_0.Chassis", "Id": name, "Name": "Chassis of " + name,
			"ChassisType": "RackMount", "PowerState": power, "Status": enabled,
			"UUID": resourceUUID("chassis", name), "IndicatorLED": m.ChassisLED(),
			"Thermal": map[string]any{"@odata.id": base + "/Thermal"},
			"Power":   map[string]any{"@odata.id": base + "/Power"},
			"Links": map[string]any{
				"ComputerSystems": []map[string]any{{"@odata.id": "/redfish/v1/Systems/" + name}},
				"ManagedBy":       []map[string]any{{"@odata.id": "/redfish/v1/Managers/" + name}},
			},
		})
	case "Thermal":
		temps := make([]map[string]any, len(temperatures))
		for i, t := range temperatures {
			temps[i] = map[string]any{"@odata.id": base + "/Thermal#/Temperatures/" + strconv.Itoa(i), "MemberId": strconv.Itoa(i),
				"Name": t.name, "ReadingCelsius": t.value(on), "Status": enabled}
		}
		fs := make([]map[string]any, len(fans))
		for i, f := range fans {
			fs[i] = map[string]any{"@odata.id": base + "/Thermal#/Fans/" + strconv.Itoa(i), "MemberId": strconv.Itoa(i),
				"Name": f.name, "Reading": int(f.value(on)), "ReadingUnits": "RPM", "Status": enabled}
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": base + "/Thermal", "@odata.type": "#Thermal.v1_5_0.Thermal",
			"Id": "Thermal", "Name": "Thermal", "Temperatures": temps, "Fans": fs})
	case "Power":
		vs := make([]map[string]any, len(voltages))
		for i, x := range voltages {
			vs[i] = map[string]any{"@odata.id": base + "/Power#/Voltages/" + strconv.Itoa(i), "MemberId": strconv.Itoa(i),
				"Name": x.name, "ReadingVolts": x.value(on), "Status": enabled}
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": base + "/Power", "@odata.type": "#Power.v1_5_0.Power",
			"Id": "Power", "Name": "Power",
			"PowerControl": []map[string]any{{"@odata.id": base + "/Power#/PowerControl/0", "MemberId": "0",
				"Name": powerDraw.name, "PowerConsumedWatts": powerDraw.value(on), "PowerCapacityWatts": 450}},
			"Voltages": vs})
	default:
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
	}
}
