package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// newAPI serves the API on a loopback test server backed by a fresh SQLite database.
func newAPI(t testing.TB, mutate ...func(*httpapi.Options)) (*httptest.Server, *sqlstore.Store) {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "api.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.RegisterConductor(context.Background(), &ironwork.Conductor{Hostname: "c1", Drivers: []string{"fake-hardware", "ipmi"}}); err != nil {
		t.Fatal(err)
	}
	opts := httpapi.Options{Store: store, Drivers: ironwork.DefaultDriverConfig()}
	for _, m := range mutate {
		m(&opts)
	}
	// Served as in production: net/http's own error answers get Ironic's body.
	ts := httptest.NewUnstartedServer(httpapi.New(opts))
	ts.Listener = httpapi.ErrorListener(ts.Listener)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, store
}

// localConductor routes every operation to one conductor in this process.
type localConductor struct{ c *conductor.Conductor }

func (l localConductor) Route(context.Context, string) (*conductor.Conductor, conductor.Remote, error) {
	return l.c, nil, nil
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends a request with an optional JSON body and microversion ("" sends no header).
func call(t *testing.T, ts *httptest.Server, method, path, version string, body any) response {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, ts.URL+path, rd)
	if version != "" {
		req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: buf.String()}
	json.Unmarshal(buf.Bytes(), &out.body)
	return out
}

// fault decodes Ironic's error body: a JSON document inside the error_message string.
func (r response) fault(t *testing.T) (code, msg string) {
	t.Helper()
	s, ok := r.body["error_message"].(string)
	if !ok {
		t.Fatalf("no error_message string in %s", r.raw)
	}
	var inner struct {
		FaultCode   string  `json:"faultcode"`
		FaultString string  `json:"faultstring"`
		DebugInfo   *string `json:"debuginfo"`
	}
	if err := json.Unmarshal([]byte(s), &inner); err != nil {
		t.Fatalf("error_message is not JSON: %q", s)
	}
	return inner.FaultCode, inner.FaultString
}

func mustStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
}

// latest is the advertised maximum microversion, the one constant tests compare it with.
var latest = "1." + strconv.Itoa(httpapi.MaxMinor)

func TestMicroversions(t *testing.T) {
	ts, _ := newAPI(t)
	cases := []struct {
		name, header, value string
		status              int
		used                string
	}{
		{"no header means the minimum", "", "", 200, "1.1"},
		{"legacy header", "X-OpenStack-Ironic-API-Version", "1.31", 200, "1.31"},
		{"standard header", "OpenStack-API-Version", "baremetal 1.50", 200, "1.50"},
		{"latest", "X-OpenStack-Ironic-API-Version", "latest", 200, latest},
		{"too new", "X-OpenStack-Ironic-API-Version", "1.500", 406, ""},
		{"major 2", "X-OpenStack-Ironic-API-Version", "2.1", 406, ""},
		{"garbage", "X-OpenStack-Ironic-API-Version", "one.two", 406, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/nodes", nil)
			if c.header != "" {
				req.Header.Set(c.header, c.value)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := resp.Header.Get("X-OpenStack-Ironic-API-Version"); got != c.used {
				t.Errorf("version header %q, want %q", got, c.used)
			}
			if resp.Header.Get("X-OpenStack-Ironic-API-Minimum-Version") != "1.1" || resp.Header.Get("X-OpenStack-Ironic-API-Maximum-Version") != latest {
				t.Errorf("min/max headers missing: %v", resp.Header)
			}
			if !strings.HasPrefix(resp.Header.Get("X-OpenStack-Request-Id"), "req-") {
				t.Errorf("request id header: %v", resp.Header)
			}
		})
	}
	root := call(t, ts, "GET", "/", "", nil)
	v := root.body["default_version"].(map[string]any)
	if v["version"] != latest || v["min_version"] != "1.1" || v["id"] != "v1" {
		t.Errorf("root document: %s", root.raw)
	}
	old := call(t, ts, "GET", "/v1/", "1.1", nil)
	if _, ok := old.body["portgroups"]; ok {
		t.Error("/v1 at 1.1 lists portgroups (1.23+)")
	}
	if _, ok := call(t, ts, "GET", "/v1", "1.49", nil).body["conductors"]; !ok {
		t.Error("/v1 at 1.49 does not list conductors")
	}
}

