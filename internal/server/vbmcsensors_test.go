package server_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// TestSensorMetricsFromVBMC runs the conductor's sensor task (send_sensor_data) on a redfish
// node and an ipmi node of the same machine, whose BMC is an in-process `ironwork vbmc` (its
// machine is a dummy command, no QEMU): the machine's Redfish Thermal and Power readings and
// its IPMI SDR sensors appear in /metrics, parsed with expfmt, and the CPU temperature, fans
// and power draw rise after the node is powered on through the API.
func TestSensorMetricsFromVBMC(t *testing.T) {
	const password = "Sensor-S3cret-pw"
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: password, RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{{Name: "vm1", IPMIListen: "127.0.0.1:0", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stopVBMC := context.WithCancel(context.Background())
	go v.Serve(vctx)
	defer func() { stopVBMC(); v.Close() }()
	srv := startServer(t, "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"), func(c *server.Config) {
		c.SendSensorData, c.SendSensorDataInterval = true, server.Duration{Duration: 100 * time.Millisecond}
	})
	c := apiClient{t: t, base: srv.URL()}
	code, _, n := c.do("POST", "/v1/nodes", map[string]any{"name": "rf-sensors", "driver": "redfish", "driver_info": map[string]any{
		"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
		"redfish_username": "admin", "redfish_password": password}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, n)
	}
	uuid := n["uuid"].(string)
	// The same machine through its IPMI BMC: SDR and Get Sensor Reading.
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	code, _, n = c.do("POST", "/v1/nodes", map[string]any{"name": "ipmi-sensors", "driver": "ipmi", "driver_info": map[string]any{
		"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": password}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, n)
	}
	ipmiNode := n["uuid"].(string)
	// wait scrapes /metrics (the task runs every 100 ms) until the CPU temperature is want.
	wait := func(want float64) map[string]float64 {
		t.Helper()
		start := time.Now()
		for deadline := start.Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			fams := scrape(t, srv.URL()+"/metrics", "", "")
			m := findSample(fams, "ironwork_sensor_reading", map[string]string{"node": uuid, "sensor": "CPU1 Temp"})
			mi := findSample(fams, "ironwork_sensor_reading", map[string]string{"node": ipmiNode, "sensor": "CPU1 Temp"})
			if m != nil && value(m) == want && mi != nil && value(mi) == want {
				if p := findSample(fams, "ironwork_sensor_reading", map[string]string{"node": ipmiNode, "sensor": "PS Input Power", "type": "Power", "unit": "watts"}); p == nil {
					t.Errorf("no PS Input Power of the IPMI node")
				} else {
					t.Logf("IPMI node: CPU1 Temp %v °C, PS Input Power %v W", value(mi), value(p))
				}
				got := map[string]float64{}
				for _, m := range fams["ironwork_sensor_reading"].GetMetric() {
					labels := map[string]string{}
					for _, l := range m.GetLabel() {
						labels[l.GetName()] = l.GetValue()
					}
					if labels["node"] == uuid {
						got[labels["sensor"]+" "+labels["type"]+" "+labels["unit"]] = value(m)
					}
				}
				t.Logf("CPU1 Temp %v in /metrics %v after asking", want, time.Since(start).Round(time.Millisecond))
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("no CPU1 Temp of %v for node %s in /metrics within 30 s", want, uuid)
			}
		}
	}
	off := wait(27)
	if code, _, body := c.do("PUT", "/v1/nodes/"+uuid+"/states/power", map[string]any{"target": "power on"}); code != http.StatusAccepted {
		t.Fatalf("power on: %d %v", code, body)
	}
	on := wait(48)
	for _, k := range []string{"CPU1 Temp Temperature celsius", "Fan1 Fan rpm", "System Power Control Power watts", "12V Voltage volts", "3.3VSB Voltage volts"} {
		if _, ok := on[k]; !ok {
			t.Errorf("no %q in /metrics: %v", k, on)
		}
	}
	if len(on) != 9 || len(off) != 9 {
		t.Errorf("%d series off and %d on, want 9: %v", len(off), len(on), on)
	}
	if on["System Power Control Power watts"] <= off["System Power Control Power watts"] || on["Fan1 Fan rpm"] <= off["Fan1 Fan rpm"] {
		t.Errorf("power draw and fans do not rise with power: off %v, on %v", off, on)
	}
	t.Logf("off %v; on %v", off, on)
}
