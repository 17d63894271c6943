package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// firmwareImages serves the virtual BMC's firmware images on loopback.
func firmwareImages(t *testing.T) (string, map[string]string) {
	t.Helper()
	images := map[string]string{
		"/bios-2.1.0.bin": "ironwork-firmware BIOS 2.1.0\n" + strings.Repeat("b", 1000),
		"/bios-2.2.0.bin": "ironwork-firmware BIOS 2.2.0\n" + strings.Repeat("c", 1000),
		"/bmc-1.5.0.bin":  "ironwork-firmware BMC 1.5.0\n" + strings.Repeat("m", 1000),
		"/garbage.bin":    "not firmware\n",
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

// TestFirmwareAndServicingThroughTheAPI drives the redfish firmware interface against
// `ironwork vbmc` (its updates run as Redfish tasks): components are recorded when the node
// is managed and shown at /firmware (1.86); a manual clean with disable_ramdisk whose image
// fails its checksum fails before the BMC is asked; one that passes updates the BIOS and BMC,
// tracked to the end of their tasks. Then the node, made active, is serviced (1.87) with
// BIOS settings and a firmware update; a service step whose image the BMC refuses ends in
// "service failed" with the BMC's message, and abort returns the node to active.
func TestFirmwareAndServicingThroughTheAPI(t *testing.T) {
	const password = "Firmware-S3cret-pw"
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: password, RedfishListen: "127.0.0.1:0", UpdateSeconds: 0.2,
		Machines: []vbmc.MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stopVBMC := context.WithCancel(context.Background())
	vdone := make(chan struct{})
	go func() { v.Serve(vctx); close(vdone) }()
	t.Cleanup(func() { stopVBMC(); v.Close(); <-vdone })
	m := v.Machine("vm1")
	fw, sums := firmwareImages(t)
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "ironwork.db")
	srv := startServer(t, dsn, fastBMCPoll)
	c := apiClient{t: t, base: srv.URL(), version: "1.108"}
	code, _, n := c.do("POST", "/v1/nodes", map[string]any{"name": "rf-fw", "driver": "redfish", "firmware_interface": "redfish",
		"driver_info": map[string]any{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": password}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, n)
	}
	uuid := n["uuid"].(string)
	c.provision(uuid, "manage")
	c.waitState(uuid, "manageable")

	firmware := func() map[string]map[string]any {
		t.Helper()
		code, body := versioned(t, srv.URL(), "1.86", "GET", "/v1/nodes/rf-fw/firmware", nil)
		if code != http.StatusOK {
			t.Fatalf("firmware: %d %v", code, body)
		}
		out := map[string]map[string]any{}
		for _, item := range body["firmware"].([]any) {
			out[item.(map[string]any)["component"].(string)] = item.(map[string]any)
		}
		return out
	}
	if code, _ := versioned(t, srv.URL(), "1.85", "GET", "/v1/nodes/rf-fw/firmware", nil); code != http.StatusNotFound {
		t.Fatalf("firmware at 1.85: %d", code)
	}
	got := firmware()
	if b := got["bios"]; b["current_version"] != "1.0.0" || b["initial_version"] != "1.0.0" || b["last_version_flashed"] != nil || got["bmc"]["current_version"] != "1.0.0" {
		t.Fatalf("firmware after manage: %v", got)
	}
	if _, ok := got["bios"]["vendor"]; ok {
		t.Fatalf("vendor shown before 1.114: %v", got["bios"])
	}
	// 1.114: each component's vendor, model and serial number, as the BMC's System and
	// Manager report them.
	code, body := versioned(t, srv.URL(), "1.114", "GET", "/v1/nodes/rf-fw/firmware", nil)
	if code != http.StatusOK {
		t.Fatalf("firmware at 1.114: %d %v", code, body)
	}
	ident := map[string][3]any{}
	for _, item := range body["firmware"].([]any) {
		c := item.(map[string]any)
		ident[c["component"].(string)] = [3]any{c["vendor"], c["model"], c["serial_number"]}
	}
	if ident["bios"] != [3]any{"Ironwork", "vbmc virtual machine", "VBMC-vm1"} || ident["bmc"] != [3]any{"Ironwork", "vbmc", "VBMC-BMC-vm1"} {
		t.Fatalf("firmware identity at 1.114: %v", ident)
	}
	if code, body := versioned(t, srv.URL(), "1.113", "GET", "/v1/nodes/rf-fw/firmware?fields=vendor", nil); code != http.StatusBadRequest {
		t.Fatalf("?fields=vendor at 1.113: %d %v", code, body)
	}
	if code, body := versioned(t, srv.URL(), "1.114", "GET", "/v1/nodes/rf-fw/firmware?fields=component,serial_number", nil); code != http.StatusOK ||
		len(body["firmware"].([]any)[0].(map[string]any)) != 4 {
		t.Fatalf("?fields=component,serial_number at 1.114: %d %v", code, body)
	}

	update := func(settings ...map[string]any) map[string]any {
		list := make([]any, len(settings))
		for i, s := range settings {
			list[i] = s
		}
		return map[string]any{"interface": "firmware", "step": "update", "args": map[string]any{"settings": list}}
	}
	run := func(target, stepsKey string, steps ...map[string]any) (int, map[string]any) {
		// disable_ramdisk with service needs 1.108.
		return versioned(t, srv.URL(), "1.108", "PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target, stepsKey: steps, "disable_ramdisk": true})
	}
	if code, out := run("clean", "clean_steps", update(map[string]any{"component": "bios"})); code != http.StatusBadRequest ||
		!strings.Contains(out["error_message"].(string), "is not an http(s) URL") {
		t.Fatalf("update without url: %d %v", code, out)
	}
	if code, out := run("clean", "clean_steps", update(map[string]any{"component": "bios", "url": fw + "/bios-2.1.0.bin", "checksum": "sha256:" + sums["/bmc-1.5.0.bin"]})); code != http.StatusAccepted {
		t.Fatalf("clean: %d %v", code, out)
	}
	c.waitState(uuid, "clean failed")
	_, _, n = c.do("GET", "/v1/nodes/"+uuid, nil)
	if msg, _ := n["last_error"].(string); !strings.Contains(msg, "checksum mismatch") {
		t.Fatalf("last_error after a bad checksum: %v", n["last_error"])
	}
	if m.Firmware()["BIOS"] != "1.0.0" {
		t.Fatal("a bad checksum reached the BMC")
	}
	c.provision(uuid, "manage")
	c.waitState(uuid, "manageable")

	start := time.Now()
	if code, out := run("clean", "clean_steps", update(map[string]any{"component": "bios", "url": fw + "/bios-2.1.0.bin", "checksum": sums["/bios-2.1.0.bin"]},
		map[string]any{"component": "bmc", "url": fw + "/bmc-1.5.0.bin", "wait": 0})); code != http.StatusAccepted {
		t.Fatalf("clean: %d %v", code, out)
	}
	c.waitState(uuid, "manageable")
	t.Logf("firmware.update clean of two components took %v", time.Since(start).Round(time.Millisecond))
	if fv := m.Firmware(); fv["BIOS"] != "2.1.0" || fv["BMC"] != "1.5.0" {
		t.Fatalf("machine firmware after the clean: %v", fv)
	}
	got = firmware()
	if b := got["bios"]; b["current_version"] != "2.1.0" || b["initial_version"] != "1.0.0" || b["last_version_flashed"] != "2.1.0" || b["updated_at"] == nil {
		t.Fatalf("bios after the clean: %v", b)
	}
	if b := got["bmc"]; b["current_version"] != "1.5.0" || b["last_version_flashed"] != "1.5.0" {
		t.Fatalf("bmc after the clean: %v", b)
	}
	// gophercloud, Metal3's client, reads the same list as HostFirmwareComponents does.
	comps, err := nodes.ListFirmware(context.Background(), gopherClient(t, srv, "1.86"), uuid).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) != 2 || comps[0].Component != "bios" || comps[0].CurrentVersion != "2.1.0" || comps[0].InitialVersion != "1.0.0" ||
		comps[0].LastVersionFlashed != "2.1.0" || comps[0].UpdatedAt == nil {
		t.Fatalf("gophercloud's firmware components: %+v", comps)
	}

	// Servicing needs an active node: this one is made active as a deployed node would be.
	store, err := sqlstore.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.UpdateNode(context.Background(), uuid, func(n *ironwork.Node) error {
		n.ProvisionState = ironwork.Active
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	// disable_ramdisk with service takes 1.108; below it Ironic answers 406.
	serviceSteps := []map[string]any{
		{"interface": "bios", "step": "apply_configuration", "args": map[string]any{"settings": []any{map[string]any{"name": "ProcVirtualization", "value": "Disabled"}}}},
		update(map[string]any{"component": "bios", "url": fw + "/bios-2.2.0.bin"})}
	serviceBody := map[string]any{"target": "service", "service_steps": serviceSteps, "disable_ramdisk": true}
	if code, out := versioned(t, srv.URL(), "1.107", "PUT", "/v1/nodes/"+uuid+"/states/provision", serviceBody); code != http.StatusNotAcceptable {
		t.Fatalf("service with disable_ramdisk at 1.107: %d %v", code, out)
	}
	if code, out := versioned(t, srv.URL(), "1.108", "PUT", "/v1/nodes/"+uuid+"/states/provision", serviceBody); code != http.StatusAccepted {
		t.Fatalf("service: %d %v", code, out)
	}
	c.waitState(uuid, "active")
	t.Logf("servicing (bios + firmware) took %v", time.Since(start).Round(time.Millisecond))
	if m.Attributes()["ProcVirtualization"] != "Disabled" || m.Firmware()["BIOS"] != "2.2.0" {
		t.Fatalf("after servicing: bios %v, firmware %v", m.Attributes(), m.Firmware())
	}
	if b := firmware()["bios"]; b["current_version"] != "2.2.0" || b["last_version_flashed"] != "2.2.0" {
		t.Fatalf("bios firmware after servicing: %v", b)
	}
	_, _, n = c.do("GET", "/v1/nodes/"+uuid, nil)
	if n["last_error"] != nil || len(n["service_step"].(map[string]any)) != 0 {
		t.Fatalf("node after servicing: last_error %v, service_step %v", n["last_error"], n["service_step"])
	}

	if code, out := run("service", "service_steps", update(map[string]any{"component": "bios", "url": fw + "/garbage.bin"})); code != http.StatusAccepted {
		t.Fatalf("service: %d %v", code, out)
	}
	c.waitState(uuid, "service failed")
	_, _, n = c.do("GET", "/v1/nodes/"+uuid, nil)
	if msg, _ := n["last_error"].(string); !strings.Contains(msg, "ended in Exception") || !strings.Contains(msg, "is not a firmware image") {
		t.Fatalf("last_error after a refused image: %v", n["last_error"])
	}
	if m.Firmware()["BIOS"] != "2.2.0" {
		t.Fatal("a refused image changed the version")
	}
	c.provision(uuid, "abort")
	c.waitState(uuid, "active")
}
