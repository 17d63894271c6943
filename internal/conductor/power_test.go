package conductor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

func TestSetPower(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		power     string // power interface; "rec" when empty
		target    ironwork.PowerState
		fail      []string
		want      ironwork.PowerState // the record afterwards
		wantCalls []string
		wantError string // in last_error; "" when the change succeeds
	}{
		{name: "on", target: ironwork.PowerOn, want: ironwork.PowerOn, wantCalls: []string{"power.SetPowerState(power on)"}},
		{name: "off", target: ironwork.PowerOff, want: ironwork.PowerOff, wantCalls: []string{"power.SetPowerState(power off)"}},
		{name: "reboot", target: ironwork.Rebooting, want: ironwork.PowerOn, wantCalls: []string{"power.Reboot(soft=false)"}},
		{name: "soft reboot", target: ironwork.SoftRebooting, want: ironwork.PowerOn, wantCalls: []string{"power.Reboot(soft=true)"}},
		{name: "soft power off", target: ironwork.SoftPowerOff, want: ironwork.PowerOff, wantCalls: []string{"power.SoftPowerOff"}},
		{name: "reboot without a rebooter is off then on", power: "rec-plain", target: ironwork.Rebooting, want: ironwork.PowerOn,
			wantCalls: []string{"power.SetPowerState(power off)", "power.SetPowerState(power on)"}},
		{name: "soft reboot without a rebooter", power: "rec-plain", target: ironwork.SoftRebooting, want: ironwork.PowerOn,
			wantError: "cannot soft reboot"},
		{name: "soft power off without soft power", power: "rec-plain", target: ironwork.SoftPowerOff, want: ironwork.PowerOn,
			wantError: "cannot power off softly"},
		{name: "BMC refuses, state readable", target: ironwork.PowerOff, fail: []string{"power.SetPowerState(power off)"}, want: ironwork.PowerOn,
			wantCalls: []string{"power.SetPowerState(power off)"}, wantError: "injected power.SetPowerState(power off) failure"},
		{name: "BMC refuses, state unreadable", target: ironwork.PowerOff, fail: []string{"power.SetPowerState(power off)", "power.PowerState"}, want: ironwork.PowerError,
			wantCalls: []string{"power.SetPowerState(power off)"}, wantError: "Failed to change power state to 'error'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.rec.set(func(r *recorder) { r.power = ironwork.PowerOn })
			for _, f := range tc.fail {
				e.rec.failOn(f)
			}
			n := e.node(t, func(n *ironwork.Node) {
				n.PowerState = ironwork.PowerOn
				if tc.power != "" {
					n.Interfaces[ironwork.PowerInterface] = tc.power
				}
				n.DriverInternalInfo = ironwork.JSONObject{"agent_secret_token": "old-token"}
			})
			ok(t, setPower(t, e.c, n.UUID, tc.target))
			got := e.settled(t, n.UUID, ironwork.Available)
			if got.PowerState != tc.want || got.TargetPowerState != "" {
				t.Errorf("power %q target %q, want %q and none", got.PowerState, got.TargetPowerState, tc.want)
			}
			var calls []string
			for _, c := range e.rec.Calls("power.") {
				if c != "power.PowerState" {
					calls = append(calls, c)
				}
			}
			if diff := cmp.Diff(tc.wantCalls, calls); diff != "" {
				t.Errorf("power calls (-want +got):\n%s", diff)
			}
			if tc.wantError == "" && got.LastError != "" || !strings.Contains(got.LastError, tc.wantError) {
				t.Errorf("last_error %q, want it to contain %q", got.LastError, tc.wantError)
			}
			_, kept := got.DriverInternalInfo["agent_secret_token"]
			if forget := tc.wantError == "" && tc.target != ironwork.PowerOn; kept == forget {
				t.Errorf("agent token kept: %t after %s (error %q)", kept, tc.target, got.LastError)
			}
		})
	}
}

func TestSetPowerRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		node   func(n *ironwork.Node)
		target ironwork.PowerState
		want   ironwork.Code
	}{
		{"unknown target", nil, "power sideways", ironwork.EINVALID},
		{"power off disabled", func(n *ironwork.Node) { n.DisablePowerOff = true }, ironwork.PowerOff, ironwork.EINVALID},
		{"soft power off disabled", func(n *ironwork.Node) { n.DisablePowerOff = true }, ironwork.SoftPowerOff, ironwork.EINVALID},
		{"no power interface", func(n *ironwork.Node) { n.Interfaces[ironwork.PowerInterface] = "no-such-power" }, ironwork.PowerOn, ironwork.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.node(t, tc.node)
			wantCode(t, setPower(t, e.c, n.UUID, tc.target), tc.want)
			if got := e.settled(t, n.UUID, ironwork.Available); got.TargetPowerState != "" || got.LastError != "" {
				t.Errorf("refused request left target %q last_error %q", got.TargetPowerState, got.LastError)
			}
		})
	}
	wantCode(t, setPower(t, e.c, "no-such-node", ironwork.PowerOn), ironwork.ENOTFOUND)
	if calls := e.rec.Calls("power.Set"); len(calls) != 0 {
		t.Errorf("refused requests reached the BMC: %v", calls)
	}
}

