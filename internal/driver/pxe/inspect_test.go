package pxe_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/pxe"
)

// TestInspectionCallbackOnlyWhileInspecting checks that the ramdisk of a node being inspected
// gets IPA's ipa-inspection-callback-url, and the same node's deploy ramdisk does not.
func TestInspectionCallbackOnlyWhileInspecting(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kernel := writeFile(t, filepath.Join(f.dir, "vmlinuz"), "KERNEL")
	initrd := writeFile(t, filepath.Join(f.dir, "initrd"), "RAMDISK")
	const mac = "52:54:00:00:00:31"
	n := f.node(t, "insp", pxe.IPXE, nil, ironwork.JSONObject{"deploy_kernel": kernel, "deploy_ramdisk": initrd}, mac)
	const callback = "ipa-inspection-callback-url=http://10.0.0.1:6385/v1/continue_inspection"
	for _, tc := range []struct {
		state ironwork.ProvisionState
		want  bool
	}{{ironwork.InspectWait, true}, {ironwork.Inspecting, true}, {ironwork.Deploying, false}, {ironwork.Cleaning, false}} {
		if _, err := f.store.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error { n.ProvisionState = tc.state; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) }); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(f.script(t, mac), callback); got != tc.want {
			t.Errorf("state %s: callback in the script %t, want %t:\n%s", tc.state, got, tc.want, f.script(t, mac))
		}
	}
}

// TestDiscoveryScript checks what machines nobody enrolled boot: nothing without discovery,
// the discovery ramdisk with the inspection callback with it, whether iPXE asks by MAC or as
// "unknown" (what DHCP hands out).
func TestDiscoveryScript(t *testing.T) {
	f := newFixture(t)
	if s := f.script(t, "52:54:00:00:00:99"); !strings.Contains(s, "no node has a port") || !strings.Contains(s, "exit 1") {
		t.Errorf("unknown MAC without discovery: %s", s)
	}
	cfg := f.cfg
	cfg.Discovery = true
	res := &pxe.Resolver{Nodes: f.store, Cfg: cfg}
	for _, mac := range []string{"52:54:00:00:00:99", pxe.UnknownMAC} {
		s, err := res.Script(context.Background(), mac)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"kernel --name kernel http://10.0.0.1:8080/discovery/kernel initrd=ramdisk",
			"BOOTIF=01-${netX/mac:hexhyp}", "ipa-api-url=http://10.0.0.1:6385",
			"ipa-inspection-callback-url=http://10.0.0.1:6385/v1/continue_inspection", "ironwork-boot-mode=${bootmode}",
			"console=ttyS0", "initrd --name ramdisk http://10.0.0.1:8080/discovery/ramdisk"} {
			if !strings.Contains(s, want) {
				t.Errorf("discovery script for %s lacks %q:\n%s", mac, want, s)
			}
		}
	}
}
