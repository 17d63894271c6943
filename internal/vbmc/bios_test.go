package vbmc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// redfishDo sends one request to the vbmc's Redfish service and decodes a JSON answer.
func redfishDo(t *testing.T, v *VBMC, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, v.RedfishURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "password")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode, doc
}

// TestBIOSSettingsApplyOnReset: a PATCH of Bios/Settings is checked against the registry as a
// whole (one bad attribute refuses all), good attributes stay pending until the machine
// starts, and ResetBios restores the defaults at the next start.
func TestBIOSSettingsApplyOnReset(t *testing.T) {
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	m := v.Machine("vm1")
	const bios = "/redfish/v1/Systems/vm1/Bios"
	st, doc := redfishDo(t, v, http.MethodGet, bios, "")
	if st != http.StatusOK || doc["AttributeRegistry"] != BIOSRegistryID {
		t.Fatalf("GET Bios: %d %v", st, doc)
	}
	attrs := doc["Attributes"].(map[string]any)
	if attrs["ProcTurboMode"] != "Enabled" || attrs["SerialNumber"] != "VBMC-vm1" || attrs["NetworkBootRetries"] != float64(3) {
		t.Fatalf("default attributes: %v", attrs)
	}
	settings := doc["@Redfish.Settings"].(map[string]any)["SettingsObject"].(map[string]any)["@odata.id"]
	if settings != bios+"/Settings" {
		t.Fatalf("settings object %v", settings)
	}
	for _, bad := range []struct{ body, msg string }{
		{`{"Attributes": {"NoSuchThing": "x", "ProcTurboMode": "Disabled"}}`, "PropertyUnknown"},
		{`{"Attributes": {"SerialNumber": "x"}}`, "PropertyNotWritable"},
		{`{"Attributes": {"ProcTurboMode": "Sometimes"}}`, "PropertyValueNotInList"},
		{`{"Attributes": {"NetworkBootRetries": 11}}`, "PropertyValueOutOfRange"},
		{`{"Attributes": {"NetworkBootRetries": "4"}}`, "PropertyValueTypeError"},
		{`{"Attributes": {"AdminPhone": "` + strings.Repeat("9", 33) + `"}}`, "PropertyValueFormatError"},
		{`{"Attributes": {}}`, "names no Attributes"},
		{`{"Attributes": `, "malformed JSON"},
	} {
		st, doc := redfishDo(t, v, http.MethodPatch, bios+"/Settings", bad.body)
		if raw, _ := json.Marshal(doc); st != http.StatusBadRequest || !strings.Contains(string(raw), bad.msg) {
			t.Errorf("PATCH %s: %d %s, want 400 with %s", bad.body, st, raw, bad.msg)
		}
	}
	if p := m.PendingAttributes(); len(p) != 0 {
		t.Fatalf("refused PATCHes left pending attributes %v", p)
	}
	st, _ = redfishDo(t, v, http.MethodPatch, bios+"/Settings", `{"Attributes": {"ProcTurboMode": "Disabled", "NetworkBootRetries": 7, "SriovGlobalEnable": true}}`)
	if st != http.StatusNoContent {
		t.Fatalf("PATCH: %d", st)
	}
	_, doc = redfishDo(t, v, http.MethodGet, bios+"/Settings", "")
	if a := doc["Attributes"].(map[string]any); a["ProcTurboMode"] != "Disabled" || a["NetworkBootRetries"] != float64(7) {
		t.Fatalf("pending settings: %v", a)
	}
	if a := m.Attributes(); a["ProcTurboMode"] != "Enabled" {
		t.Fatalf("applied before a reset: %v", a)
	}
	if st, _ := redfishDo(t, v, http.MethodPost, "/redfish/v1/Systems/vm1/Actions/ComputerSystem.Reset", `{"ResetType": "On"}`); st != http.StatusNoContent {
		t.Fatalf("power on: %d", st)
	}
	if a := m.Attributes(); a["ProcTurboMode"] != "Disabled" || a["NetworkBootRetries"] != 7 || a["SriovGlobalEnable"] != true {
		t.Fatalf("after power on: %v", a)
	}
	if p := m.PendingAttributes(); len(p) != 0 {
		t.Fatalf("still pending after power on: %v", p)
	}
	if st, _ := redfishDo(t, v, http.MethodPost, bios+"/Actions/Bios.ResetBios", `{}`); st != http.StatusNoContent {
		t.Fatalf("ResetBios: %d", st)
	}
	if _, doc := redfishDo(t, v, http.MethodGet, bios, ""); doc["ResetBiosToDefaultsPending"] != true {
		t.Fatalf("reset not pending: %v", doc)
	}
	if st, _ := redfishDo(t, v, http.MethodPost, "/redfish/v1/Systems/vm1/Actions/ComputerSystem.Reset", `{"ResetType": "ForceRestart"}`); st != http.StatusNoContent {
		t.Fatalf("restart: %d", st)
	}
	if a := m.Attributes(); a["ProcTurboMode"] != "Enabled" || a["NetworkBootRetries"] != 3 || a["SriovGlobalEnable"] != false {
		t.Fatalf("after reset to defaults: %v", a)
	}
	if st, _ := redfishDo(t, v, http.MethodDelete, bios, ""); st != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE Bios: %d", st)
	}
}

