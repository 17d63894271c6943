package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/configdrive"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// TestVirtualMediaAPI drives POST/GET/DELETE /v1/nodes/{node}/vmedia (1.89, 1.93) against a
// redfish node whose BMC is the virtual BMC: Ironic's schema refusals, the microversion
// gates, an attach the BMC downloads, one it cannot, and a detach.
func TestVirtualMediaAPI(t *testing.T) {
	target := sqlstoretest.Targets()[0]
	srv := startServer(t, target.DSN(t))
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	iso, _ := configdrive.ISO("TEST", []configdrive.File{{Path: "pad", Data: make([]byte, 40<<10)}})
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/data.iso" {
			http.NotFound(w, r)
			return
		}
		w.Write(iso)
	}))
	t.Cleanup(images.Close)

	call := func(method, path, version string, body any) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL()+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-OpenStack-Ironic-API-Version", version)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	st, body := call("POST", "/v1/nodes", "1.89", map[string]any{"name": "vm-node", "driver": "redfish", "driver_info": map[string]any{
		"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1", "redfish_username": "admin", "redfish_password": "password"}})
	if st != 201 {
		t.Fatalf("create node: %d %s", st, body)
	}
	path := "/v1/nodes/vm-node/vmedia"
	good := map[string]any{"device_type": "cdrom", "image_url": images.URL + "/data.iso", "image_download_source": "http"}

	for _, c := range []struct {
		method, version string
		body            any
		status          int
		want            string
	}{
		{"POST", "1.88", good, 404, ""},
		{"DELETE", "1.88", nil, 404, ""},
		{"GET", "1.92", nil, 404, ""},
		{"POST", "1.89", map[string]any{"image_url": "http://x/y.iso"}, 400, "Schema error for vmedia: 'device_type' is a required property"},
		{"POST", "1.89", map[string]any{"device_type": "cdrom"}, 400, "'image_url' is a required property"},
		{"POST", "1.89", map[string]any{"device_type": "dvd", "image_url": "http://x/y.iso"}, 400, "'dvd' is not one of ['disk', 'cdrom', 'floppy']"},
		{"POST", "1.89", map[string]any{"device_type": "cdrom", "image_url": "http://x/y.iso", "image_download_source": "ftp"}, 400, "'ftp' is not one of ['http', 'local', 'swift']"},
		{"POST", "1.89", map[string]any{"device_type": "cdrom", "image_url": "http://x/y.iso", "user": "u"}, 400, "Additional properties are not allowed ('user' was unexpected)"},
		{"POST", "1.89", map[string]any{"device_type": "cdrom", "image_url": 5}, 400, "5 is not of type 'string'"},
		{"POST", "1.89", map[string]any{"device_type": "cdrom", "image_url": "ftp://x/y.iso"}, 400, "Unsupported or missing URL scheme: ftp"},
		{"POST", "1.89", map[string]any{"device_type": "floppy", "image_url": "http://x/y.img"}, 400, "floppy is not supported"},
		{"DELETE", "1.89", nil, 204, ""},
	} {
		p := path
		if c.method == "DELETE" && c.version == "1.89" {
			p += "?device_types=cdrom"
		}
		st, body := call(c.method, p, c.version, c.body)
		if st != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s at %s with %v: %d %s; want %d %q", c.method, p, c.version, c.body, st, body, c.status, c.want)
		}
	}
	if st, body := call("DELETE", path+"?device_types=cdrom,tape", "1.89", nil); st != 400 || !strings.Contains(body, "Invalid device type(s) tape (valid are disk, cdrom, floppy)") {
		t.Errorf("detach of an unknown device type: %d %s", st, body)
	}

	if st, body := call("POST", path, "1.89", good); st != 204 {
		t.Fatalf("attach: %d %s", st, body)
	}
	if got := v.Machine("vm1").Media(); got != images.URL+"/data.iso" {
		t.Fatalf("the BMC's CD holds %q", got)
	}
	st, body = call("GET", path, "1.93", nil)
	var devs []map[string]any
	if st != 200 || json.Unmarshal([]byte(body), &devs) != nil || len(devs) != 1 || devs[0]["inserted"] != true || devs[0]["image"] != images.URL+"/data.iso" {
		t.Fatalf("list after attach: %d %s", st, body)
	}
	if st, body := call("DELETE", path, "1.89", nil); st != 204 || v.Machine("vm1").Media() != "" {
		t.Fatalf("detach: %d %s; CD holds %q", st, body, v.Machine("vm1").Media())
	}
	// An image the BMC cannot fetch: the BMC's reason, in the answer and in last_error.
	bad := map[string]any{"device_type": "cdrom", "image_url": images.URL + "/missing.iso"}
	if st, body := call("POST", path, "1.89", bad); st != 400 || !strings.Contains(body, "Could not attach device cdrom") || !strings.Contains(body, "404") {
		t.Fatalf("attach of a missing image: %d %s", st, body)
	}
	if _, body := call("GET", "/v1/nodes/vm-node", "1.89", nil); !strings.Contains(body, "Could not attach device cdrom") {
		t.Errorf("last_error after the failed attach: %s", body)
	}
	if st, body = call("GET", path, "1.93", nil); st != 200 || !strings.Contains(body, `"inserted":false`) {
		t.Errorf("list after the failed attach: %d %s", st, body)
	}
}
