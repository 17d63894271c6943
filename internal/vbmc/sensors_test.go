package vbmc

import (
	"context"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/driver/redfish"
)

// TestRedfishSensorsFollowPower reads the machine's sensors with Ironwork's own Redfish driver
// (the conductor's sensor reader): every modelled reading is there with its type and unit,
// and the CPU temperature, fans and power draw rise when the machine is powered on.
func TestRedfishSensorsFollowPower(t *testing.T) {
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	ctx := context.Background()
	d := redfish.Interface{}
	tk := &conductor.Task{Node: &ironwork.Node{UUID: "n-sensors", DriverInfo: ironwork.JSONObject{
		"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
		"redfish_username": "admin", "redfish_password": "password"}}}
	read := func() map[string]conductor.Sensor {
		t.Helper()
		got, err := d.Sensors(ctx, tk)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]conductor.Sensor{}
		for _, s := range got {
			m[s.Name] = s
		}
		return m
	}
	check := func(got map[string]conductor.Sensor, on bool) {
		t.Helper()
		want := map[string]conductor.Sensor{}
		for _, r := range temperatures {
			want[r.name] = conductor.Sensor{Name: r.name, Type: "Temperature", Unit: "celsius", Value: r.value(on)}
		}
		for _, r := range fans {
			want[r.name] = conductor.Sensor{Name: r.name, Type: "Fan", Unit: "rpm", Value: r.value(on)}
		}
		for _, r := range voltages {
			want[r.name] = conductor.Sensor{Name: r.name, Type: "Voltage", Unit: "volts", Value: r.value(on)}
		}
		want[powerDraw.name] = conductor.Sensor{Name: powerDraw.name, Type: "Power", Unit: "watts", Value: powerDraw.value(on)}
		if len(got) != len(want) {
			t.Errorf("%d sensors, want %d: %v", len(got), len(want), got)
		}
		for name, w := range want {
			// gofish reads voltages as float32: compare to a millivolt.
			if g, ok := got[name]; !ok || g.Type != w.Type || g.Unit != w.Unit || math.Abs(g.Value-w.Value) > 1e-3 {
				t.Errorf("sensor %s (power on %v) = %+v, want %+v", name, on, g, w)
			}
		}
	}
	off := read()
	check(off, false)
	if err := v.Machine("vm1").PowerOn(); err != nil {
		t.Fatal(err)
	}
	on := read()
	check(on, true)
	for _, name := range []string{"CPU1 Temp", "Fan1", "System Power Control"} {
		if on[name].Value <= off[name].Value {
			t.Errorf("%s is %v on and %v off: it should rise when the machine runs", name, on[name].Value, off[name].Value)
		}
	}
	t.Logf("off: CPU %v °C, %v W; on: CPU %v °C, %v W", off["CPU1 Temp"].Value, off["System Power Control"].Value,
		on["CPU1 Temp"].Value, on["System Power Control"].Value)
}

// TestIPMISensorsFollowPower reads the machine's sensors with Ironwork's own IPMI driver (SDR
// and Get Sensor Reading through go-ipmi's client), off then on, and with ipmitool when it is
// installed.
func TestIPMISensorsFollowPower(t *testing.T) {
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	ctx := context.Background()
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	d := ipmi.Interface{}
	tk := &conductor.Task{Node: &ironwork.Node{UUID: "n-ipmi-sensors", DriverInfo: ironwork.JSONObject{
		"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password"}}}
	check := func(on bool) map[string]conductor.Sensor {
		t.Helper()
		got, err := d.Sensors(ctx, tk)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]conductor.Sensor{}
		for _, s := range got {
			byName[s.Name] = s
		}
		sensors := ipmiSensors()
		if len(got) != len(sensors) {
			t.Errorf("%d sensors, want %d: %+v", len(got), len(sensors), got)
		}
		for _, s := range sensors {
			g, ok := byName[s.name]
			step := float64(s.m) * math.Pow10(int(s.rExp))
			if !ok || math.Abs(g.Value-s.value(on)) > step/2+1e-9 {
				t.Errorf("sensor %s (on %v) = %+v, want %v", s.name, on, g, s.value(on))
			}
		}
		return byName
	}
	off := check(false)
	if err := v.Machine("vm1").PowerOn(); err != nil {
		t.Fatal(err)
	}
	on := check(true)
	for _, k := range []string{"CPU1 Temp", "PS Input Power", "Fan1"} {
		if on[k].Value <= off[k].Value {
			t.Errorf("%s: %v on, %v off", k, on[k].Value, off[k].Value)
		}
	}
	t.Logf("on: %+v %+v %+v", on["CPU1 Temp"], on["PS Input Power"], on["12V"])
	if _, err := exec.LookPath("ipmitool"); err == nil {
		out := ipmitool(t, v, "sdr", "list")
		t.Logf("ipmitool sdr list:\n%s", out)
		if !strings.Contains(out, "CPU1 Temp") || !strings.Contains(out, "48 degrees C") {
			t.Errorf("ipmitool does not read CPU1 Temp at 48 degrees C")
		}
	}
}
