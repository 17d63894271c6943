package redfish

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// biosFixture is a conductor whose redfish nodes have the redfish bios interface, with a
// short apply timeout.
func biosFixture(t *testing.T, info ironwork.JSONObject) (*conductor.Conductor, string) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := conductor.Registry{}
	fake.Register(reg)
	rf := Interface{PollInterval: 20 * time.Millisecond, RequestTimeout: 30 * time.Second, ConnectionAttempts: 1}
	reg.Add(ironwork.PowerInterface, "redfish", rf)
	reg.Add(ironwork.ManagementInterface, "redfish", rf)
	reg.Add(ironwork.BIOSInterface, "redfish", BIOS{Interface: rf, ApplyTimeout: 300 * time.Millisecond})
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "c1", Drivers: []string{"fake-hardware", "redfish"}}); err != nil {
		t.Fatal(err)
	}
	cond := conductor.New(conductor.Config{Hostname: "c1", PowerActionTimeout: 10 * time.Second}, store, ironwork.DefaultDriverConfig(), reg, nil)
	n := &ironwork.Node{Driver: "redfish", ProvisionState: ironwork.Cleaning, DriverInfo: info, PowerState: ironwork.PowerOff,
		Interfaces: map[ironwork.InterfaceKind]string{ironwork.ManagementInterface: "redfish", ironwork.PowerInterface: "redfish", ironwork.BootInterface: "ipxe"}}
	if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
		t.Fatal(err)
	}
	if n.Interfaces[ironwork.BIOSInterface] != "redfish" {
		t.Fatalf("bios interface %q, want redfish", n.Interfaces[ironwork.BIOSInterface])
	}
	if err := store.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	return cond, n.UUID
}

// TestBIOSFromTheDMTFMockup reads the mockup's Bios (whose registry the mockup does not
// serve: settings without registry fields), refuses an unknown setting before the BMC is
// touched, and fails apply_configuration with the BMC's own message when the settings never
// take by the wait's deadline (the mockup's Settings resource stores them, its Bios never
// changes).
func TestBIOSFromTheDMTFMockup(t *testing.T) {
	bmc, info := newBMC(t)
	cond, uuid := biosFixture(t, info)
	ctx := context.Background()
	err := cond.WithNode(ctx, uuid, func(tk *conductor.Task) error {
		b := tk.Driver.Impl(ironwork.BIOSInterface).(BIOS)
		got, err := b.BIOSSettings(ctx, tk)
		if err != nil {
			return err
		}
		byName := map[string]ironwork.BIOSSetting{}
		for _, s := range got {
			byName[s.Name] = s
		}
		if len(got) != 10 || *byName["ProcCoreDisable"].Value != "0" || *byName["BootMode"].Value != "Uefi" || byName["BootMode"].AttributeType != nil {
			t.Errorf("mockup settings: %+v", got)
		}
		_, err = b.RunStep(ctx, tk, conductor.Step{Interface: ironwork.BIOSInterface, Name: conductor.StepApplyBIOS,
			Args: map[string]any{"settings": []any{map[string]any{"name": "Nope", "value": "x"}}}})
		if ironwork.ErrorCode(err) != ironwork.EINVALID || !strings.Contains(err.Error(), "Nope is not a BIOS setting") {
			t.Errorf("unknown setting: %v", err)
		}
		if len(bmc.Resets) != 0 {
			t.Errorf("a refused step reset the system: %v", bmc.Resets)
		}
		// The step stores the settings, restarts the system and waits on the BMC; the
		// conductor's poll then finds them not applied, and at the deadline fails the step
		// with the BMC's own message.
		step := conductor.Step{Interface: ironwork.BIOSInterface, Name: conductor.StepApplyBIOS,
			Args: map[string]any{"settings": []any{map[string]any{"name": "ProcTurboMode", "value": "Disabled"}}}}
		wait, err := b.RunStep(ctx, tk, step)
		if err != nil || !wait {
			t.Fatalf("apply_configuration: wait %v, %v; want a wait on the BMC", wait, err)
		}
		raw, err := json.Marshal(tk.Node.DriverInternalInfo["bmc_wait"])
		if err != nil {
			return err
		}
		var w conductor.BMCWait
		if err := json.Unmarshal(raw, &w); err != nil || w.Deadline.IsZero() {
			t.Fatalf("bmc_wait %s: %v", raw, err)
		}
		if done, err := b.PollBMC(ctx, tk, step, &w); done || err != nil {
			t.Errorf("poll before the deadline: done %v, %v; want to wait on", done, err)
		}
		w.Deadline = time.Now().Add(-time.Second)
		done, err := b.PollBMC(ctx, tk, step, &w)
		t.Logf("apply_configuration at its deadline: %v", err)
		if done || err == nil || !strings.Contains(err.Error(), "ProcTurboMode is Enabled, not Disabled") || !strings.Contains(err.Error(), "SettingsFailed") {
			t.Errorf("settings that never take: done %v, %v", done, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The node is recorded off, but the mockup's system is on: the BMC's state wins, and the
	// system is restarted (not merely "powered on") to apply the settings.
	if len(bmc.Resets) == 0 || bmc.Resets[0] != "ForceRestart" {
		t.Errorf("resets %v: the running system is restarted to apply the settings", bmc.Resets)
	}
}
