package redfish

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/bmctest"
	"github.com/ironwork/ironwork/internal/conductor"
)

const system = "/redfish/v1/Systems/437XR1138R2"

func task(info ironwork.JSONObject) *conductor.Task {
	return &conductor.Task{Node: &ironwork.Node{UUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", DriverInfo: info}}
}

func newBMC(t testing.TB) (*bmctest.Redfish, ironwork.JSONObject) {
	bmc := bmctest.NewRedfish(t, bmctest.MockupDir(t, "../../../.."))
	return bmc, ironwork.JSONObject{"redfish_address": bmc.URL, "redfish_system_id": system,
		"redfish_username": bmc.User, "redfish_password": bmc.Password}
}

func TestValidateNamesTheProblem(t *testing.T) {
	cases := []struct {
		info ironwork.JSONObject
		want string
	}{
		{ironwork.JSONObject{}, "Missing the following Redfish properties in node 1be26c0b-03f2-4d2e-ae87-c02d7f33c123 driver_info: redfish_address"},
		{ironwork.JSONObject{"redfish_address": "ftp://bmc"}, "Invalid Redfish address"},
		{ironwork.JSONObject{"redfish_address": "bmc.example", "redfish_system_id": "Systems/1"}, "Invalid redfish_system_id"},
		{ironwork.JSONObject{"redfish_address": "bmc.example", "redfish_verify_ca": "/no/such/ca.pem"}, "Invalid redfish_verify_ca"},
		{ironwork.JSONObject{"redfish_address": "bmc.example", "redfish_verify_ca": 5}, "Invalid redfish_verify_ca"},
	}
	for _, c := range cases {
		err := Interface{}.Validate(context.Background(), task(c.info))
		if err == nil || !strings.Contains(ironwork.ErrorMessage(err), c.want) {
			t.Errorf("%v: %v, want %q", c.info, err, c.want)
		}
	}
	if err := (Interface{}).Validate(context.Background(), task(ironwork.JSONObject{"redfish_address": "10.0.0.5", "redfish_verify_ca": "false"})); err != nil {
		t.Errorf("a good driver_info: %v", err)
	}
}

func TestPowerAndBootAgainstTheDMTFMockup(t *testing.T) {
	bmc, info := newBMC(t)
	bmc.PowerLag = 2 // the BMC shows the new state only on the third read
	d := Interface{PollInterval: 10 * time.Millisecond}
	ctx := context.Background()
	tk := task(info)

	st, err := d.PowerState(ctx, tk)
	if err != nil || st != ironwork.PowerOn {
		t.Fatalf("power state: %q %v", st, err)
	}
	if err := d.SetPowerState(ctx, tk, ironwork.PowerOff, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := bmc.Resource(system)["PowerState"]; got != "Off" {
		t.Fatalf("mockup power state after power off: %v", got)
	}
	if err := d.Reboot(ctx, tk, false, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.SoftPowerOff(ctx, tk, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.InjectNMI(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(bmc.Resets, ","); got != "ForceOff,On,GracefulShutdown,Nmi" {
		t.Fatalf("resets sent: %s", got)
	}

	dev, err := d.BootDevice(ctx, tk)
	if err != nil || dev.Device != conductor.BootPXE || dev.Persistent {
		t.Fatalf("the mockup's boot override (Pxe, Once): %+v %v", dev, err)
	}
	if err := d.SetBootDevice(ctx, tk, conductor.BootDevice{Device: conductor.BootDisk, Persistent: true}); err != nil {
		t.Fatal(err)
	}
	boot := bmc.Resource(system)["Boot"].(map[string]any)
	if boot["BootSourceOverrideTarget"] != "Hdd" || boot["BootSourceOverrideEnabled"] != "Continuous" {
		t.Fatalf("boot override after set: %v", boot)
	}
	if err := d.SetBootMode(ctx, tk, "bios"); err != nil {
		t.Fatal(err)
	}
	if boot := bmc.Resource(system)["Boot"].(map[string]any); boot["BootSourceOverrideMode"] != "Legacy" || boot["BootSourceOverrideTarget"] != "Hdd" {
		t.Fatalf("boot mode after set: %v", boot)
	}

	// One system: redfish_system_id may be left out.
	delete(info, "redfish_system_id")
	if st, err := d.PowerState(ctx, task(info)); err != nil || st != ironwork.PowerOff {
		t.Fatalf("without redfish_system_id: %q %v", st, err)
	}
}

// TestBootModeGoesWithEveryBootDevice: each boot device change carries the node's boot mode
// as BootSourceOverrideMode, resolved as Ironic does (secure boot, instance_info, capabilities,
// the BMC's last report, the conductor's default).
func TestBootModeGoesWithEveryBootDevice(t *testing.T) {
	bmc, info := newBMC(t)
	ctx := context.Background()
	cases := []struct {
		name string
		d    Interface
		node ironwork.Node
		dev  string
		want string
	}{
		{"default uefi", Interface{}, ironwork.Node{}, conductor.BootPXE, "UEFI"},
		{"conductor default bios", Interface{DefaultBootMode: "bios"}, ironwork.Node{}, conductor.BootDisk, "Legacy"},
		{"properties capability", Interface{}, ironwork.Node{Properties: ironwork.JSONObject{"capabilities": "cpu_arch:x86_64,boot_mode:bios"}}, conductor.BootCDROM, "Legacy"},
		{"instance_info over properties", Interface{}, ironwork.Node{Properties: ironwork.JSONObject{"capabilities": "boot_mode:bios"},
			InstanceInfo: ironwork.JSONObject{"deploy_boot_mode": "uefi"}}, conductor.BootUEFIHTTP, "UEFI"},
		{"instance_info capabilities object", Interface{}, ironwork.Node{InstanceInfo: ironwork.JSONObject{"capabilities": map[string]any{"boot_mode": "bios"}}}, conductor.BootPXE, "Legacy"},
		{"secure boot means uefi", Interface{DefaultBootMode: "bios"}, ironwork.Node{Properties: ironwork.JSONObject{"capabilities": "secure_boot:true,boot_mode:bios"}}, conductor.BootDisk, "UEFI"},
		{"the BMC's last report", Interface{}, ironwork.Node{BootMode: "bios"}, conductor.BootPXE, "Legacy"},
	}
	wantTarget := map[string]string{conductor.BootPXE: "Pxe", conductor.BootDisk: "Hdd", conductor.BootCDROM: "Cd", conductor.BootUEFIHTTP: "UefiHttp"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := c.node
			n.UUID, n.DriverInfo = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", info
			if err := c.d.SetBootDevice(ctx, &conductor.Task{Node: &n}, conductor.BootDevice{Device: c.dev}); err != nil {
				t.Fatal(err)
			}
			boot := bmc.Resource(system)["Boot"].(map[string]any)
			if boot["BootSourceOverrideMode"] != c.want || boot["BootSourceOverrideTarget"] != wantTarget[c.dev] || boot["BootSourceOverrideEnabled"] != "Once" {
				t.Fatalf("the mockup's Boot after setting %s: %v; want mode %s", c.dev, boot, c.want)
			}
		})
	}
}

func TestFailuresAreClearAndBounded(t *testing.T) {
	bmc, info := newBMC(t)
	d := Interface{PollInterval: 10 * time.Millisecond, RequestTimeout: 2 * time.Second}
	ctx := context.Background()

	wrong := ironwork.JSONObject{}
	for k, v := range info {
		wrong[k] = v
	}
	wrong["redfish_password"] = "nope"
	if _, err := d.PowerState(ctx, task(wrong)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}

	bmc.FailResets = true
	if err := d.SetPowerState(ctx, task(info), ironwork.PowerOff, time.Second); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("failing reset: %v", err)
	}
	bmc.FailResets = false

	bmc.PowerLag = 1000 // never applies: the wait must end at the timeout with the state named
	start := time.Now()
	err := d.SetPowerState(ctx, task(info), ironwork.PowerOff, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still reports power state") || time.Since(start) > 3*time.Second {
		t.Errorf("a BMC that never applies the reset: %v after %s", err, time.Since(start))
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	start = time.Now()
	_, err = d.PowerState(ctx, task(ironwork.JSONObject{"redfish_address": "http://" + addr}))
	if err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("unreachable BMC: %v after %s", err, time.Since(start))
	}
}

// FuzzSystemDocument serves arbitrary ComputerSystem documents: reading the power state and
// the boot device must give a value or an error, never a panic.
func FuzzSystemDocument(f *testing.F) {
	f.Add([]byte(`{"PowerState":"On","Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Once"}}`))
	f.Add([]byte(`{"PowerState":"PoweringOff","Boot":null}`))
	f.Add([]byte(`{"PowerState":7,"Boot":{"BootSourceOverrideTarget":["x"]}}`))
	f.Add([]byte(`{"@odata.id":"/redfish/v1/Systems/437XR1138R2","Actions":{"#ComputerSystem.Reset":{"target":3}}}`))
	bmc, info := newBMC(f)
	d := Interface{RequestTimeout: 2 * time.Second}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var m map[string]any
		if json.Unmarshal(doc, &m) != nil {
			return
		}
		bmc.SetResource(system, m)
		ctx := context.Background()
		if st, err := d.PowerState(ctx, task(info)); err == nil && st != ironwork.PowerOn && st != ironwork.PowerOff {
			t.Fatalf("power state %q without an error", st)
		}
		if dev, err := d.BootDevice(ctx, task(info)); err == nil && dev.Device == "" {
			t.Fatal("empty boot device without an error")
		}
	})
}

// TestAsynchronousResetTasks has the BMC answer resets with 202 and a task monitor, as
// Redfish allows for long operations: the driver polls the task, then the power state.
func TestAsynchronousResetTasks(t *testing.T) {
	bmc, info := newBMC(t)
	bmc.TaskPolls = 3
	d := Interface{PollInterval: 10 * time.Millisecond}
	ctx := context.Background()
	if err := d.SetPowerState(ctx, task(info), ironwork.PowerOff, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := bmc.Resource(system)["PowerState"]; got != "Off" {
		t.Fatalf("after the task: %v", got)
	}
	bmc.TaskFails = true
	err := d.SetPowerState(ctx, task(info), ironwork.PowerOn, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "ended in Exception: the reset failed in the BMC") {
		t.Fatalf("a failing task: %v", err)
	}
}

// switchableFront is a TCP relay on a fixed loopback port in front of a BMC that can stop
// listening (connections refused, as while a BMC's web server restarts) and start again.
type switchableFront struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
}

func newSwitchableFront(t *testing.T, target string) *switchableFront {
	f := &switchableFront{t: t, target: target}
	f.up()
	f.addr = f.ln.Addr().String()
	t.Cleanup(f.down)
	return f
}

func (f *switchableFront) up() {
	addr := f.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", f.target)
				if err != nil {
					return
				}
				defer b.Close()
				go io.Copy(b, c)
				io.Copy(c, b)
			}()
		}
	}()
}

