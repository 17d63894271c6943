package vbmc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// firmwareServer serves firmware images on loopback: /bios-2.1.0.bin is a BIOS image,
// /garbage.bin is not an image.
func firmwareServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bios-2.1.0.bin":
			w.Write([]byte("ironwork-firmware BIOS 2.1.0\n" + strings.Repeat("\x00", 4096)))
		case "/garbage.bin":
			w.Write([]byte("MZ this is not firmware\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitTask polls a task monitor until it answers 200, and returns the task.
func waitTask(t *testing.T, v *VBMC, monitor string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	polls := 0
	for {
		st, doc := redfishDo(t, v, http.MethodGet, monitor, "")
		polls++
		if st == http.StatusOK {
			t.Logf("task %v ended %v after %d polls", doc["Id"], doc["TaskState"], polls)
			return doc
		}
		if st != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("task monitor %s: %d %v", monitor, st, doc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSimpleUpdateRunsATask: SimpleUpdate answers 202 with a task monitor, the task runs and
// completes, and the BIOS version changes to the image's in the inventory and the System; a
// bad image ends in Exception with the reason, a refused address or a second update of a
// busy machine are refused at once.
func TestSimpleUpdateRunsATask(t *testing.T) {
	v, err := Start(Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0", UpdateSeconds: 0.3,
		Machines: []MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}},
			{Name: "vm2", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	fw := firmwareServer(t)
	const action = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"

	st, doc := redfishDo(t, v, http.MethodGet, "/redfish/v1/UpdateService/FirmwareInventory", "")
	if st != http.StatusOK || doc["Members@odata.count"] != float64(6) {
		t.Fatalf("inventory: %d %v", st, doc)
	}
	if _, doc := redfishDo(t, v, http.MethodGet, "/redfish/v1/UpdateService/FirmwareInventory/vm1-BIOS", ""); doc["Version"] != "1.0.0" {
		t.Fatalf("BIOS inventory item: %v", doc)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"ImageURI": "` + fw + `/bios-2.1.0.bin"}`, "name one in Targets"},
		{`{"ImageURI": "http://198.51.100.7/bios.bin", "Targets": ["/redfish/v1/Systems/vm1"]}`, "loopback or private"},
		{`{"ImageURI": "` + fw + `/bios-2.1.0.bin", "Targets": ["/redfish/v1/Systems/nope"]}`, "name no system"},
		{`{}`, "needs an ImageURI"},
	} {
		st, doc := redfishDo(t, v, http.MethodPost, action, bad.body)
		if msg, _ := doc["error"].(map[string]any)["message"].(string); st != http.StatusBadRequest || !strings.Contains(msg, bad.want) {
			t.Errorf("SimpleUpdate %s: %d %v, want 400 with %q", bad.body, st, doc, bad.want)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, v.RedfishURL+action, strings.NewReader(`{"ImageURI": "`+fw+`/bios-2.1.0.bin", "Targets": ["/redfish/v1/Systems/vm1"]}`))
	req.SetBasicAuth("admin", "password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	monitor := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || monitor == "" {
		t.Fatalf("SimpleUpdate: %d, Location %q", resp.StatusCode, monitor)
	}
	if st, _ := redfishDo(t, v, http.MethodPost, action, `{"ImageURI": "`+fw+`/bios-2.1.0.bin", "Targets": ["/redfish/v1/Systems/vm1"]}`); st != http.StatusConflict {
		t.Errorf("a second update while one runs: %d", st)
	}
	task := waitTask(t, v, monitor)
	if task["TaskState"] != "Completed" || task["PercentComplete"] != float64(100) {
		t.Fatalf("task: %v", task)
	}
	if fwv := v.Machine("vm1").Firmware(); fwv["BIOS"] != "2.1.0" || fwv["BMC"] != "1.0.0" {
		t.Fatalf("versions after the update: %v", fwv)
	}
	if _, doc := redfishDo(t, v, http.MethodGet, "/redfish/v1/Systems/vm1", ""); doc["BiosVersion"] != "2.1.0" {
		t.Fatalf("System BiosVersion: %v", doc["BiosVersion"])
	}
	if v.Machine("vm2").Firmware()["BIOS"] != "1.0.0" {
		t.Fatal("the update changed the other machine")
	}

	_, doc = redfishDo(t, v, http.MethodPost, action, `{"ImageURI": "`+fw+`/garbage.bin", "Targets": ["/redfish/v1/Systems/vm2"]}`)
	task = waitTask(t, v, doc["TaskMonitor"].(string))
	msgs, _ := task["Messages"].([]any)
	if task["TaskState"] != "Exception" || len(msgs) != 1 || !strings.Contains(msgs[0].(map[string]any)["Message"].(string), "is not a firmware image") {
		t.Fatalf("bad image task: %v", task)
	}
	_, doc = redfishDo(t, v, http.MethodPost, action, `{"ImageURI": "`+fw+`/missing.bin", "Targets": ["/redfish/v1/Systems/vm2"]}`)
	if task = waitTask(t, v, doc["TaskMonitor"].(string)); task["TaskState"] != "Exception" {
		t.Fatalf("missing image task: %v", task)
	}
	if v.Machine("vm2").Firmware()["BIOS"] != "1.0.0" {
		t.Fatal("a failed update changed the version")
	}
}
