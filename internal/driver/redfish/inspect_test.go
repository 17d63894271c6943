package redfish

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// TestInspectHardwareDMTFMockup: out-of-band inspection of DMTF's rack-mount mockup gives
// the mockup's values as Ironic reads them: 16 threads of the one present x86 CPU (the
// absent CPU2 and the FPGA not counted), 96 GiB, local_gb from the smaller SATA disk
// (4 TB: 3725 GiB less one), UEFI, and a port for each enabled NIC's MAC, once.
func TestInspectHardwareDMTFMockup(t *testing.T) {
	_, info := newBMC(t)
	res, err := Interface{}.InspectHardware(context.Background(), task(info))
	if err != nil {
		t.Fatal(err)
	}
	want := &conductor.InspectResult{CPUs: 16, CPUArch: "x86_64", MemoryMB: 96 * 1024, LocalGB: 3724, BootMode: "uefi",
		MACs: []string{"12:44:6a:3b:04:11", "aa:bb:cc:dd:ee:00", "aa:bb:cc:dd:ee:fe"}}
	got := *res
	got.MACs = append([]string(nil), res.MACs...)
	if d := cmp.Diff(want, &got, cmp.Transformer("sort", func(in []string) []string { return slices.Sorted(slices.Values(in)) })); d != "" {
		t.Errorf("inspection (-want +got):\n%s", d)
	}
}

// TestInspectHardwareFallbacksAndFailures: without memory modules MemorySummary counts; a BMC that reports no processors fails the inspection naming what is missing;
// a system that cannot be read is an error, not a partial result.
func TestInspectHardwareFallbacksAndFailures(t *testing.T) {
	bmc, info := newBMC(t)
	sys := bmc.Resource(system)
	delete(sys, "Memory")
	sys["Boot"].(map[string]any)["BootSourceOverrideMode"] = "Legacy"
	bmc.SetResource(system, sys)
	res, err := Interface{}.InspectHardware(context.Background(), task(info))
	if err != nil {
		t.Fatal(err)
	}
	if res.MemoryMB != 96*1024 || res.BootMode != "bios" {
		t.Errorf("memory %d MiB (want MemorySummary's 96 GiB), boot mode %q", res.MemoryMB, res.BootMode)
	}

	delete(sys, "Processors")
	bmc.SetResource(system, sys)
	_, err = Interface{}.InspectHardware(context.Background(), task(info))
	if err == nil || !strings.Contains(ironwork.ErrorMessage(err), "Failed to discover the following properties: cpus, cpu_arch") {
		t.Errorf("no processors: %v", err)
	}

	info["redfish_system_id"] = "/redfish/v1/Systems/nope"
	if _, err := (Interface{}).InspectHardware(context.Background(), task(info)); err == nil {
		t.Error("an unknown system inspected")
	}
}