func TestNodeFieldsFollowTheVersion(t *testing.T) {
	ts, _ := newAPI(t)
	r := call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "name": "v-node",
		"driver_info": map[string]any{"ipmi_password": "p", "nested": map[string]any{"auth_token": "t"}}})
	mustStatus(t, r, 201)
	if r.header.Get("Location") == "" || r.body["driver_info"].(map[string]any)["ipmi_password"] != "******" ||
		r.body["driver_info"].(map[string]any)["nested"].(map[string]any)["auth_token"] != "******" {
		t.Fatalf("create answer: %s", r.raw)
	}
	uuid := r.body["uuid"].(string)
	for _, c := range []struct {
		version string
		present []string
		absent  []string
	}{
		{"1.1", []string{"uuid", "driver", "provision_state"}, []string{"name", "driver_internal_info", "boot_interface", "traits", "conductor", "states"}},
		{"1.31", []string{"name", "boot_interface", "network_interface", "states"}, []string{"storage_interface", "traits", "conductor_group"}},
		{"1.52", []string{"traits", "conductor", "allocation_uuid", "owner", "description"}, []string{"lessee", "shard"}},
		{"1.96", []string{"shard", "parent_node", "firmware_interface", "service_step", "disable_power_off"}, []string{"instance_name"}},
	} {
		got := call(t, ts, "GET", "/v1/nodes/"+uuid, c.version, nil)
		mustStatus(t, got, 200)
		for _, k := range c.present {
			if _, ok := got.body[k]; !ok {
				t.Errorf("%s: %s missing", c.version, k)
			}
		}
		for _, k := range c.absent {
			if _, ok := got.body[k]; ok {
				t.Errorf("%s: %s shown before its version", c.version, k)
			}
		}
	}
	fields := call(t, ts, "GET", "/v1/nodes/v-node?fields=uuid,power_state,conductor", "1.96", nil)
	if len(fields.body) != 4 || fields.body["conductor"] != nil {
		t.Errorf("?fields= gave %s", fields.raw)
	}
	bad := call(t, ts, "GET", "/v1/nodes/v-node?fields=bogus", "1.96", nil)
	mustStatus(t, bad, 400)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/v-node?fields=shard", "1.50", nil), 406)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/v-node?fields=uuid", "1.7", nil), 406)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/v-node", "1.4", nil), 404)
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", "1.40", map[string]any{"driver": "fake-hardware", "shard": "s1"}), 406)
	enroll := call(t, ts, "POST", "/v1/nodes", "1.10", map[string]any{"driver": "fake-hardware"})
	if enroll.body["provision_state"] != "available" {
		t.Errorf("a node created at 1.10 starts in %v, want available", enroll.body["provision_state"])
	}
	if latest := call(t, ts, "POST", "/v1/nodes", "1.11", map[string]any{"driver": "fake-hardware"}); latest.body["provision_state"] != "enroll" {
		t.Errorf("a node created at 1.11 starts in %v, want enroll", latest.body["provision_state"])
	}
}

