package vbmc

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRedfishHTTPBootURI: a UEFI machine offers UefiHttp and takes HttpBootUri on PATCH
// (null clears it); refusals change nothing: a Legacy machine, no URI, a URI that is not
// http(s), a URI that is not a string. A power-on with a URI the BMC cannot fetch fails.
func TestRedfishHTTPBootURI(t *testing.T) {
	uefi := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm", "-bios", "OVMF.fd"})
	legacy := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	isos := isoServer(t)
	call := func(v *VBMC, method, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, v.RedfishURL+"/redfish/v1/Systems/vm1", strings.NewReader(body))
		req.SetBasicAuth("admin", "password")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var doc map[string]any
		json.Unmarshal(b, &doc)
		return resp.StatusCode, doc
	}
	targets := func(v *VBMC) string {
		_, doc := call(v, "GET", "")
		b, _ := json.Marshal(doc["Boot"].(map[string]any)["BootSourceOverrideTarget@Redfish.AllowableValues"])
		return string(b)
	}
	if got := targets(uefi); !strings.Contains(got, `"UefiHttp"`) {
		t.Errorf("UEFI machine's targets: %s", got)
	}
	if got := targets(legacy); strings.Contains(got, `"UefiHttp"`) {
		t.Errorf("Legacy machine's targets: %s", got)
	}
	m := uefi.Machine("vm1")
	for _, c := range []struct{ name, body string }{
		{"no uri", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Once"}}`},
		{"ftp", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","HttpBootUri":"ftp://10.0.0.1/a.iso"}}`},
		{"number", `{"Boot":{"HttpBootUri":5}}`},
		{"legacy mode", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideMode":"Legacy","HttpBootUri":"http://127.0.0.1/a.iso"}}`},
	} {
		if st, _ := call(uefi, "PATCH", c.body); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", c.name, st)
		}
		if dev, _ := m.Boot(); dev != BootDisk || m.HTTPBootURI() != "" || m.BootMode() != ModeUEFI {
			t.Fatalf("%s changed the machine: boot %s, uri %q, mode %s", c.name, dev, m.HTTPBootURI(), m.BootMode())
		}
	}
	if st, _ := call(legacy, "PATCH", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","HttpBootUri":"http://127.0.0.1/a.iso"}}`); st != http.StatusBadRequest {
		t.Errorf("UefiHttp on a Legacy machine: %d", st)
	}

	if st, _ := call(uefi, "PATCH", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI","HttpBootUri":"`+isos+`/missing.iso"}}`); st != http.StatusNoContent {
		t.Fatalf("PATCH UefiHttp: %d", st)
	}
	_, doc := call(uefi, "GET", "")
	boot := doc["Boot"].(map[string]any)
	if boot["BootSourceOverrideTarget"] != "UefiHttp" || boot["HttpBootUri"] != isos+"/missing.iso" || boot["BootSourceOverrideEnabled"] != "Once" {
		t.Fatalf("Boot after PATCH: %v", boot)
	}
	if err := m.PowerOn(); err == nil || !strings.Contains(err.Error(), "404") {
		m.PowerOff()
		t.Fatalf("power-on with an image that is not there: %v", err)
	}
	if m.On() {
		t.Fatal("the machine runs with nothing to boot")
	}
	if st, _ := call(uefi, "PATCH", `{"Boot":{"HttpBootUri":null}}`); st != http.StatusNoContent || m.HTTPBootURI() != "" {
		t.Fatalf("clear: %d, uri %q", st, m.HTTPBootURI())
	}
	if _, doc := call(uefi, "GET", ""); doc["Boot"].(map[string]any)["HttpBootUri"] != nil {
		t.Fatalf("HttpBootUri after clearing: %v", doc["Boot"])
	}
}
