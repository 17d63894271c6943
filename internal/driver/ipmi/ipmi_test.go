package ipmi

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/bmctest"
	"github.com/ironwork/ironwork/internal/conductor"
)

func task(info ironwork.JSONObject) *conductor.Task {
	return &conductor.Task{Node: &ironwork.Node{UUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", DriverInfo: info}}
}

func TestValidateNamesTheProblem(t *testing.T) {
	for _, c := range []struct {
		info ironwork.JSONObject
		want string
	}{
		{ironwork.JSONObject{}, "Missing the following IPMI credentials in node's driver_info: ['ipmi_address']"},
		{ironwork.JSONObject{"ipmi_address": "10.0.0.5", "ipmi_port": "70000"}, "Invalid IPMI port"},
		{ironwork.JSONObject{"ipmi_address": "10.0.0.5", "ipmi_cipher_suite": "1"}, "Invalid ipmi_cipher_suite"},
		{ironwork.JSONObject{"ipmi_address": "10.0.0.5", "ipmi_priv_level": "ROOT"}, "Invalid privilege level value: ROOT"},
		{ironwork.JSONObject{"ipmi_address": "10.0.0.5", "ipmi_bridging": "dual"}, "ipmi_bridging"},
	} {
		err := Interface{}.Validate(context.Background(), task(c.info))
		if err == nil || !strings.Contains(ironwork.ErrorMessage(err), c.want) {
			t.Errorf("%v: %v, want %q", c.info, err, c.want)
		}
	}
	if err := (Interface{}).Validate(context.Background(), task(ironwork.JSONObject{"ipmi_address": "bmc1", "ipmi_port": 6230.0, "ipmi_cipher_suite": "17"})); err != nil {
		t.Errorf("a good driver_info: %v", err)
	}
}

// ipmitool runs the real ipmitool against a simulator, as an independent check.
func ipmitool(t *testing.T, port int, args ...string) string {
	t.Helper()
	base := []string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", "password"}
	out, err := exec.Command("ipmitool", append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestAgainstOpenIPMISimulator(t *testing.T) {
	sim := bmctest.NewIPMISim(t)
	d := Interface{PollInterval: 50 * time.Millisecond, CommandTimeout: time.Second}
	ctx := context.Background()
	// ipmi_sim offers cipher suite 3 only (no 17, no Get Channel Cipher Suites).
	info := ironwork.JSONObject{"ipmi_address": "127.0.0.1", "ipmi_port": fmt.Sprint(sim.Port),
		"ipmi_username": sim.User, "ipmi_password": sim.Password, "ipmi_cipher_suite": "3"}
	tk := task(info)

	if st, err := d.PowerState(ctx, tk); err != nil || st != ironwork.PowerOff {
		t.Fatalf("initial power state: %q %v", st, err)
	}
	if err := d.SetPowerState(ctx, tk, ironwork.PowerOn, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if sim.Power() != "1" || !strings.Contains(ipmitool(t, sim.Port, "chassis", "power", "status"), "Chassis Power is on") {
		t.Fatalf("after power on: simulator %s", sim.Power())
	}
	if err := d.SetBootDevice(ctx, tk, conductor.BootDevice{Device: conductor.BootPXE}); err != nil {
		t.Fatal(err)
	}
	if out := ipmitool(t, sim.Port, "chassis", "bootparam", "get", "5"); !strings.Contains(out, "Force PXE") {
		t.Fatalf("ipmitool does not see the PXE boot flag:\n%s", out)
	}
	dev, err := d.BootDevice(ctx, tk)
	if err != nil || dev.Device != conductor.BootPXE || dev.Persistent {
		t.Fatalf("boot device read back: %+v %v", dev, err)
	}
	if err := d.SetPowerState(ctx, tk, ironwork.PowerOff, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if sim.Power() != "0" {
		t.Fatalf("after power off: simulator %s", sim.Power())
	}
	if err := d.Reboot(ctx, tk, false, 5*time.Second); err != nil || sim.Power() != "1" {
		t.Fatalf("reboot of an off node: %v, simulator %s", err, sim.Power())
	}

	// Failures are clear and bounded by the command timeout.
	for name, mutate := range map[string]func(ironwork.JSONObject){
		"wrong password":     func(i ironwork.JSONObject) { i["ipmi_password"] = "wrong" },
		"wrong cipher suite": func(i ironwork.JSONObject) { i["ipmi_cipher_suite"] = "17" },
		"unreachable":        func(i ironwork.JSONObject) { i["ipmi_port"] = "9" },
	} {
		bad := ironwork.JSONObject{}
		for k, v := range info {
			bad[k] = v
		}
		mutate(bad)
		start := time.Now()
		_, err := d.PowerState(ctx, task(bad))
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "IPMI session with 127.0.0.1") || took > 10*time.Second {
			t.Errorf("%s: %v after %s", name, err, took)
		}
		t.Logf("%s: failed in %s: %v", name, took.Round(time.Millisecond), err)
	}
}

func TestAgainstPyghmiFakeBMC(t *testing.T) {
	bmc := bmctest.NewFakeBMC(t)
	d := Interface{PollInterval: 50 * time.Millisecond, CommandTimeout: time.Second}
	ctx := context.Background()
	tk := task(ironwork.JSONObject{"ipmi_address": "127.0.0.1", "ipmi_port": fmt.Sprint(bmc.Port),
		"ipmi_username": bmc.User, "ipmi_password": bmc.Password})
	st, err := d.PowerState(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	want := ironwork.PowerOn
	if st == ironwork.PowerOn {
		want = ironwork.PowerOff
	}
	if err := d.SetPowerState(ctx, tk, want, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := d.PowerState(ctx, tk); err != nil || got != want {
		t.Fatalf("power state after setting %s: %q %v", want, got, err)
	}
}

// TestDroppedPackets puts a lossy relay between the driver and ipmi_sim: lost datagrams are
// retried within the command timeout, and a BMC that answers nothing fails clearly in bounded
// time (timeout x attempts).
func TestDroppedPackets(t *testing.T) {
	sim := bmctest.NewIPMISim(t)
	relay := bmctest.NewLossyUDP(t, sim.Port)
	relay.SetDrop(2) // the first two requests vanish
	d := Interface{PollInterval: 50 * time.Millisecond, CommandTimeout: 300 * time.Millisecond, Retries: 3, RetryTimeout: 1500 * time.Millisecond}
	info := ironwork.JSONObject{"ipmi_address": "127.0.0.1", "ipmi_port": fmt.Sprint(relay.Port),
		"ipmi_username": sim.User, "ipmi_password": sim.Password, "ipmi_cipher_suite": "3"}
	start := time.Now()
	st, err := d.PowerState(context.Background(), task(info))
	if err != nil || st != ironwork.PowerOff {
		t.Fatalf("through a relay that dropped %d datagrams: %q %v", relay.Dropped(), st, err)
	}
	t.Logf("answered after %d dropped datagrams in %s", relay.Dropped(), time.Since(start).Round(time.Millisecond))

	relay.SetDropAll(true)
	start = time.Now()
	_, err = d.PowerState(context.Background(), task(info))
	took := time.Since(start)
	if err == nil || took > 5*time.Second {
		t.Fatalf("a BMC that answers nothing: %v after %s", err, took)
	}
	t.Logf("silent BMC: failed in %s: %v", took.Round(time.Millisecond), err)
}

// TestSilentBMCRetried puts ipmi_sim behind a relay that drops everything for a while: with
// the default retries (as many as fit in RetryTimeout, Ironic's command_retry_timeout) a
// request sent during the silence is answered once the BMC is back, and a BMC silent for
// longer than RetryTimeout fails the request with an error naming it. The production default
// (60 s) with a 30 s silence runs in internal/server's TestFaultBMCSilentDuringPowerOn.
func TestSilentBMCRetried(t *testing.T) {
	sim := bmctest.NewIPMISim(t)
	relay := bmctest.NewLossyUDP(t, sim.Port)
	d := Interface{PollInterval: 50 * time.Millisecond, CommandTimeout: 500 * time.Millisecond, RetryTimeout: 6 * time.Second}
	info := ironwork.JSONObject{"ipmi_address": "127.0.0.1", "ipmi_port": fmt.Sprint(relay.Port),
		"ipmi_username": sim.User, "ipmi_password": sim.Password, "ipmi_cipher_suite": "3"}
	const silence = 3 * time.Second
	relay.SetDropAll(true)
	timer := time.AfterFunc(silence, func() { relay.SetDropAll(false) })
	defer timer.Stop()
	start := time.Now()
	st, err := d.PowerState(context.Background(), task(info))
	took := time.Since(start)
	if err != nil || st != ironwork.PowerOff {
		t.Fatalf("a BMC silent for %s, then back: %q %v after %s", silence, st, err, took)
	}
	t.Logf("BMC silent for %s: answered after %s (%d datagrams dropped)", silence, took.Round(time.Millisecond), relay.Dropped())

	// An open session that goes silent (the BMC may forget it meanwhile) is replaced by a
	// new one once the BMC answers again.
	cached := d
	cached.Sessions = NewSessions()
	defer cached.Sessions.Close()
	if _, err := cached.PowerState(context.Background(), task(info)); err != nil {
		t.Fatal(err)
	}
	relay.SetDropAll(true)
	timer = time.AfterFunc(silence, func() { relay.SetDropAll(false) })
	defer timer.Stop()
	start = time.Now()
	st, err = cached.PowerState(context.Background(), task(info))
	took = time.Since(start)
	if err != nil || st != ironwork.PowerOff {
		t.Fatalf("an open session silent for %s, then back: %q %v after %s", silence, st, err, took)
	}
	t.Logf("open session silent for %s: answered after %s", silence, took.Round(time.Millisecond))

	timer.Stop()
	relay.SetDropAll(true)
	start = time.Now()
	_, err = d.PowerState(context.Background(), task(info))
	took = time.Since(start)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", relay.Port)) {
		t.Fatalf("a BMC silent for good: %v after %s; want an error naming the BMC", err, took)
	}
	t.Logf("BMC silent for good: failed after %s (retry timeout %s): %v", took.Round(time.Millisecond), d.RetryTimeout, err)
}

// TestSensorsFromOpenIPMISimulator reads the SDR repository and sensor readings of ipmi_sim
// (OpenIPMI's BMC simulator) with four threshold sensors and one whose scanning is off, and checks them against what the
// simulator was told and against ipmitool's own reading.
func TestSensorsFromOpenIPMISimulator(t *testing.T) {
	sim := bmctest.NewIPMISimWithSensors(t)
	d := Interface{PollInterval: 50 * time.Millisecond, CommandTimeout: time.Second}
	info := ironwork.JSONObject{"ipmi_address": "127.0.0.1", "ipmi_port": fmt.Sprint(sim.Port),
		"ipmi_username": sim.User, "ipmi_password": sim.Password, "ipmi_cipher_suite": "3"}
	start := time.Now()
	got, err := d.Sensors(context.Background(), task(info))
	if err != nil {
		t.Fatalf("sensors: %v", err)
	}
	t.Logf("read %d sensors in %s", len(got), time.Since(start))
	want := map[string]bmctest.SimSensor{}
	for _, s := range bmctest.SimSensors {
		if !s.Disabled {
			want[s.Name] = s
		}
	}
	for _, s := range got {
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected sensor %+v", s)
			continue
		}
		delete(want, s.Name)
		if s.Type != w.TypeName || s.Unit != w.UnitName || math.Abs(s.Value-w.Value) > 1e-6 {
			t.Errorf("sensor %s = %+v, want type %s unit %s value %v", s.Name, s, w.TypeName, w.UnitName, w.Value)
		}
	}
	for name := range want {
		t.Errorf("sensor %s not read", name)
	}
	// ipmitool reads the same repository.
	out := ipmitool(t, sim.Port, "sdr", "list", "full")
	if !strings.Contains(out, "CPU Temp") || !strings.Contains(out, "45 degrees C") {
		t.Errorf("ipmitool sdr list:\n%s", out)
	}
}

// TestIdleSessionsClosedAside: closing the cached sessions that went idle (a request to each
// BMC, which may take its timeout) happens beside the operation that found them, not before
// it: a fleet's power sync once waited minutes behind thousands of such closes. The idle
// sessions' BMCs go silent, so their closes are still retrying after the operation on another
// BMC has returned.
func TestIdleSessionsClosedAside(t *testing.T) {
	sim := bmctest.NewIPMISim(t)
	d := Interface{PollInterval: 50 * time.Millisecond, CommandTimeout: 400 * time.Millisecond, Retries: 3, RetryTimeout: 3 * time.Second}
	d.Sessions = &Sessions{MaxIdle: 200 * time.Millisecond, open: map[string]*session{}}
	defer d.Sessions.Close()
	via := func(r *bmctest.LossyUDP) *conductor.Task {
		return task(ironwork.JSONObject{"ipmi_address": "127.0.0.1", "ipmi_port": fmt.Sprint(r.Port),
			"ipmi_username": sim.User, "ipmi_password": sim.Password, "ipmi_cipher_suite": "3"})
	}
	var idle []*bmctest.LossyUDP
	for range 3 {
		r := bmctest.NewLossyUDP(t, sim.Port)
		if _, err := d.PowerState(context.Background(), via(r)); err != nil {
			t.Fatal(err)
		}
		idle = append(idle, r)
	}
	dropped := func() int {
		n := 0
		for _, r := range idle {
			n += r.Dropped()
		}
		return n
	}
	for _, r := range idle {
		r.SetDropAll(true)
	}
	other := bmctest.NewLossyUDP(t, sim.Port)
	time.Sleep(3 * d.Sessions.MaxIdle)
	start := time.Now()
	if st, err := d.PowerState(context.Background(), via(other)); err != nil || st != ironwork.PowerOff {
		t.Fatalf("another BMC while idle sessions close: %q %v", st, err)
	}
	took, at := time.Since(start), dropped()
	for i := 0; dropped() == at; i++ {
		if i == 50 {
			t.Fatalf("the idle sessions' closes ended before the operation returned (it took %s): they held it up", took)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("operation on another BMC took %s; the idle sessions were still closing after it", took.Round(time.Millisecond))
	d.Sessions.mu.Lock()
	defer d.Sessions.mu.Unlock()
	if len(d.Sessions.open) != 1 {
		t.Errorf("%d sessions cached, want only the one in use", len(d.Sessions.open))
	}
}