func TestErrorsUseIronicFormat(t *testing.T) {
	ts, _ := newAPI(t)
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "name": "dup"}), 201)
	cases := []struct {
		name, method, path string
		body               any
		status             int
		want               string
	}{
		{"unknown node", "GET", "/v1/nodes/nope", nil, 404, "Node nope could not be found."},
		{"bad name", "GET", "/v1/nodes/bad%20name", nil, 400, "Expected a logical name or UUID"},
		{"duplicate name", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "dup"}, 409, "A node with name dup already exists."},
		{"unknown field", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "color": "red"}, 400, "Additional properties are not allowed ('color' was unexpected)"},
		{"wrong type", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": 5}, 400, "is not of type 'string'"},
		{"missing driver", "POST", "/v1/nodes", map[string]any{"name": "x"}, 400, "'driver' is a required property"},
		{"unknown driver", "POST", "/v1/nodes", map[string]any{"driver": "nope"}, 400, "No valid host was found"},
		{"unsupported interface", "POST", "/v1/nodes", map[string]any{"driver": "ipmi", "power_interface": "fake"}, 400, "Could not find a suitable power interface"},
		{"malformed JSON", "POST", "/v1/nodes", `{"driver": `, 400, "Invalid JSON"},
		{"JSON array body", "POST", "/v1/nodes", `[1,2]`, 400, "is not of type 'object'"},
		{"reserved name", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "detail"}, 400, "reserved"},
		{"bad uuid", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "uuid": "xyz"}, 400, "Expected UUID for uuid: xyz"},
		{"negative memory", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "properties": map[string]any{"memory_mb": -1}}, 400, "memory_mb"},
		{"bad limit", "GET", "/v1/nodes?limit=0", nil, 400, "Limit must be positive"},
		{"bad sort key", "GET", "/v1/nodes?sort_key=driver_info", nil, 400, "invalid field for sorting"},
		{"bad sort dir", "GET", "/v1/nodes?sort_dir=up", nil, 400, "Invalid sort direction"},
		{"bad marker", "GET", "/v1/nodes?marker=abc", nil, 400, "Expected UUID for marker"},
		{"unknown marker", "GET", "/v1/nodes?marker=1be26c0b-03f2-4d2e-ae87-c02d7f33c123", nil, 404, "could not be found"},
		{"unknown filter", "GET", "/v1/nodes?colour=red", nil, 400, "Unexpected arguments: colour"},
		{"bad bool", "GET", "/v1/nodes?maintenance=maybe", nil, 400, "Unrecognized value 'maybe'"},
		{"bad provision_state filter", "GET", "/v1/nodes?provision_state=flying", nil, 400, "is not valid"},
		{"unknown path", "GET", "/v1/bogus", nil, 404, "could not be found"},
		{"wrong method", "PUT", "/v1/nodes", nil, 405, "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, ts, c.method, c.path, "1.96", c.body)
			mustStatus(t, r, c.status)
			code, msg := r.fault(t)
			if code != "Client" || !strings.Contains(msg, c.want) {
				t.Fatalf("fault %q %q, want Client and %q", code, msg, c.want)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", r.header.Get("Content-Type"))
			}
		})
	}
	big := `{"driver": "fake-hardware", "extra": {"x": "` + strings.Repeat("a", 2<<20) + `"}}`
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", "1.96", big), 413)
}

func TestNodePatch(t *testing.T) {
	ts, _ := newAPI(t)
	r := call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "name": "p1",
		"properties": map[string]any{"cpus": 4, "caps": map[string]any{"boot": "uefi"}}, "extra": map[string]any{"a": 1}})
	mustStatus(t, r, 201)
	patch := func(ops ...map[string]any) response {
		return call(t, ts, "PATCH", "/v1/nodes/p1", "1.96", ops)
	}
	op := func(o, path string, v ...any) map[string]any {
		m := map[string]any{"op": o, "path": path}
		if len(v) > 0 {
			m["value"] = v[0]
		}
		return m
	}
	r = patch(op("add", "/properties/caps/secure", true), op("replace", "/properties/cpus", 8), op("remove", "/extra/a"),
		op("add", "/driver_info/ipmi_password", "pw"), op("add", "/description", "rack 4"))
	mustStatus(t, r, 200)
	props := r.body["properties"].(map[string]any)
	if props["cpus"] != float64(8) || props["caps"].(map[string]any)["secure"] != true || len(r.body["extra"].(map[string]any)) != 0 ||
		r.body["driver_info"].(map[string]any)["ipmi_password"] != "******" || r.body["description"] != "rack 4" || r.body["updated_at"] == nil {
		t.Fatalf("patched node: %s", r.raw)
	}
	// The masked value in the answer must not overwrite the stored secret on the next patch.
	r = patch(op("add", "/driver_info/ipmi_username", "admin"))
	mustStatus(t, r, 200)
	for _, c := range []struct {
		name   string
		ops    []map[string]any
		status int
		want   string
	}{
		{"read-only field", []map[string]any{op("replace", "/provision_state", "active")}, 400, "Cannot patch /provision_state"},
		{"uuid", []map[string]any{op("replace", "/uuid", "1be26c0b-03f2-4d2e-ae87-c02d7f33c123")}, 400, "Cannot patch /uuid"},
		{"missing key", []map[string]any{op("remove", "/extra/nothere")}, 400, "can't remove a non-existent object 'nothere'"},
		{"missing parent", []map[string]any{op("add", "/extra/x/y", 1)}, 400, "Couldn't apply patch"},
		{"bad op", []map[string]any{op("move", "/extra/a")}, 400, "is not one of"},
		{"no value", []map[string]any{op("add", "/extra/a")}, 400, "'value' is a required member"},
		{"bad name", []map[string]any{op("replace", "/name", "has space")}, 400, "Cannot change name to invalid name"},
		{"remove driver", []map[string]any{op("remove", "/driver")}, 400, "'driver' is a required property"},
		{"newer field", []map[string]any{op("add", "/instance_name", "x")}, 406, "minimal required API version should be 1.104"},
		{"protected outside active", []map[string]any{op("replace", "/protected", true)}, 409, "can only be made protected"},
		{"reason without retired", []map[string]any{op("add", "/retired_reason", "old")}, 400, "retired_reason field can only be set"},
		{"interface of the wrong hardware type", []map[string]any{op("replace", "/power_interface", "ipmitool")}, 400, "Could not find a suitable power interface"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := patch(c.ops...)
			mustStatus(t, got, c.status)
			if _, msg := got.fault(t); !strings.Contains(msg, c.want) {
				t.Fatalf("message %q, want %q", msg, c.want)
			}
		})
	}
	// Switching the driver with reset_interfaces picks the new hardware type's defaults.
	r = call(t, ts, "PATCH", "/v1/nodes/p1?reset_interfaces=true", "1.96", []map[string]any{op("replace", "/driver", "ipmi")})
	mustStatus(t, r, 200)
	if r.body["power_interface"] != "ipmitool" || r.body["management_interface"] != "ipmitool" {
		t.Fatalf("interfaces after driver change: %v %v", r.body["power_interface"], r.body["management_interface"])
	}
	r = call(t, ts, "GET", "/v1/nodes/p1", "1.96", nil)
	if di := r.body["driver_info"].(map[string]any); di["ipmi_username"] != "admin" || di["ipmi_password"] != "******" {
		t.Fatalf("driver_info after patches: %v", di)
	}
}