func TestTaskSetPower(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, nil)
	ok(t, withNode(t, e.c, n.UUID, func(task *conductor.Task) error { return task.SetPower(context.Background(), ironwork.PowerOn) }))
	if got := e.settled(t, n.UUID, ironwork.Available); got.PowerState != ironwork.PowerOn {
		t.Errorf("power %q after Task.SetPower", got.PowerState)
	}
}

func TestWaitForPower(t *testing.T) {
	t.Parallel()
	readings := func(seq ...any) func() (ironwork.PowerState, error) {
		i := 0
		return func() (ironwork.PowerState, error) {
			v := seq[min(i, len(seq)-1)]
			i++
			if err, isErr := v.(error); isErr {
				return "", err
			}
			return v.(ironwork.PowerState), nil
		}
	}
	ctx := context.Background()
	t.Run("reaches the state after stale reads and errors", func(t *testing.T) {
		read := readings(ironwork.PowerOff, errors.New("busy"), ironwork.PowerOn)
		ok(t, conductor.WaitForPower(ctx, read, ironwork.PowerOn, time.Hour, time.Microsecond))
	})
	t.Run("gives up after the timeout", func(t *testing.T) {
		err := conductor.WaitForPower(ctx, readings(ironwork.PowerOff), ironwork.PowerOn, time.Millisecond, time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), `"power off"`) {
			t.Errorf("got %v, want an error naming the last state", err)
		}
		err = conductor.WaitForPower(ctx, readings(errors.New("no route")), ironwork.PowerOn, time.Millisecond, time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "no route") {
			t.Errorf("got %v, want an error naming the read error", err)
		}
	})
	t.Run("stops with its context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := conductor.WaitForPower(cctx, readings(ironwork.PowerOff), ironwork.PowerOn, 0, time.Hour)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}

func TestBootDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, nil)
	devs, err := supportedBootDevices(t, e.c, n.UUID)
	ok(t, err)
	if diff := cmp.Diff([]string{conductor.BootPXE, conductor.BootDisk}, devs); diff != "" {
		t.Errorf("supported boot devices (-want +got):\n%s", diff)
	}
	want := conductor.BootDevice{Device: conductor.BootPXE, Persistent: true}
	ok(t, setBootDevice(t, e.c, n.UUID, want))
	got, err := bootDevice(t, e.c, n.UUID)
	ok(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("boot device (-want +got):\n%s", diff)
	}
	wantCode(t, setBootDevice(t, e.c, n.UUID, conductor.BootDevice{Device: conductor.BootCDROM}), ironwork.EINVALID)
	if got, _ := bootDevice(t, e.c, n.UUID); got != want {
		t.Errorf("a refused boot device changed it to %v", got)
	}
	e.settled(t, n.UUID, ironwork.Available)
}

func TestManagementNotSupported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// "noop" management is registered but implements nothing.
	n := e.node(t, func(n *ironwork.Node) { n.Interfaces[ironwork.ManagementInterface] = "noop" })
	for name, op := range map[string]func() error{
		"boot device":            func() error { _, err := bootDevice(t, e.c, n.UUID); return err },
		"supported boot devices": func() error { _, err := supportedBootDevices(t, e.c, n.UUID); return err },
		"set boot device":        func() error { return setBootDevice(t, e.c, n.UUID, conductor.BootDevice{Device: "pxe"}) },
		"nmi":                    func() error { return injectNMI(t, e.c, n.UUID) },
		"boot mode":              func() error { return setBootMode(t, e.c, n.UUID, "uefi") },
		"secure boot":            func() error { return setSecureBoot(t, e.c, n.UUID, true) },
	} {
		t.Run(name, func(t *testing.T) {
			wantCode(t, op(), ironwork.EINVALID)
			e.settled(t, n.UUID, ironwork.Available)
		})
	}
	for name, op := range map[string]func() error{
		"boot device":            func() error { _, err := bootDevice(t, e.c, "no-such-node"); return err },
		"supported boot devices": func() error { _, err := supportedBootDevices(t, e.c, "no-such-node"); return err },
		"validate":               func() error { _, err := validate(t, e.c, "no-such-node"); return err },
	} {
		t.Run(name+" of an unknown node", func(t *testing.T) { wantCode(t, op(), ironwork.ENOTFOUND) })
	}
}

func TestManagementSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, nil)
	ok(t, setBootMode(t, e.c, n.UUID, "uefi"))
	ok(t, setSecureBoot(t, e.c, n.UUID, true))
	ok(t, injectNMI(t, e.c, n.UUID))
	wantCode(t, setBootMode(t, e.c, n.UUID, "efi"), ironwork.EINVALID)
	got := e.settled(t, n.UUID, ironwork.Available)
	if got.BootMode != "uefi" || got.SecureBoot == nil || !*got.SecureBoot {
		t.Errorf("boot mode %q secure boot %v, want uefi and true", got.BootMode, got.SecureBoot)
	}
	want := []string{"management.SetBootMode(uefi)", "management.SetSecureBoot(true)", "management.InjectNMI"}
	if diff := cmp.Diff(want, e.rec.Calls("management.")); diff != "" {
		t.Errorf("management calls (-want +got):\n%s", diff)
	}
	// A failing BMC leaves the record as it was.
	e.rec.failOn("management.SetBootMode(bios)")
	if err := setBootMode(t, e.c, n.UUID, "bios"); err == nil {
		t.Fatal("a failed boot mode change returned no error")
	}
	if got := e.settled(t, n.UUID, ironwork.Available); got.BootMode != "uefi" {
		t.Errorf("boot mode %q after a failed change", got.BootMode)
	}
}

func TestSetTargetRAID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, nil)
	for _, tc := range []struct {
		name string
		cfg  ironwork.JSONObject
	}{
		{"no logical disks", ironwork.JSONObject{"disks": []any{}}},
		{"disk not an object", ironwork.JSONObject{"logical_disks": []any{"1"}}},
		{"disk without a level", ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 10.0}}}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, setTargetRAID(t, e.c, n.UUID, tc.cfg), ironwork.EINVALID) })
	}
	cfg := ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 100.0, "raid_level": "1"}}}
	ok(t, setTargetRAID(t, e.c, n.UUID, cfg))
	if diff := cmp.Diff(cfg, e.settled(t, n.UUID, ironwork.Available).TargetRAIDConfig); diff != "" {
		t.Errorf("target RAID config (-want +got):\n%s", diff)
	}
	// An empty configuration clears the target, as in Ironic.
	ok(t, setTargetRAID(t, e.c, n.UUID, ironwork.JSONObject{}))
	if got := e.settled(t, n.UUID, ironwork.Available).TargetRAIDConfig; len(got) != 0 {
		t.Errorf("target RAID config after {} = %v", got)
	}
}

func TestSetMaintenance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, func(n *ironwork.Node) { n.Fault = "power failure" })
	ok(t, setMaintenance(t, e.c, n.UUID, true, "replacing a DIMM"))
	got := e.get(t, n.UUID)
	if !got.Maintenance || got.MaintenanceReason != "replacing a DIMM" {
		t.Errorf("maintenance %t reason %q", got.Maintenance, got.MaintenanceReason)
	}
	wantCode(t, provision(t, e.c, n.UUID, "active"), ironwork.EINVALID)
	ok(t, setMaintenance(t, e.c, n.UUID, false, "ignored"))
	got = e.settled(t, n.UUID, ironwork.Available)
	if got.Maintenance || got.MaintenanceReason != "" || got.Fault != "" {
		t.Errorf("out of maintenance: maintenance %t reason %q fault %q", got.Maintenance, got.MaintenanceReason, got.Fault)
	}
	wantCode(t, setMaintenance(t, e.c, "no-such-node", true, ""), ironwork.ENOTFOUND)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rec.failOn("deploy.Validate")
	n := e.node(t, func(n *ironwork.Node) {
		n.Interfaces[ironwork.ConsoleInterface] = "no-such-console"
		n.Interfaces[ironwork.StorageInterface] = "noop" // registered, validates nothing
	})
	res, err := validate(t, e.c, n.UUID)
	ok(t, err)
	got := map[ironwork.InterfaceKind]bool{}
	for k, r := range res {
		got[k] = r.Result != nil && *r.Result
	}
	want := map[ironwork.InterfaceKind]bool{}
	for _, k := range ironwork.InterfaceKinds {
		want[k] = true
	}
	delete(want, ironwork.VendorInterface) // Ironic validates every interface but the vendor one
	want[ironwork.ConsoleInterface], want[ironwork.DeployInterface] = false, false
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("validation results (-want +got):\n%s", diff)
	}
	if r := res[ironwork.ConsoleInterface].Reason; !strings.Contains(r, "no-such-console") {
		t.Errorf("console reason %q does not name the interface", r)
	}
	if r := res[ironwork.DeployInterface].Reason; !strings.Contains(r, "injected deploy.Validate failure") {
		t.Errorf("deploy reason %q does not carry the driver's", r)
	}
	e.settled(t, n.UUID, ironwork.Available)
}
