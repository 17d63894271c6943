package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/metrics"
)

// buildRegistry registers what Start registers, with network boot not configured (the boot
// interfaces are then registered as stand-ins that say so, under the same names).
func buildRegistry(t *testing.T) conductor.Registry {
	t.Helper()
	reg := conductor.Registry{}
	sessions := ipmi.NewSessions()
	t.Cleanup(sessions.Close)
	log := slog.New(slog.DiscardHandler)
	cfg := Default()
	registerDrivers(cfg, reg, sessions, nil, log)
	bs, err := registerBoot(context.Background(), cfg, nil, reg, metrics.New(prometheus.NewRegistry()), log)
	if err != nil || bs != nil {
		t.Fatalf("registerBoot without a provisioning interface = %v, %v", bs, err)
	}
	return reg
}

// TestCatalogueIsWhatIsRegistered ties the driver catalogue to the implementations this build
// registers, in both directions.
func TestCatalogueIsWhatIsRegistered(t *testing.T) {
	reg := buildRegistry(t)
	if err := checkCatalogue(reg); err != nil {
		t.Fatal(err)
	}
	// Every implementation a node of any hardware type can get by default exists.
	dc := ironwork.DefaultDriverConfig()
	for _, hw := range ironwork.HardwareTypes() {
		n := &ironwork.Node{Driver: hw.Name}
		if err := dc.ResolveInterfaces(n); err != nil {
			t.Errorf("%s: a node with no interface fields: %v", hw.Name, err)
			continue
		}
		for _, kind := range ironwork.InterfaceKinds {
			if _, ok := reg[kind][n.Interfaces[kind]]; !ok {
				t.Errorf("%s: default %s interface %q is not registered", hw.Name, kind, n.Interfaces[kind])
			}
			for _, name := range dc.EnabledFor(hw, kind) {
				if _, ok := reg[kind][name]; !ok {
					t.Errorf("%s: enabled %s interface %q is not registered", hw.Name, kind, name)
				}
			}
		}
		// The interfaces a deploy needs are real ones, never a "no-" stand-in.
		for _, kind := range []ironwork.InterfaceKind{ironwork.PowerInterface, ironwork.ManagementInterface,
			ironwork.BootInterface, ironwork.DeployInterface} {
			if strings.HasPrefix(n.Interfaces[kind], "no-") {
				t.Errorf("%s: default %s interface is %q", hw.Name, kind, n.Interfaces[kind])
			}
		}
	}
}

// TestCatalogueDriftIsFound shows checkCatalogue can fail, both ways.
func TestCatalogueDriftIsFound(t *testing.T) {
	t.Run("listed but not registered", func(t *testing.T) {
		reg := buildRegistry(t)
		delete(reg[ironwork.BIOSInterface], "no-bios")
		err := checkCatalogue(reg)
		if !errors.Is(err, ErrCatalogueDrift) || !strings.Contains(err.Error(), `bios interface "no-bios", which is not registered`) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("registered but not listed", func(t *testing.T) {
		reg := buildRegistry(t)
		reg.Add(ironwork.BootInterface, "ilo-virtual-media", struct{}{})
		err := checkCatalogue(reg)
		if !errors.Is(err, ErrCatalogueDrift) || !strings.Contains(err.Error(), `boot interface "ilo-virtual-media" is registered but no hardware type lists it`) {
			t.Fatalf("error = %v", err)
		}
	})
}