func TestNodeTraitsStatesAndDelete(t *testing.T) {
	ts, store := newAPI(t)
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "name": "t1"}), 201)
	mustStatus(t, call(t, ts, "PUT", "/v1/nodes/t1/traits", "1.96", map[string]any{"traits": []string{"CUSTOM_GPU", "HW_CPU_X86_AVX2", "CUSTOM_GPU"}}), 204)
	mustStatus(t, call(t, ts, "PUT", "/v1/nodes/t1/traits/CUSTOM_RAID", "1.96", nil), 204)
	mustStatus(t, call(t, ts, "PUT", "/v1/nodes/t1/traits/lowercase", "1.96", nil), 400)
	r := call(t, ts, "GET", "/v1/nodes/t1/traits", "1.96", nil)
	if got := r.raw; !strings.Contains(got, `["CUSTOM_GPU","CUSTOM_RAID","HW_CPU_X86_AVX2"]`) {
		t.Fatalf("traits: %s", got)
	}
	mustStatus(t, call(t, ts, "DELETE", "/v1/nodes/t1/traits/CUSTOM_NOPE", "1.96", nil), 404)
	mustStatus(t, call(t, ts, "DELETE", "/v1/nodes/t1/traits/CUSTOM_GPU", "1.96", nil), 204)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/t1/traits", "1.36", nil), 404)
	many := make([]string, 51)
	for i := range many {
		many[i] = "CUSTOM_T" + strings.Repeat("X", i+1)
	}
	mustStatus(t, call(t, ts, "PUT", "/v1/nodes/t1/traits", "1.96", map[string]any{"traits": many}), 400)

	st := call(t, ts, "GET", "/v1/nodes/t1/states", "1.96", nil)
	if st.body["provision_state"] != "enroll" || st.body["boot_mode"] != nil {
		t.Fatalf("states: %s", st.raw)
	}
	// VIFs are the network interface's to list, as in Ironic: without a conductor, 503.
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/t1/vifs", "1.96", nil), 503)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/t1/vifs", "1.27", nil), 404)

	// A node a conductor holds, or one that is deployed, cannot be deleted.
	ctx := context.Background()
	if _, err := store.UpdateNode(ctx, "t1", func(n *ironwork.Node) error { n.Reservation = "c1"; return nil }); err != nil {
		t.Fatal(err)
	}
	locked := call(t, ts, "DELETE", "/v1/nodes/t1", "1.96", nil)
	mustStatus(t, locked, 409)
	if _, msg := locked.fault(t); !strings.Contains(msg, "is locked by host c1, please retry after the current operation is completed.") {
		t.Fatalf("locked message: %s", msg)
	}
	mustStatus(t, call(t, ts, "PATCH", "/v1/nodes/t1", "1.96", []map[string]any{{"op": "add", "path": "/extra/x", "value": 1}}), 409)
	if _, err := store.UpdateNode(ctx, "t1", func(n *ironwork.Node) error {
		n.Reservation, n.ProvisionState = "", ironwork.Active
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, call(t, ts, "DELETE", "/v1/nodes/t1", "1.96", nil), 409)
	mustStatus(t, call(t, ts, "PATCH", "/v1/nodes/t1", "1.96", []map[string]any{{"op": "replace", "path": "/maintenance", "value": true}}), 200)
	mustStatus(t, call(t, ts, "DELETE", "/v1/nodes/t1", "1.96", nil), 204)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/t1", "1.96", nil), 404)
}