// TestSushyBIOS has sushy (Ironic's Redfish client) read the BIOS, its attribute registry
// (through its MessageRegistryFile, as Ironic's redfish bios interface does) and set
// pending attributes.
func TestSushyBIOS(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import sushy").Run(); err != nil {
		t.Fatal("python3-sushy is not installed: scripts/deps.sh installs it")
	}
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	script := fmt.Sprintf(`
import sushy
s = sushy.Sushy(%q, username="admin", password="password")
sys = s.get_system("/redfish/v1/Systems/vm1")
b = sys.bios
print("turbo", b.attributes["ProcTurboMode"])
# Debian's sushy lacks its standard message registries, so the registry file is read
# directly, as sushy's registries collection would find it from the service root.
from sushy.resources.registry import message_registry_file as mrf
f = mrf.MessageRegistryFile(s._conn, "/redfish/v1/Registries/" + b._attribute_registry, redfish_version=s.redfish_version)
reg = f.get_attribute_registry("en", None)
for a in reg.registry_entries.attributes:
    if a.name in ("ProcTurboMode", "NetworkBootRetries", "SerialNumber"):
        print("entry", a.name, a.attribute_type, a.read_only, a.reset_required, a.lower_bound, a.upper_bound, [x["ValueName"] for x in (a.allowable_values or [])])
b.set_attributes({"ProcTurboMode": "Disabled"})
b.refresh()
print("pending", b.pending_attributes.get("ProcTurboMode"))
`, v.RedfishURL+"/redfish/v1")
	out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sushy: %v\n%s", err, out)
	}
	for _, want := range []string{"turbo Enabled", "entry ProcTurboMode Enumeration False True None None ['Enabled', 'Disabled']",
		"entry NetworkBootRetries Integer False True 0 10 []", "entry SerialNumber String True False None None []", "pending Disabled"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sushy's output lacks %q:\n%s", want, out)
		}
	}
}

// FuzzBIOSSettings sends arbitrary PATCH bodies to Bios/Settings: never a server error, and
// a refused PATCH leaves nothing pending.
func FuzzBIOSSettings(f *testing.F) {
	f.Add([]byte(`{"Attributes": {"ProcTurboMode": "Disabled"}}`))
	f.Add([]byte(`{"Attributes": {"NetworkBootRetries": 1e300}}`))
	f.Add([]byte(`{"Attributes": {"SerialNumber": null, "AdminPhone": 7}}`))
	f.Add([]byte(`{"Attributes": []}`))
	v, err := Start(Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0",
		Machines: []MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go v.Serve(ctx)
	defer func() { cancel(); v.Close() }()
	f.Fuzz(func(t *testing.T, body []byte) {
		m := v.Machine("vm1")
		before := len(m.PendingAttributes())
		req, _ := http.NewRequest(http.MethodPatch, v.RedfishURL+"/redfish/v1/Systems/vm1/Bios/Settings", bytes.NewReader(body))
		req.SetBasicAuth("admin", "password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("PATCH %q: status %d", body, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusBadRequest && len(m.PendingAttributes()) != before {
			t.Fatalf("refused PATCH %q changed the pending attributes", body)
		}
	})
}
