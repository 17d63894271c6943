package lab_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

// firmwareServer serves firmware images the lab's vbmc accepts (it runs on the host, as the
// conductor does) and returns their base URL and sha256 sums.
func firmwareServer(t testing.TB) (string, map[string]string) {
	t.Helper()
	images := map[string]string{
		"/bios-2.1.0.bin": "ironwork-firmware BIOS 2.1.0\n" + strings.Repeat("b", 1000),
		"/bios-2.2.0.bin": "ironwork-firmware BIOS 2.2.0\n" + strings.Repeat("c", 1000),
	}
	sums := map[string]string{}
	for p, body := range images {
		h := sha256.Sum256([]byte(body))
		sums[p] = hex.EncodeToString(h[:])
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := images[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, sums
}

// oobSteps are the redfish bios and firmware steps of a clean or service: one BIOS setting,
// one BIOS update.
func oobSteps(setting, fwURL, sum string) []any {
	return []any{
		map[string]any{"interface": "bios", "step": "apply_configuration", "args": map[string]any{"settings": []any{
			map[string]any{"name": "ProcVirtualization", "value": setting}}}},
		map[string]any{"interface": "firmware", "step": "update", "args": map[string]any{"settings": []any{
			map[string]any{"component": "bios", "url": fwURL, "checksum": sum}}}},
	}
}

// checkBIOSAndFirmware reads /bios/ProcVirtualization and the bios firmware component.
func checkBIOSAndFirmware(ctx context.Context, t testing.TB, st *lab.State, uuid, when, setting, version string) {
	t.Helper()
	c := st.Client()
	var s map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/bios/ProcVirtualization", nil, &s); err != nil {
		t.Errorf("%s: bios setting: %v", when, err)
	} else if got := fmt.Sprint(s["ProcVirtualization"].(map[string]any)["value"]); got != setting {
		t.Errorf("%s: ProcVirtualization %s, want %s", when, got, setting)
	}
	var fw struct{ Firmware []map[string]any }
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/firmware", nil, &fw); err != nil {
		t.Errorf("%s: firmware: %v", when, err)
		return
	}
	for _, f := range fw.Firmware {
		if f["component"] == "bios" && (f["current_version"] != version || f["last_version_flashed"] != version) {
			t.Errorf("%s: bios firmware %v, want %s", when, f, version)
		}
	}
}

// checkOutOfBandClean runs the redfish raid, bios and firmware steps in one manual clean with
// disable_ramdisk on a manageable lab machine behind the lab's vbmc: no ramdisk boots; the
// hardware RAID-1 volume shows in raid_config, the setting at /bios, the version at
// /firmware. The node keeps raid_interface redfish and firmware_interface redfish.
func checkOutOfBandClean(ctx context.Context, t testing.TB, st *lab.State, name, fwBase string, sums map[string]string) {
	t.Helper()
	n, _ := st.Node(name)
	c := st.Client()
	path := "/v1/nodes/" + n.UUID
	if err := c.Do(ctx, http.MethodPatch, path, []map[string]any{{"op": "add", "path": "/raid_interface", "value": "redfish"},
		{"op": "add", "path": "/firmware_interface", "value": "redfish"}}, nil); err != nil {
		t.Fatalf("redfish raid and firmware interfaces: %v", err)
	}
	var node map[string]any
	_ = c.Do(ctx, http.MethodGet, path, nil, &node)
	if node["provision_state"] == "enroll" {
		if err := lab.ProvisionVerb(ctx, c, n.UUID, "manage", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lab.WaitState(ctx, c, n.UUID, "manageable", time.Minute, nil); err != nil {
		t.Fatalf("manage: %v", err)
	}
	if err := c.Do(ctx, http.MethodPut, path+"/states/raid", map[string]any{"logical_disks": []any{map[string]any{
		"size_gb": "MAX", "raid_level": "1", "is_root_volume": true, "volume_name": "hw-mirror"}}}, nil); err != nil {
		t.Fatalf("hardware target_raid_config: %v", err)
	}
	steps := append([]any{map[string]any{"interface": "raid", "step": "create_configuration"}},
		oobSteps("Disabled", fwBase+"/bios-2.1.0.bin", "sha256:"+sums["/bios-2.1.0.bin"])...)
	start := time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "clean", map[string]any{"clean_steps": steps, "disable_ramdisk": true}); err != nil {
		t.Fatalf("out-of-band manual clean: %v", err)
	}
	node, err := lab.WaitState(ctx, c, n.UUID, "manageable", 5*time.Minute, nil)
	if err != nil {
		t.Fatalf("out-of-band manual clean: %v", err)
	}
	t.Logf("out-of-band manual clean (redfish raid + bios + firmware, disable_ramdisk): %.1f s", time.Since(start).Seconds())
	rc, _ := node["raid_config"].(map[string]any)
	lds, _ := rc["logical_disks"].([]any)
	if len(lds) != 1 || !strings.Contains(fmt.Sprint(lds[0]), "hw-mirror") || !strings.Contains(fmt.Sprint(lds[0]), "raid_level:1") {
		t.Errorf("raid_config after the redfish create_configuration: %v", node["raid_config"])
	}
	checkBIOSAndFirmware(ctx, t, st, n.UUID, "after the out-of-band clean", "Disabled", "2.1.0")
}

// checkOutOfBandService services an active lab machine with the redfish bios and firmware
// steps (disable_ramdisk): back to active, the results through the API, and the instance
// boots again after the reboot the BIOS setting needs.
func checkOutOfBandService(ctx context.Context, t testing.TB, st *lab.State, name, fwBase string, sums map[string]string) {
	t.Helper()
	n, _ := st.Node(name)
	c := st.Client()
	c.Version = "1.108" // disable_ramdisk with servicing
	serialFrom := fileSizeOf(n.Serial)
	start := time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "service", map[string]any{"disable_ramdisk": true,
		"service_steps": oobSteps("Enabled", fwBase+"/bios-2.2.0.bin", "sha256:"+sums["/bios-2.2.0.bin"])}); err != nil {
		t.Fatalf("service: %v", err)
	}
	if _, err := lab.WaitState(ctx, c, n.UUID, "active", 5*time.Minute, nil); err != nil {
		t.Fatalf("service: %v", err)
	}
	t.Logf("out-of-band servicing of the active node (bios + firmware): %.1f s", time.Since(start).Seconds())
	checkBIOSAndFirmware(ctx, t, st, n.UUID, "after servicing", "Enabled", "2.2.0")
	line, err := lab.WaitSerial(ctx, n.Serial, serialFrom, testimage.Marker, 4*time.Minute)
	if err != nil {
		t.Errorf("the instance after servicing: %v", err)
		return
	}
	t.Logf("the instance booted again after servicing (%.1f s from its start): %s", time.Since(start).Seconds(), line)
}