func TestListsPageWithNextLinks(t *testing.T) {
	ts, _ := newAPI(t)
	for i := 0; i < 7; i++ {
		mustStatus(t, call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "resource_class": "gpu"}), 201)
	}
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "resource_class": "cpu"}), 201)
	seen := map[string]bool{}
	path := "/v1/nodes?limit=3&resource_class=gpu"
	for pages := 0; path != "" && pages < 10; pages++ {
		r := call(t, ts, "GET", path, "1.96", nil)
		mustStatus(t, r, 200)
		for _, n := range r.body["nodes"].([]any) {
			node := n.(map[string]any)
			if len(node) != 7 {
				t.Fatalf("a list without detail shows %d fields: %v", len(node), node)
			}
			seen[node["uuid"].(string)] = true
		}
		path = ""
		if next, ok := r.body["next"].(string); ok {
			path = strings.TrimPrefix(next, ts.URL)
			links := r.body["nodes_links"].([]any)
			if links[0].(map[string]any)["href"] != next || links[0].(map[string]any)["rel"] != "next" {
				t.Fatalf("nodes_links %v does not match next %s", links, next)
			}
		}
	}
	if len(seen) != 7 {
		t.Fatalf("following next links with a filter found %d nodes, want 7", len(seen))
	}
	detail := call(t, ts, "GET", "/v1/nodes/detail?sort_key=created_at&sort_dir=desc", "1.96", nil)
	if nodes := detail.body["nodes"].([]any); len(nodes) != 8 || nodes[0].(map[string]any)["resource_class"] != "cpu" {
		t.Fatalf("detail list: %d nodes, first %v", len(nodes), nodes[0])
	}
	mustStatus(t, call(t, ts, "GET", "/v1/nodes?detail=true&fields=uuid", "1.96", nil), 400)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes?detail=true", "1.42", nil), 400)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes?resource_class=gpu", "1.20", nil), 406)
}

