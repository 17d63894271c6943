package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// versioned sends one API request at a microversion and decodes the answer.
func versioned(t *testing.T, base, version, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// startBIOSVBMC serves one dummy machine (no QEMU) with the virtual BMC's Redfish BIOS.
func startBIOSVBMC(t *testing.T, password string) *vbmc.VBMC {
	t.Helper()
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: password, RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	return v
}

// TestBIOSThroughTheAPI drives the redfish bios interface against `ironwork vbmc`: settings
// are cached when the node is managed and shown at /bios (1.40, registry fields at 1.74); a
// manual clean with disable_ramdisk applies settings (values as strings, as Metal3 sends
// them), reboots and checks them, then restores the power state; bad settings and ramdisk
// steps are refused with 400 before anything changes; factory_reset restores the defaults.
func TestBIOSThroughTheAPI(t *testing.T) {
	const password = "Bios-S3cret-pw"
	v := startBIOSVBMC(t, password)
	m := v.Machine("vm1")
	srv := startServer(t, "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"), fastBMCPoll)
	c := apiClient{t: t, base: srv.URL()}
	code, _, n := c.do("POST", "/v1/nodes", map[string]any{"name": "rf-bios", "driver": "redfish", "driver_info": map[string]any{
		"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
		"redfish_username": "admin", "redfish_password": password}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, n)
	}
	if n["bios_interface"] != "redfish" {
		t.Fatalf("bios_interface %v, want redfish (the redfish hardware type's default, as Ironic's)", n["bios_interface"])
	}
	uuid := n["uuid"].(string)
	if code, body := versioned(t, srv.URL(), "1.40", "GET", "/v1/nodes/rf-bios/bios", nil); code != http.StatusOK || len(body["bios"].([]any)) != 0 {
		t.Fatalf("bios before any verify: %d %v", code, body)
	}
	c.provision(uuid, "manage")
	c.waitState(uuid, "manageable")

	code, body := versioned(t, srv.URL(), "1.40", "GET", "/v1/nodes/rf-bios/bios", nil)
	list, _ := body["bios"].([]any)
	if code != http.StatusOK || len(list) != 9 {
		t.Fatalf("bios at 1.40: %d %v", code, body)
	}
	first := list[0].(map[string]any)
	if first["name"] != "AdminPhone" || first["value"] != "" || first["attribute_type"] != nil || first["links"] == nil || first["created_at"] == nil {
		t.Fatalf("first setting at 1.40: %v", first)
	}
	if code, body := versioned(t, srv.URL(), "1.73", "GET", "/v1/nodes/rf-bios/bios?detail=true", nil); code != http.StatusBadRequest {
		t.Fatalf("detail at 1.73: %d %v", code, body)
	}
	if code, body := versioned(t, srv.URL(), "1.35", "GET", "/v1/nodes/rf-bios/bios", nil); code != http.StatusNotFound {
		t.Fatalf("bios at 1.35: %d %v", code, body)
	}
	code, body = versioned(t, srv.URL(), "1.74", "GET", "/v1/nodes/rf-bios/bios?detail=true", nil)
	byName := map[string]map[string]any{}
	for _, s := range body["bios"].([]any) {
		byName[s.(map[string]any)["name"].(string)] = s.(map[string]any)
	}
	turbo := byName["ProcTurboMode"]
	if code != http.StatusOK || turbo["value"] != "Enabled" || turbo["attribute_type"] != "Enumeration" || turbo["reset_required"] != true ||
		turbo["read_only"] != false || len(turbo["allowable_values"].([]any)) != 2 {
		t.Fatalf("ProcTurboMode in detail: %d %v", code, turbo)
	}
	if r := byName["NetworkBootRetries"]; r["value"] != "3" || r["lower_bound"] != float64(0) || r["upper_bound"] != float64(10) {
		t.Fatalf("NetworkBootRetries in detail: %v", r)
	}
	if s := byName["SerialNumber"]; s["read_only"] != true || s["unique"] != true || s["max_length"] != float64(64) {
		t.Fatalf("SerialNumber in detail: %v", s)
	}
	if byName["SriovGlobalEnable"]["value"] != "False" {
		t.Fatalf("a boolean is shown as Ironic's str(): %v", byName["SriovGlobalEnable"])
	}
	// gophercloud, Metal3's client, reads the same list as HostFirmwareSettings does.
	gc := gopherClient(t, srv, "1.74")
	gs, err := nodes.ListBIOSSettings(context.Background(), gc, uuid, nodes.ListBIOSSettingsOpts{Detail: true}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	var gRetries *nodes.BIOSSetting
	for i := range gs {
		if gs[i].Name == "NetworkBootRetries" {
			gRetries = &gs[i]
		}
	}
	if len(gs) != 9 || gRetries == nil || gRetries.AttributeType != "Integer" || gRetries.UpperBound == nil || *gRetries.UpperBound != 10 ||
		gRetries.ResetRequired == nil || !*gRetries.ResetRequired {
		t.Fatalf("gophercloud's BIOS settings: %+v", gs)
	}
	code, body = versioned(t, srv.URL(), "1.74", "GET", "/v1/nodes/rf-bios/bios/ProcTurboMode", nil)
	if one, _ := body["ProcTurboMode"].(map[string]any); code != http.StatusOK || one["attribute_type"] != "Enumeration" {
		t.Fatalf("one setting: %d %v", code, body)
	}
	code, body = versioned(t, srv.URL(), "1.74", "GET", "/v1/nodes/rf-bios/bios/Nope", nil)
	if code != http.StatusNotFound || !strings.Contains(body["error_message"].(string), "doesn't have a BIOS setting 'Nope'") {
		t.Fatalf("unknown setting: %d %v", code, body)
	}

	clean := func(steps []map[string]any, disableRamdisk bool) (int, map[string]any) {
		body := map[string]any{"target": "clean", "clean_steps": steps}
		if disableRamdisk {
			body["disable_ramdisk"] = true
		}
		code, _, out := c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", body)
		return code, out
	}
	apply := func(settings ...map[string]any) []map[string]any {
		list := make([]any, len(settings))
		for i, s := range settings {
			list[i] = s
		}
		return []map[string]any{{"interface": "bios", "step": "apply_configuration", "args": map[string]any{"settings": list}}}
	}
	for _, bad := range []struct {
		steps []map[string]any
		want  string
	}{
		{apply(map[string]any{"name": "NoSuchSetting", "value": "x"}), "NoSuchSetting is not a BIOS setting"},
		{apply(map[string]any{"name": "SerialNumber", "value": "x"}), "SerialNumber: the setting is read-only"},
		{apply(map[string]any{"name": "NetworkBootRetries", "value": "11"}), "above the upper bound 10"},
		{apply(map[string]any{"name": "ProcTurboMode", "value": "Sometimes"}), "not one of the allowed values"},
		{apply(map[string]any{"name": "ProcTurboMode"}), "setting 0 must be"},
		{[]map[string]any{{"interface": "bios", "step": "apply_configuration", "args": map[string]any{}}}, "needs the argument"},
		{[]map[string]any{{"interface": "deploy", "step": "erase_devices"}}, "needs the deploy ramdisk"},
	} {
		code, out := clean(bad.steps, true)
		msg, _ := out["error_message"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, bad.want) {
			t.Errorf("clean %v: %d %v, want 400 with %q", bad.steps, code, out, bad.want)
		}
	}
	if p := m.PendingAttributes(); len(p) != 0 || m.On() {
		t.Fatalf("refused cleans touched the BMC: pending %v, on %v", p, m.On())
	}
	c.waitState(uuid, "manageable")

	start := time.Now()
	if code, out := clean(apply(map[string]any{"name": "ProcTurboMode", "value": "Disabled"}, map[string]any{"name": "NetworkBootRetries", "value": "7"},
		map[string]any{"name": "SriovGlobalEnable", "value": "true"}), true); code != http.StatusAccepted {
		t.Fatalf("clean: %d %v", code, out)
	}
	c.waitState(uuid, "manageable")
	t.Logf("apply_configuration clean took %v", time.Since(start).Round(time.Millisecond))
	if a := m.Attributes(); a["ProcTurboMode"] != "Disabled" || a["NetworkBootRetries"] != 7 || a["SriovGlobalEnable"] != true {
		t.Fatalf("machine's BIOS after the clean: %v", a)
	}
	if m.On() {
		t.Fatal("the node was off before the clean and is on after it")
	}
	_, body = versioned(t, srv.URL(), "1.74", "GET", "/v1/nodes/rf-bios/bios/NetworkBootRetries", nil)
	if one := body["NetworkBootRetries"].(map[string]any); one["value"] != "7" || one["updated_at"] == nil {
		t.Fatalf("cached setting after the clean: %v", one)
	}
	_, _, n = c.do("GET", "/v1/nodes/"+uuid, nil)
	if n["last_error"] != nil || len(n["clean_step"].(map[string]any)) != 0 {
		t.Fatalf("node after the clean: last_error %v, clean_step %v", n["last_error"], n["clean_step"])
	}

	if code, out := clean([]map[string]any{{"interface": "bios", "step": "factory_reset"}}, true); code != http.StatusAccepted {
		t.Fatalf("factory_reset: %d %v", code, out)
	}
	c.waitState(uuid, "manageable")
	if a := m.Attributes(); a["ProcTurboMode"] != "Enabled" || a["NetworkBootRetries"] != 3 {
		t.Fatalf("machine's BIOS after factory_reset: %v", a)
	}
	_, body = versioned(t, srv.URL(), "1.74", "GET", "/v1/nodes/rf-bios/bios/ProcTurboMode", nil)
	if one := body["ProcTurboMode"].(map[string]any); one["value"] != "Enabled" {
		t.Fatalf("cached setting after factory_reset: %v", one)
	}
}

// fastBMCPoll polls the BMC work that steps wait on every 200 ms.
func fastBMCPoll(c *server.Config) {
	c.BMCPollInterval = server.Duration{Duration: 200 * time.Millisecond}
}