func (f *switchableFront) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
}

// TestBMCRefusesConnections: a BMC that refuses connections for a while (its web server
// restarting) is tried again ConnectionAttempts times, ConnectionRetryInterval apart, and
// answers once back; one that stays away fails the request with an error naming it.
func TestBMCRefusesConnections(t *testing.T) {
	bmc, info := newBMC(t)
	front := newSwitchableFront(t, strings.TrimPrefix(bmc.URL, "http://"))
	info["redfish_address"] = "http://" + front.addr
	d := Interface{PollInterval: 50 * time.Millisecond, ConnectionAttempts: 5, ConnectionRetryInterval: time.Second}
	ctx := context.Background()
	if _, err := d.PowerState(ctx, task(info)); err != nil {
		t.Fatal(err)
	}
	front.down()
	const away = 2 * time.Second
	timer := time.AfterFunc(away, front.up)
	defer timer.Stop()
	start := time.Now()
	if _, err := d.PowerState(ctx, task(info)); err != nil {
		t.Fatalf("a BMC away for %s, then back: %v after %s", away, err, time.Since(start))
	}
	t.Logf("BMC refusing connections for %s: answered after %s", away, time.Since(start).Round(time.Millisecond))

	front.down()
	start = time.Now()
	_, err := d.PowerState(ctx, task(info))
	if err == nil || !strings.Contains(err.Error(), front.addr) {
		t.Fatalf("a BMC that stays away: %v; want an error naming %s", err, front.addr)
	}
	t.Logf("BMC away for good: failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestSensorsFromTheDMTFMockup reads the mockup chassis's Thermal and Power resources, then,
// with those links removed (as on services that only have the newer model), its Sensors
// collection. Disabled and absent sensors are left out.
func TestSensorsFromTheDMTFMockup(t *testing.T) {
	bmc, info := newBMC(t)
	d := Interface{}
	ctx := context.Background()
	byName := func(ss []conductor.Sensor) map[string]conductor.Sensor {
		m := map[string]conductor.Sensor{}
		for _, s := range ss {
			m[s.Name] = s
		}
		return m
	}
	got, err := d.Sensors(ctx, task(info))
	if err != nil {
		t.Fatal(err)
	}
	want := []conductor.Sensor{
		{Name: "CPU1 Temp", Type: "Temperature", Unit: "celsius", Value: 41},
		{Name: "Chassis Intake Temp", Type: "Temperature", Unit: "celsius", Value: 25},
		{Name: "BaseBoard System Fan", Type: "Fan", Unit: "rpm", Value: 2100},
		{Name: "BaseBoard System Fan Backup", Type: "Fan", Unit: "rpm", Value: 2050},
		{Name: "System Input Power", Type: "Power", Unit: "watts", Value: 344},
		{Name: "VRM1 Voltage", Type: "Voltage", Unit: "volts", Value: 12},
		{Name: "VRM2 Voltage", Type: "Voltage", Unit: "volts", Value: 5},
	}
	if len(got) != len(want) {
		t.Errorf("Thermal and Power: %d sensors, want %d: %+v", len(got), len(want), got)
	}
	have := byName(got)
	for _, w := range want {
		if have[w.Name] != w {
			t.Errorf("sensor %q = %+v, want %+v", w.Name, have[w.Name], w)
		}
	}

	const chassis = "/redfish/v1/Chassis/1U"
	doc := bmc.Resource(chassis)
	delete(doc, "Thermal")
	delete(doc, "Power")
	bmc.SetResource(chassis, doc)
	got, err = d.Sensors(ctx, task(info))
	if err != nil {
		t.Fatal(err)
	}
	have = byName(got)
	for _, w := range []conductor.Sensor{
		{Name: "CPU #1 Temperature", Type: "Temperature", Unit: "celsius", Value: 37},
		{Name: "Power Supply #1 Input Power", Type: "Power", Unit: "watts", Value: 374},
		{Name: "Power Supply #1 12V Output Voltage", Type: "Voltage", Unit: "volts", Value: 12.08},
		{Name: "Chassis Fan #1", Type: "Percent", Unit: "percent", Value: 45},
	} {
		if have[w.Name] != w {
			t.Errorf("Sensors collection: %q = %+v, want %+v", w.Name, have[w.Name], w)
		}
	}
	if _, ok := have["Power Supply #2 Input Power"]; ok {
		t.Error("an absent power supply's sensor was read")
	}
	t.Logf("Sensors collection: %d readings", len(got))
}