func TestPortsPortgroupsChassis(t *testing.T) {
	ts, _ := newAPI(t)
	node := call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "name": "pn"})
	uuid := node.body["uuid"].(string)
	g := call(t, ts, "POST", "/v1/portgroups", "1.96", map[string]any{"node_uuid": uuid, "name": "bond0", "address": "52:54:00:00:00:AA",
		"standalone_ports_supported": false})
	mustStatus(t, g, 201)
	if g.body["mode"] != "active-backup" || g.body["address"] != "52:54:00:00:00:aa" {
		t.Fatalf("portgroup: %s", g.raw)
	}
	mustStatus(t, call(t, ts, "POST", "/v1/portgroups", "1.22", map[string]any{"node_uuid": uuid}), 404)
	refused := call(t, ts, "POST", "/v1/ports", "1.96", map[string]any{"node_uuid": uuid, "address": "52:54:00:00:00:01", "portgroup_uuid": g.body["uuid"]})
	mustStatus(t, refused, 409)
	p := call(t, ts, "POST", "/v1/ports", "1.96", map[string]any{"node_ident": "pn", "address": "52:54:00:00:00:01",
		"portgroup_uuid": g.body["uuid"], "pxe_enabled": false, "local_link_connection": map[string]any{"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": "Eth1/1"}})
	mustStatus(t, p, 201)
	mustStatus(t, call(t, ts, "POST", "/v1/ports", "1.96", map[string]any{"node_uuid": uuid, "address": "52-54-00-00-00-02"}), 400)
	mustStatus(t, call(t, ts, "POST", "/v1/ports", "1.96", map[string]any{"node_uuid": uuid, "address": "52:54:00:00:00:03", "physical_network": ""}), 400)
	old := call(t, ts, "GET", "/v1/ports/"+p.body["uuid"].(string), "1.18", nil)
	if _, ok := old.body["pxe_enabled"]; ok || old.body["internal_info"] == nil {
		t.Fatalf("port at 1.18: %s", old.raw)
	}
	list := call(t, ts, "GET", "/v1/portgroups/bond0/ports", "1.96", nil)
	if ps := list.body["ports"].([]any); len(ps) != 1 || len(ps[0].(map[string]any)) != 3 {
		t.Fatalf("ports of the portgroup: %s", list.raw)
	}
	byAddr := call(t, ts, "GET", "/v1/ports?address=52:54:00:00:00:01&fields=uuid,node_uuid", "1.96", nil)
	if ps := byAddr.body["ports"].([]any); len(ps) != 1 || ps[0].(map[string]any)["node_uuid"] != uuid {
		t.Fatalf("port by address: %s", byAddr.raw)
	}
	mustStatus(t, call(t, ts, "DELETE", "/v1/portgroups/bond0", "1.96", nil), 400)
	mustStatus(t, call(t, ts, "DELETE", "/v1/ports/not-a-uuid", "1.96", nil), 400)
	mustStatus(t, call(t, ts, "DELETE", "/v1/ports/"+p.body["uuid"].(string), "1.96", nil), 204)
	mustStatus(t, call(t, ts, "DELETE", "/v1/portgroups/bond0", "1.96", nil), 204)

	ch := call(t, ts, "POST", "/v1/chassis", "1.96", map[string]any{"description": "rack 9"})
	mustStatus(t, ch, 201)
	cuuid := ch.body["uuid"].(string)
	mustStatus(t, call(t, ts, "PATCH", "/v1/nodes/pn", "1.96", []map[string]any{{"op": "add", "path": "/chassis_uuid", "value": cuuid}}), 200)
	in := call(t, ts, "GET", "/v1/chassis/"+cuuid+"/nodes", "1.96", nil)
	if ns := in.body["nodes"].([]any); len(ns) != 1 {
		t.Fatalf("nodes of chassis: %s", in.raw)
	}
	mustStatus(t, call(t, ts, "DELETE", "/v1/chassis/"+cuuid, "1.96", nil), 400)
	mustStatus(t, call(t, ts, "PATCH", "/v1/nodes/pn", "1.24", []map[string]any{{"op": "remove", "path": "/chassis_uuid"}}), 406)
	mustStatus(t, call(t, ts, "PATCH", "/v1/nodes/pn", "1.96", []map[string]any{{"op": "remove", "path": "/chassis_uuid"}}), 200)
	mustStatus(t, call(t, ts, "DELETE", "/v1/chassis/"+cuuid, "1.96", nil), 204)
}

func TestHTTPBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := httpapi.LoadBasicAuth(file)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := newAPI(t, func(o *httpapi.Options) { o.Auth = auth })
	get := func(path, creds string) *http.Response {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		if creds != "" {
			req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(creds)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/v1/nodes", ""); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != `Basic realm="Baremetal API"` {
		t.Fatalf("no credentials: %d %v", r.StatusCode, r.Header)
	}
	if r := get("/v1/nodes", "admin:wrong"); r.StatusCode != 401 {
		t.Fatalf("wrong password: %d", r.StatusCode)
	}
	for i := 0; i < 2; i++ { // the second request takes the verified-credentials cache
		if r := get("/v1/nodes", "admin:s3cret"); r.StatusCode != 200 {
			t.Fatalf("right password: %d", r.StatusCode)
		}
	}
	if r := get("/", ""); r.StatusCode != 200 {
		t.Fatalf("root is public in Ironic: %d", r.StatusCode)
	}
	if err := os.WriteFile(file, []byte("admin:{SHA}abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := httpapi.LoadBasicAuth(file); err == nil {
		t.Fatal("a non-bcrypt htpasswd entry was accepted")
	}
}
