package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// passthruLab is an API server and an in-process `ironwork vbmc` serving one machine (a dummy
// command, no QEMU) over Redfish and IPMI, with a redfish, an ipmi and a fake-hardware node.
type passthruLab struct {
	srv                 *server.Server
	logs                *lockedbuf.Buffer // the server's JSON log
	v                   *vbmc.VBMC
	c                   apiClient
	redfish, ipmi, fake string
}

func newPassthruLab(t *testing.T) *passthruLab {
	const password = "Passthru-S3cret-pw"
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: password, RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{{Name: "vm1", IPMIListen: "127.0.0.1:0", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stop := context.WithCancel(context.Background())
	go v.Serve(vctx)
	t.Cleanup(func() { stop(); v.Close() })
	logs := &lockedbuf.Buffer{}
	srv := startServerLog(t, "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"), slog.New(slog.NewJSONHandler(logs, nil)))
	l := &passthruLab{srv: srv, logs: logs, v: v, c: apiClient{t: t, base: srv.URL()}}
	create := func(body map[string]any) string {
		code, _, n := l.c.do("POST", "/v1/nodes", body)
		if code != http.StatusCreated {
			t.Fatalf("create %v: %d %v", body["name"], code, n)
		}
		return n["uuid"].(string)
	}
	l.redfish = create(map[string]any{"name": "rf", "driver": "redfish", "driver_info": map[string]any{
		"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
		"redfish_username": "admin", "redfish_password": password}})
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	l.ipmi = create(map[string]any{"name": "ipmi", "driver": "ipmi", "driver_info": map[string]any{
		"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": password}})
	l.fake = create(map[string]any{"name": "fake", "driver": "fake-hardware"})
	return l
}

// eventually polls cond (every 20 ms, for at most 20 s) for the effect of async work.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

// TestRedfishSubscriptionsAsMetal3 drives the redfish vendor passthru as Metal3's
// BMCEventSubscription controller does, through gophercloud's calls, against the vbmc's
// EventService: methods, create, get all, get one, delete; bad input is refused with Ironic's
// messages and leaves the BMC's subscriptions as they were.
func TestRedfishSubscriptionsAsMetal3(t *testing.T) {
	l := newPassthruLab(t)
	ctx := context.Background()
	gc := gopherClient(t, l.srv, "1.81")

	methods, err := nodes.GetVendorPassthruMethods(ctx, gc, l.redfish).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if m := methods.CreateSubscription; m.Async || len(m.HTTPMethods) != 1 || m.HTTPMethods[0] != "POST" || !strings.HasPrefix(m.Description, "Creates a subscription") {
		t.Errorf("create_subscription: %+v", m)
	}
	if m := methods.DeleteSubscription; m.HTTPMethods[0] != "DELETE" || m.Async {
		t.Errorf("delete_subscription: %+v", m)
	}
	if methods.GetAllSubscriptions.HTTPMethods[0] != "GET" || methods.GetSubscription.HTTPMethods[0] != "GET" {
		t.Errorf("get methods: %+v", methods)
	}
	sub, err := nodes.CreateSubscription(ctx, gc, l.redfish, nodes.CallVendorPassthruOpts{Method: "create_subscription"}, nodes.CreateSubscriptionOpts{
		Destination: "https://events.example.com/hook", Context: "metal3-host-0", EventTypes: []string{"Alert", "StatusChange"},
		HttpHeaders: []map[string]string{{"Authorization": "Bearer hunter2"}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if sub.Id == "" || sub.Destination != "https://events.example.com/hook" || sub.Context != "metal3-host-0" || sub.Protocol != "Redfish" ||
		strings.Join(sub.EventTypes, ",") != "Alert,StatusChange" {
		t.Errorf("created: %+v", sub)
	}
	// Ironic's defaults: Protocol Redfish, EventTypes [Alert], Context "".
	def, err := nodes.CreateSubscription(ctx, gc, l.redfish, nodes.CallVendorPassthruOpts{Method: "create_subscription"},
		nodes.CreateSubscriptionOpts{Destination: "http://127.0.0.1:9/x"}).Extract()
	if err != nil || strings.Join(def.EventTypes, ",") != "Alert" || def.Protocol != "Redfish" {
		t.Errorf("created with defaults: %+v %v", def, err)
	}
	all, err := nodes.GetAllSubscriptions(ctx, gc, l.redfish, nodes.CallVendorPassthruOpts{Method: "get_all_subscriptions"}).Extract()
	if err != nil || all.MembersCount != 2 || all.Members[0]["@odata.id"] != "/redfish/v1/EventService/Subscriptions/"+sub.Id {
		t.Fatalf("all: %+v %v", all, err)
	}
	got, err := nodes.GetSubscription(ctx, gc, l.redfish, nodes.CallVendorPassthruOpts{Method: "get_subscription"}, nodes.GetSubscriptionOpts{Id: sub.Id}).Extract()
	if err != nil || got.Id != sub.Id || got.Destination != sub.Destination || got.Context != sub.Context {
		t.Errorf("get: %+v %v", got, err)
	}

	// Bad input: Ironic's 400s, and the BMC keeps its two subscriptions.
	for _, tc := range []struct {
		method, query string
		body          any
		status        int
		want          string
	}{
		{"POST", "create_subscription", map[string]any{"Destination": "not a uri"}, 400, "Destination not a uri is not a valid URI"},
		{"POST", "create_subscription", map[string]any{"Destination": "https://x.example/", "EventTypes": []string{"Bogus"}}, 400, "EventTypes [Bogus] is not a valid value, allowed values [StatusChange ResourceUpdated ResourceAdded ResourceRemoved Alert]"},
		{"POST", "create_subscription", map[string]any{"Destination": "https://x.example/", "HttpHeaders": "x"}, 400, "HttpHeaders x is not a list of headers"},
		{"POST", "create_subscription", []string{"x"}, 400, "is not of type 'object'"},
		{"GET", "create_subscription", nil, 400, "The method create_subscription does not support HTTP GET"},
		{"POST", "launch_missiles", map[string]any{}, 400, "No handler for method launch_missiles"},
		{"POST", "", map[string]any{}, 400, "Method not specified"},
		{"DELETE", "delete_subscription", map[string]any{}, 400, "id can't be None"},
		{"DELETE", "delete_subscription", map[string]any{"id": "404"}, 404, "Redfish delete_subscription failed for subscription 404"},
		{"POST", "eject_vmedia", map[string]any{"boot_device": "tape"}, 400, "Boot device tape is not a valid value"},
	} {
		code, msg := pcall(t, l.srv.URL(), tc.method, "/v1/nodes/"+l.redfish+"/vendor_passthru?method="+tc.query, tc.body, "1.81")
		if code != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s %v: %d %s, want %d %q", tc.method, tc.query, tc.body, code, msg, tc.status, tc.want)
		}
	}
	if all, _ := nodes.GetAllSubscriptions(ctx, gc, l.redfish, nodes.CallVendorPassthruOpts{Method: "get_all_subscriptions"}).Extract(); all == nil || all.MembersCount != 2 {
		t.Errorf("after refused calls: %+v", all)
	}
	if err := nodes.DeleteSubscription(ctx, gc, l.redfish, nodes.CallVendorPassthruOpts{Method: "delete_subscription"}, nodes.DeleteSubscriptionOpts{Id: sub.Id}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if all, _ := nodes.GetAllSubscriptions(ctx, gc, l.redfish, nodes.CallVendorPassthruOpts{Method: "get_all_subscriptions"}).Extract(); all == nil || all.MembersCount != 1 {
		t.Errorf("after delete: %+v", all)
	}
	// No secret in the API's answers: the vbmc never shows HttpHeaders' values.
	code, body := pcall(t, l.srv.URL(), "GET", "/v1/nodes/"+l.redfish+"/vendor_passthru?method=get_subscription", map[string]any{"id": def.Id}, "1.81")
	if code != 200 || strings.Contains(body, "hunter2") {
		t.Errorf("get: %d %s", code, body)
	}
}

// rawCall sends a request with a JSON body and returns the status and the body (an error
// body's faultstring).
func pcall(t *testing.T, base, method, path string, body any, version string) (int, string) {
	t.Helper()
	c := apiClient{t: t, base: base}
	code, raw := c.raw(method, path, body, version)
	return code, raw
}

// TestVendorPassthruEjectAndIPMI: eject_vmedia (async, 202) ejects the vbmc's CD; the ipmitool
// vendor's bmc_reset resets the BMC (counted by the vbmc) and not the machine, send_raw sends
// Get Device ID; the fake vendor answers as Ironic's; a no-vendor node and the driver-level
// passthru have no methods.
func TestVendorPassthruEjectAndIPMI(t *testing.T) {
	l := newPassthruLab(t)
	base := l.srv.URL()
	m := l.v.Machine("vm1")
	m.SetMedia("http://127.0.0.1:9/boot.iso", "")
	if code, msg := pcall(t, base, "POST", "/v1/nodes/"+l.redfish+"/vendor_passthru?method=eject_vmedia", map[string]any{"boot_device": "cd"}, "1.81"); code != 202 {
		t.Fatalf("eject_vmedia: %d %s", code, msg)
	}
	eventually(t, "virtual CD ejected", func() bool { return m.Media() == "" })

	code, msg := pcall(t, base, "GET", "/v1/nodes/"+l.ipmi+"/vendor_passthru/methods", nil, "1.81")
	if code != 200 || !strings.Contains(msg, `"bmc_reset":{"http_methods":["POST"],"async":true`) || !strings.Contains(msg, `"send_raw"`) {
		t.Errorf("ipmitool methods: %d %s", code, msg)
	}
	for _, tc := range []struct {
		body   map[string]any
		status int
		want   string
	}{
		{map[string]any{}, 400, "Parameter raw_bytes (string of bytes) was not specified."},
		{map[string]any{"raw_bytes": "0xZZ 0x01"}, 400, `"0xZZ" is not a byte in hex`},
		{map[string]any{"raw_bytes": "0x06"}, 400, "needs a network function and a command"},
	} {
		if code, msg := pcall(t, base, "POST", "/v1/nodes/"+l.ipmi+"/vendor_passthru?method=send_raw", tc.body, "1.81"); code != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("send_raw %v: %d %s", tc.body, code, msg)
		}
	}
	if code, msg := pcall(t, base, "POST", "/v1/nodes/"+l.ipmi+"/vendor_passthru?method=send_raw", map[string]any{"raw_bytes": "0x06 0x01"}, "1.81"); code != 202 {
		t.Errorf("send_raw Get Device ID: %d %s", code, msg)
	}
	waitUnlocked(t, l.c, l.ipmi) // an async method holds the node's lock until it ends, as in Ironic
	// Its answer is logged (Ironic logs it too): completion code OK, then the device ID
	// the vbmc gives (0x20).
	answered := ""
	for _, line := range jsonLines(l.logs) {
		if line["msg"] == "IPMI raw request answered" {
			answered, _ = line["response"].(string)
		}
	}
	if !strings.HasPrefix(answered, "20 ") {
		t.Errorf("send_raw 0x06 0x01 answered %q, want the device ID 0x20 first", answered)
	}
	if code, msg := pcall(t, base, "POST", "/v1/nodes/"+l.ipmi+"/vendor_passthru?method=bmc_reset", map[string]any{"warm": "maybe"}, "1.81"); code != 400 {
		t.Errorf("bmc_reset warm=maybe: %d %s", code, msg)
	}
	for i, warm := range []any{true, "false"} {
		if code, msg := pcall(t, base, "POST", "/v1/nodes/"+l.ipmi+"/vendor_passthru?method=bmc_reset", map[string]any{"warm": warm}, "1.81"); code != 202 {
			t.Fatalf("bmc_reset: %d %s", code, msg)
		}
		eventually(t, fmt.Sprintf("BMC reset %d", i+1), func() bool { return m.BMCResets() == i+1 })
		waitUnlocked(t, l.c, l.ipmi)
	}
	if m.On() {
		t.Error("a BMC reset powered the machine on")
	}

	// The fake vendor, as Ironic's fake-hardware.
	for _, tc := range []struct {
		method string
		body   map[string]any
		status int
		want   string
	}{
		{"third_method_sync", map[string]any{"bar": "meow"}, 200, "true"},
		{"third_method_sync", map[string]any{"bar": "woof"}, 200, "false"},
		{"third_method_sync", map[string]any{}, 400, "Parameter 'bar' not passed to method 'third_method_sync'."},
		{"second_method", map[string]any{"bar": "kazoo"}, 202, "null"},
	} {
		if code, msg := pcall(t, base, "POST", "/v1/nodes/"+l.fake+"/vendor_passthru?method="+tc.method, tc.body, "1.81"); code != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("fake %s %v: %d %s", tc.method, tc.body, code, msg)
		}
	}
	// no-vendor: no methods, every call refused.
	if code, _, n := l.c.do("PATCH", "/v1/nodes/"+l.redfish, []map[string]any{{"op": "replace", "path": "/vendor_interface", "value": "no-vendor"}}); code != 200 {
		t.Fatalf("patch vendor_interface: %d %v", code, n)
	}
	if code, msg := pcall(t, base, "GET", "/v1/nodes/"+l.redfish+"/vendor_passthru/methods", nil, "1.81"); code != 200 || msg != "{}" {
		t.Errorf("no-vendor methods: %d %s", code, msg)
	}
	if code, msg := pcall(t, base, "POST", "/v1/nodes/"+l.redfish+"/vendor_passthru?method=eject_vmedia", nil, "1.81"); code != 400 || !strings.Contains(msg, "No handler for method eject_vmedia") {
		t.Errorf("no-vendor call: %d %s", code, msg)
	}
	// Driver level: no driver-level methods in this build, as in Ironic's redfish and ipmi.
	if code, msg := pcall(t, base, "GET", "/v1/drivers/redfish/vendor_passthru/methods", nil, "1.81"); code != 200 || msg != "{}" {
		t.Errorf("driver methods: %d %s", code, msg)
	}
	if code, msg := pcall(t, base, "POST", "/v1/drivers/ipmi/vendor_passthru?method=send_raw", map[string]any{}, "1.81"); code != 400 || !strings.Contains(msg, "No handler for method send_raw") {
		t.Errorf("driver call: %d %s", code, msg)
	}
	if code, msg := pcall(t, base, "GET", "/v1/drivers/nope/vendor_passthru/methods", nil, "1.81"); code != 404 {
		t.Errorf("unknown driver: %d %s", code, msg)
	}
}

// waitUnlocked waits until an async call's worker has released the node.
func waitUnlocked(t *testing.T, c apiClient, node string) {
	t.Helper()
	eventually(t, "node unlocked", func() bool {
		_, _, n := c.do("GET", "/v1/nodes/"+node, nil)
		return n["reservation"] == nil
	})
}

// TestIndicatorsThroughVBMC lists, reads and sets the LEDs of one vbmc machine through a
// redfish node (system and chassis IndicatorLED) and an ipmi node (chassis identify), and sees
// each protocol's change through the other: the chassis LED is the identify light.
func TestIndicatorsThroughVBMC(t *testing.T) {
	l := newPassthruLab(t)
	base, m := l.srv.URL(), l.v.Machine("vm1")
	if code, _ := pcall(t, base, "GET", "/v1/nodes/"+l.redfish+"/management/indicators", nil, "1.62"); code != 404 {
		t.Errorf("indicators at 1.62: %d", code)
	}
	code, msg := pcall(t, base, "GET", "/v1/nodes/"+l.redfish+"/management/indicators", nil, "1.63")
	if code != 200 {
		t.Fatalf("list: %d %s", code, msg)
	}
	var list struct {
		Indicators []struct {
			Name, Component string
			Readonly        bool
			States          []string
		}
	}
	decodeInto(t, msg, &list)
	byComp := map[string]string{}
	for _, in := range list.Indicators {
		byComp[in.Component] = in.Name
		if in.Readonly || strings.Join(in.States, ",") != "BLINKING,OFF,ON" {
			t.Errorf("indicator %+v", in)
		}
	}
	sysLED, chLED := byComp["system"]+"@system", byComp["chassis"]+"@chassis"
	if len(list.Indicators) != 2 || byComp["system"] == "" || byComp["chassis"] == "" {
		t.Fatalf("indicators: %s", msg)
	}
	state := func(node, ind string) string {
		t.Helper()
		code, msg := pcall(t, base, "GET", "/v1/nodes/"+node+"/management/indicators/"+ind, nil, "1.63")
		if code != 200 {
			t.Fatalf("get %s: %d %s", ind, code, msg)
		}
		var s struct{ State string }
		decodeInto(t, msg, &s)
		return s.State
	}
	set := func(node, ind, st string) (int, string) {
		return pcall(t, base, "PUT", "/v1/nodes/"+node+"/management/indicators/"+ind, map[string]any{"state": st}, "1.63")
	}
	if s := state(l.redfish, sysLED); s != "OFF" {
		t.Errorf("system LED %s, want OFF", s)
	}
	if code, msg := set(l.redfish, sysLED, "ON"); code != 204 {
		t.Fatalf("set system ON: %d %s", code, msg)
	}
	if m.SystemLED() != vbmc.LEDLit || state(l.redfish, sysLED) != "ON" {
		t.Errorf("system LED after ON: vbmc %s, API %s", m.SystemLED(), state(l.redfish, sysLED))
	}
	if code, msg := set(l.redfish, chLED, "BLINKING"); code != 204 || m.ChassisLED() != vbmc.LEDBlinking {
		t.Errorf("set chassis BLINKING: %d %s, vbmc %s", code, msg, m.ChassisLED())
	}
	// IPMI: the chassis identify light, seen over Redfish too.
	code, msg = pcall(t, base, "GET", "/v1/nodes/"+l.ipmi+"/management/indicators", nil, "1.63")
	if code != 200 || !strings.Contains(msg, `"name":"identify","component":"chassis","readonly":false,"states":["OFF","ON"]`) {
		t.Errorf("ipmi list: %d %s", code, msg)
	}
	if s := state(l.ipmi, "identify@chassis"); s != "ON" {
		t.Errorf("identify while the chassis LED blinks: %s, want ON", s)
	}
	if code, msg := set(l.ipmi, "identify@chassis", "OFF"); code != 204 || m.ChassisLED() != vbmc.LEDOff || state(l.redfish, chLED) != "OFF" {
		t.Errorf("identify OFF: %d %s, vbmc %s", code, msg, m.ChassisLED())
	}
	if code, msg := set(l.ipmi, "identify@chassis", "ON"); code != 204 || m.ChassisLED() != vbmc.LEDLit || state(l.redfish, chLED) != "ON" {
		t.Errorf("identify ON: %d %s, vbmc %s", code, msg, m.ChassisLED())
	}
	// Bad input: nothing changes.
	for _, tc := range []struct {
		node, ind, state string
		status           int
		want             string
	}{
		{l.redfish, sysLED, "PURPLE", 400, "Invalid indicator state PURPLE"},
		{l.redfish, sysLED, "UNKNOWN", 400, "Invalid indicator state UNKNOWN"},
		{l.redfish, "no-component", "ON", 400, `Malformed indicator name "no-component"`},
		{l.redfish, "led@toaster", "ON", 400, "Invalid component toaster"},
		{l.redfish, "nope@system", "ON", 400, "Unknown indicator nope for component system"},
		{l.ipmi, "identify@chassis", "BLINKING", 400, "can be ON or OFF"},
	} {
		if code, msg := set(tc.node, tc.ind, tc.state); code != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("set %s %s: %d %s, want %d %q", tc.ind, tc.state, code, msg, tc.status, tc.want)
		}
	}
	if m.SystemLED() != vbmc.LEDLit || m.ChassisLED() != vbmc.LEDLit {
		t.Errorf("refused requests changed the LEDs: %s %s", m.SystemLED(), m.ChassisLED())
	}
	// fake-hardware: Ironic's fake indicators.
	code, msg = pcall(t, base, "GET", "/v1/nodes/"+l.fake+"/management/indicators", nil, "1.63")
	if code != 200 || !strings.Contains(msg, `"name":"led","component":"system"`) || !strings.Contains(msg, `"name":"led-0","component":"chassis","readonly":true`) {
		t.Errorf("fake list: %d %s", code, msg)
	}
	if s := state(l.fake, "led@system"); s != "ON" {
		t.Errorf("fake led: %s", s)
	}
}

// raw sends a request at an API version and returns the status and the body, or the
// faultstring of an error body.
func (c apiClient) raw(method, path string, body any, version string) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct {
			ErrorMessage string `json:"error_message"`
		}
		var inner struct {
			FaultString string `json:"faultstring"`
		}
		if json.Unmarshal(out, &e) == nil && json.Unmarshal([]byte(e.ErrorMessage), &inner) == nil {
			return resp.StatusCode, inner.FaultString
		}
	}
	return resp.StatusCode, strings.TrimSpace(string(out))
}

func decodeInto(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
}
