package server_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// hostileValues are JSON fragments an attacker puts in a field: each must be refused with a
// 4xx or stored in a form every later reader can decode.
var hostileValues = []string{
	`"\u0000"`, `"a\u0000b"`, "\"\xff\xfe\"", `"\ud800"`, `1e400`, `-1e400`, `123456789012345678901234567890`,
	`1e-400`, `true`, `[]`, `{}`, `[1,[2,[3]]]`, `null`, `""`, `"../../etc/passwd"`, `"<script>x</script>"`,
	`{"a":{"b":"\u0000"}}`, `{"n":1e400}`, `{"l":[1e999]}`, `{"\u0000":1}`, `-1`, `0.5`,
	deepJSON(200), `"` + strings.Repeat("x", 70000) + `"`, `{"password":"p","x":[{"token":"t"}]}`,
}

// deepJSON returns an array nested n levels deep.
func deepJSON(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// hostileIdents are identifiers put in a URL path.
var hostileIdents = []string{"%00", "not-a-uuid%00", "%ff%fe", "..%2f..", "a%2fb", strings.Repeat("n", 5000),
	"00000000-0000-0000-0000-000000000000", "%20", "%c0%af", "CUSTOM_%00"}

// hostileQueries are list query strings.
var hostileQueries = []string{"driver=%00", "driver=nonexistent;x", "driver=%ff", "limit=-1", "limit=abc",
	"limit=99999999999999999999", "marker=%00", "marker=bad", "sort_key=%00", "sort_key=bogus", "sort_dir=sideways",
	"fields=uuid,%00", "fields=bogus", "detail=maybe", "a=%zz", "unknown=1", "node=%00", "address=%00",
	"resource_class=%00", "owner=%00", "description_contains=%00", "name=%ff", "state=%00", "chassis_uuid=%00",
	strings.Repeat("x=1&", 10001) + "x=1", strings.Repeat("u=1&", 9998) + "u=1"}

// hostileRun sends requests and records every answer that breaks the rules.
type hostileRun struct {
	t      *testing.T
	base   string
	n      int
	bad    []string
	counts map[int]int
	nodes  []string // nodes created by accepted requests
	slow   []timed  // the slowest requests, slowest first
}

// timed is one request and how long its answer took.
type timed struct {
	d   time.Duration
	req string
}

// record keeps the five slowest requests.
func (h *hostileRun) record(d time.Duration, req string) {
	h.slow = append(h.slow, timed{d, req})
	slices.SortFunc(h.slow, func(a, b timed) int { return cmp.Compare(b.d, a.d) })
	if len(h.slow) > 5 {
		h.slow = h.slow[:5]
	}
}

// do sends one request at the newest microversion and returns the status and body.
func (h *hostileRun) do(method, path, body string, header ...string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("build %s %s: %v", method, truncated(path), err)
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.96")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, truncated(path), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	h.record(time.Since(start), method+" "+truncated(path)+" "+truncated(body))
	h.n++
	h.counts[resp.StatusCode]++
	if resp.StatusCode >= 500 {
		h.bad = append(h.bad, fmt.Sprintf("%s %s %s: %d %s", method, truncated(path), truncated(body), resp.StatusCode, truncated(string(b))))
	}
	if resp.StatusCode >= 400 {
		var e struct {
			ErrorMessage string `json:"error_message"`
		}
		if json.Unmarshal(b, &e) != nil || !json.Valid([]byte(e.ErrorMessage)) {
			h.bad = append(h.bad, fmt.Sprintf("%s %s: %d without Ironic's error body: %s", method, truncated(path), resp.StatusCode, truncated(string(b))))
		}
	}
	return resp.StatusCode, string(b)
}

// want sends a request that must get exactly status.
func (h *hostileRun) want(status int, method, path, body string) string {
	h.t.Helper()
	got, b := h.do(method, path, body)
	if got != status {
		h.bad = append(h.bad, fmt.Sprintf("%s %s %s: %d, want %d: %s", method, truncated(path), truncated(body), got, status, truncated(b)))
	}
	return b
}

func truncated(s string) string {
	if len(s) > 160 {
		return fmt.Sprintf("%s...(%d bytes)", s[:160], len(s))
	}
	return s
}

// with returns the JSON object base with member k set to the raw JSON fragment v.
func with(base map[string]string, k, v string) string {
	parts := []string{}
	for bk, bv := range base {
		if bk != k {
			parts = append(parts, fmt.Sprintf("%q:%s", bk, bv))
		}
	}
	parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	return "{" + strings.Join(parts, ",") + "}"
}

func uuidOf(t *testing.T, body string) string {
	t.Helper()
	var v struct{ UUID string }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.UUID == "" {
		t.Fatalf("no uuid in %s", truncated(body))
	}
	return v.UUID
}

// TestHostileRequests sends several hundred hostile requests to a whole server on every database:
// none may get a 5xx or a body that is not Ironic's error format, and afterwards every list is
// still readable and every node created on the way can still be read, patched and deleted.
func TestHostileRequests(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t))
			start := time.Now()
			h := &hostileRun{t: t, base: srv.URL(), counts: map[int]int{}}
			runHostile(t, h, srv)
			t.Logf("%s: %d hostile requests in %v, statuses %v", target.Name, h.n, time.Since(start).Round(time.Millisecond), h.counts)
			for _, s := range h.slow {
				t.Logf("slow: %v %s", s.d.Round(time.Millisecond), s.req)
			}
			for _, b := range h.bad {
				t.Error(b)
			}
		})
	}
}

func runHostile(t *testing.T, h *hostileRun, srv *server.Server) {
	node := uuidOf(t, h.want(201, "POST", "/v1/nodes", `{"driver":"fake-hardware","name":"victim"}`))
	chassis := uuidOf(t, h.want(201, "POST", "/v1/chassis", `{"description":"c"}`))
	port := uuidOf(t, h.want(201, "POST", "/v1/ports", fmt.Sprintf(`{"node_uuid":%q,"address":"52:54:00:00:00:01"}`, node)))
	group := uuidOf(t, h.want(201, "POST", "/v1/portgroups", fmt.Sprintf(`{"node_uuid":%q,"name":"pg0"}`, node)))
	alloc := uuidOf(t, h.want(201, "POST", "/v1/allocations", `{"resource_class":"none-such","name":"a0"}`))
	tmpl := uuidOf(t, h.want(201, "POST", "/v1/deploy_templates",
		`{"name":"CUSTOM_T0","steps":[{"interface":"deploy","step":"s","args":{},"priority":10}]}`))
	rule := uuidOf(t, h.want(201, "POST", "/v1/inspection_rules", `{"actions":[{"op":"log","args":{"msg":"x"}}]}`))

	// The cases the issue names, with the exact answer they must get.
	h.want(400, "POST", "/v1/nodes", `{"driver":"fake-hardware","extra":{"n":1e400}}`)
	h.want(400, "PATCH", "/v1/nodes/"+node, `[{"op":"add","path":"/extra/n","value":1e400}]`)
	for _, f := range []string{"description", "owner", "resource_class", "name"} {
		h.want(400, "POST", "/v1/nodes", fmt.Sprintf(`{"driver":"fake-hardware",%q:"a\u0000b"}`, f))
	}
	h.want(400, "PUT", "/v1/nodes/"+node+"/maintenance", `{"reason":"a\u0000b"}`)
	h.want(400, "GET", "/v1/nodes?driver=%00", "")
	h.want(400, "GET", "/v1/ports/not-a-uuid%00", "")
	h.want(400, "GET", "/v1/nodes?driver=nonexistent;x", "")
	h.want(400, "GET", "/v1/nodes?"+strings.Repeat("x=1&", 10001)+"x=1", "")
	h.want(400, "GET", "/v1/nodes?"+strings.Repeat("x=1&", 9998)+"x=1", "")
	h.want(400, "PUT", "/v1/nodes/"+node+"/states/provision", `{"target":"manage","disable_ramdisk":"x"}`)
	h.want(400, "PUT", "/v1/nodes/"+node+"/states/provision", `{"target":5}`)
	h.want(400, "PUT", "/v1/nodes/"+node+"/states/provision", `{"target":"clean","clean_steps":[1]}`)
	h.want(400, "PUT", "/v1/nodes/"+node+"/states/provision", `{"target":"rescue","rescue_password":["S3cr3t"]}`)
	h.want(400, "PUT", "/v1/nodes/"+node+"/states/power", `{"target":["power on"]}`)
	h.want(404, "GET", "/v1/nodes/../chassis", "")
	h.want(404, "GET", "/v1//nodes", "")

	// Creates: every field of every resource set to every hostile value.
	seq := 0
	creates := []struct {
		path   string
		base   func() map[string]string
		fields []string
	}{
		{"/v1/nodes", func() map[string]string {
			return map[string]string{"driver": `"fake-hardware"`, "name": fmt.Sprintf(`"n%d"`, seq)}
		}, []string{"driver", "name", "description", "owner", "lessee", "resource_class", "extra", "properties",
			"driver_info", "instance_info", "conductor_group", "chassis_uuid", "uuid", "network_interface",
			"automated_clean", "shard", "parent_node", "boot_interface", "network_data", "retired_reason", "bogus"}},
		{"/v1/ports", func() map[string]string {
			return map[string]string{"node_uuid": `"` + node + `"`, "address": fmt.Sprintf(`"52:54:00:00:%02x:%02x"`, seq/256, seq%256)}
		}, []string{"node_uuid", "address", "extra", "local_link_connection", "pxe_enabled", "physical_network",
			"is_smartnic", "name", "description", "portgroup_uuid", "uuid"}},
		{"/v1/portgroups", func() map[string]string {
			return map[string]string{"node_uuid": `"` + node + `"`, "name": fmt.Sprintf(`"g%d"`, seq)}
		}, []string{"node_uuid", "address", "name", "mode", "properties", "extra", "standalone_ports_supported"}},
		{"/v1/chassis", func() map[string]string { return map[string]string{"description": `"c"`} },
			[]string{"description", "extra", "uuid"}},
		{"/v1/allocations", func() map[string]string {
			return map[string]string{"resource_class": `"none-such"`, "name": fmt.Sprintf(`"a%d"`, seq)}
		}, []string{"resource_class", "traits", "candidate_nodes", "name", "extra", "owner", "uuid"}},
		{"/v1/deploy_templates", func() map[string]string {
			return map[string]string{"name": fmt.Sprintf(`"CUSTOM_T%d"`, seq), "steps": `[{"interface":"deploy","step":"s","args":{},"priority":10}]`}
		}, []string{"name", "steps", "extra"}},
		{"/v1/inspection_rules", func() map[string]string {
			return map[string]string{"actions": `[{"op":"log","args":{"msg":"x"}}]`}
		}, []string{"description", "priority", "phase", "sensitive", "uuid", "conditions", "actions", "scope"}},
	}
	for _, c := range creates {
		for _, f := range c.fields {
			for _, v := range hostileValues {
				seq++
				status, body := h.do("POST", c.path, with(c.base(), f, v))
				if status == 201 && c.path == "/v1/nodes" {
					h.nodes = append(h.nodes, uuidOf(t, body))
				}
			}
		}
	}
	// Hostile members inside deploy steps and allocation lists.
	for _, v := range hostileValues {
		seq++
		for _, k := range []string{"interface", "step", "args", "priority"} {
			step := map[string]string{"interface": `"deploy"`, "step": `"s"`, "args": `{}`, "priority": `10`}
			h.do("POST", "/v1/deploy_templates", fmt.Sprintf(`{"name":"CUSTOM_S%d_%s","steps":[%s]}`, seq, k, with(step, k, v)))
		}
		for _, k := range []string{"op", "args", "loop", "multiple"} {
			cond := map[string]string{"op": `"eq"`, "args": `{"values":["{inventory[cpu][count]}",2]}`}
			act := map[string]string{"op": `"set-attribute"`, "args": `{"path":"/extra/x","value":"{inventory}"}`}
			h.do("POST", "/v1/inspection_rules", fmt.Sprintf(`{"conditions":[%s],"actions":[%s]}`, with(cond, k, v), with(act, k, v)))
		}
		h.do("POST", "/v1/allocations", fmt.Sprintf(`{"resource_class":"x","traits":[%s]}`, v))
		h.do("POST", "/v1/allocations", fmt.Sprintf(`{"resource_class":"x","candidate_nodes":[%s]}`, v))
	}

	// PATCH: hostile values at every kind of path of every resource.
	patches := map[string][]string{
		"/v1/nodes/" + node:            {"/extra/x", "/extra", "/driver_info/x", "/properties/x", "/instance_info/x", "/description", "/name", "/owner", "/resource_class", "/driver", "/maintenance", "/uuid", "/extra/a/b"},
		"/v1/ports/" + port:            {"/extra/x", "/address", "/local_link_connection", "/pxe_enabled", "/description", "/node_uuid"},
		"/v1/portgroups/" + group:      {"/extra/x", "/name", "/mode", "/properties/x", "/address"},
		"/v1/chassis/" + chassis:       {"/extra/x", "/description"},
		"/v1/allocations/" + alloc:     {"/extra/x", "/name", "/owner"},
		"/v1/deploy_templates/" + tmpl: {"/extra/x", "/name", "/steps/0/priority", "/steps/0/args", "/steps"},
		"/v1/inspection_rules/" + rule: {"/description", "/priority", "/phase", "/actions/0/args", "/actions", "/conditions", "/sensitive"},
	}
	for res, paths := range patches {
		for _, p := range paths {
			for i, v := range hostileValues {
				h.do("PATCH", res, fmt.Sprintf(`[{"op":"add","path":%q,"value":%s}]`, p, v))
				if i < 8 { // replace goes through the same checks; the first values suffice
					h.do("PATCH", res, fmt.Sprintf(`[{"op":"replace","path":%q,"value":%s}]`, p, v))
				}
			}
			h.do("PATCH", res, fmt.Sprintf(`[{"op":"remove","path":%q}]`, p))
		}
		// PATCH abuse: malformed documents.
		for _, doc := range []string{`[]`, `{}`, `[{}]`, `[{"op":"move","path":"/extra","from":"/x"}]`, `[{"op":"add","path":"","value":1}]`,
			`[{"op":"add","path":"/extra/~2","value":1}]`, `[{"op":"add","path":"/extra/-","value":1}]`, `[{"op":"add","path":"/extra/x\u0000","value":1}]`,
			`[{"op":"remove","path":"/extra/nonexistent/deeper"}]`, `[{"op":"add","path":"/extra/x","value":1}` + strings.Repeat(` `, 10) + `]garbage`,
			"[{\"op\":\"add\",\"path\":\"/extra/\xff\",\"value\":1}]", `[` + strings.Repeat(`{"op":"add","path":"/extra/x","value":1},`, 2000) + `{"op":"remove","path":"/extra/x"}]`} {
			h.do("PATCH", res, doc)
		}
	}

	// State changes with hostile bodies.
	for _, v := range hostileValues {
		for _, body := range []string{
			fmt.Sprintf(`{"target":%s}`, v), fmt.Sprintf(`{"target":"manage","disable_ramdisk":%s}`, v),
			fmt.Sprintf(`{"target":"clean","clean_steps":%s}`, v), fmt.Sprintf(`{"target":"clean","clean_steps":[%s]}`, v),
			fmt.Sprintf(`{"target":"active","configdrive":%s}`, v), fmt.Sprintf(`{"target":"rescue","rescue_password":%s}`, v),
		} {
			h.do("PUT", "/v1/nodes/"+node+"/states/provision", body)
		}
		h.do("PUT", "/v1/nodes/"+node+"/states/power", fmt.Sprintf(`{"target":%s}`, v))
		h.do("PUT", "/v1/nodes/"+node+"/states/power", fmt.Sprintf(`{"target":"power off","timeout":%s}`, v))
		h.do("PUT", "/v1/nodes/"+node+"/maintenance", fmt.Sprintf(`{"reason":%s}`, v))
		h.do("PUT", "/v1/nodes/"+node+"/management/boot_device", fmt.Sprintf(`{"boot_device":%s}`, v))
		h.do("PUT", "/v1/nodes/"+node+"/traits", fmt.Sprintf(`{"traits":[%s]}`, v))
		h.do("POST", "/v1/nodes/"+node+"/vifs", fmt.Sprintf(`{"id":%s}`, v))
	}
	h.do("DELETE", "/v1/nodes/"+node+"/maintenance", "")

	// Bad identifiers on every resource and method.
	for _, res := range []string{"nodes", "ports", "portgroups", "chassis", "allocations", "deploy_templates", "inspection_rules", "conductors", "drivers"} {
		for _, id := range hostileIdents {
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				h.do(m, "/v1/"+res+"/"+id, `[{"op":"add","path":"/extra/x","value":1}]`)
			}
		}
	}
	for _, id := range hostileIdents {
		h.do("PUT", "/v1/nodes/"+node+"/traits/"+id, "")
		h.do("GET", "/v1/nodes/"+id+"/ports", "")
		h.do("PUT", "/v1/nodes/"+id+"/states/power", `{"target":"power on"}`)
		h.do("DELETE", "/v1/nodes/"+node+"/vifs/"+id, "")
		h.do("POST", "/v1/heartbeat/"+id, `{"callback_url":"http://127.0.0.1:1"}`)
	}

	// Bad filters on every list.
	for _, l := range []string{"nodes", "nodes/detail", "ports", "ports/detail", "portgroups", "portgroups/detail", "chassis",
		"chassis/detail", "allocations", "deploy_templates", "inspection_rules", "conductors", "drivers", "nodes/" + node + "/ports"} {
		for _, q := range hostileQueries {
			h.do("GET", "/v1/"+l+"?"+q, "")
		}
	}

	// Bad versions, bodies and headers.
	for _, v := range []string{"1.999", "0.1", "2.1", "latest\x00", "1.", "1.1.1", "x", strings.Repeat("9", 100), "1.-1"} {
		h.do("GET", "/v1/nodes", "", "X-OpenStack-Ironic-API-Version", strings.ReplaceAll(v, "\x00", ""))
	}
	if status, _ := h.do("GET", "/v1/nodes", "", "X-Big", strings.Repeat("h", 2<<20)); status != 431 {
		h.bad = append(h.bad, fmt.Sprintf("a 2 MiB header: status %d, want 431", status))
	}
	h.do("POST", "/v1/nodes", `{"driver":"fake-hardware","extra":{"x":"`+strings.Repeat("y", 2<<20)+`"}}`)
	h.do("POST", "/v1/nodes", strings.Repeat("[", 100000))
	h.do("POST", "/v1/nodes", `{"driver":"fake-hardware"} {"driver":"fake-hardware"}`)
	h.do("POST", "/v1/nodes", "\xef\xbb\xbf{}")
	h.do("GET", "/v1/nodes/../../etc/passwd", "")
	h.do("GET", "/v1/./nodes", "")

	// Afterwards every list is readable, with detail.
	for _, l := range []string{"nodes", "nodes/detail", "ports", "ports/detail", "portgroups", "portgroups/detail",
		"chassis", "chassis/detail", "allocations", "deploy_templates?detail=true", "inspection_rules?detail=true", "nodes/" + node + "/ports/detail"} {
		h.want(200, "GET", "/v1/"+l, "")
	}
	// Every node created on the way is readable, patchable and deletable.
	t.Logf("%d nodes were created by hostile requests", len(h.nodes))
	for _, n := range append(h.nodes, node) {
		h.want(200, "GET", "/v1/nodes/"+n, "")
		h.want(200, "PATCH", "/v1/nodes/"+n, `[{"op":"add","path":"/extra/after","value":1}]`)
	}
	for _, n := range h.nodes {
		h.want(204, "DELETE", "/v1/nodes/"+n, "")
	}
}

// TestUndecodableNodeIsolated writes what no API request can (a node row whose extra is not
// JSON, and one holding a number beyond float64, as older versions stored) and checks that
// the lists and the periodic power sync still work for every other node.
func TestUndecodableNodeIsolated(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t))
			h := &hostileRun{t: t, base: srv.URL(), counts: map[int]int{}}
			broken := uuidOf(t, h.want(201, "POST", "/v1/nodes", `{"driver":"fake-hardware","name":"broken"}`))
			huge := uuidOf(t, h.want(201, "POST", "/v1/nodes", `{"driver":"fake-hardware","name":"huge"}`))
			fine := uuidOf(t, h.want(201, "POST", "/v1/nodes", `{"driver":"fake-hardware","name":"fine"}`))
			db := srv.Store().DB()
			ctx := t.Context()
			if _, err := db.ExecContext(ctx, "UPDATE nodes SET extra = '{broken' WHERE uuid = '"+broken+"'"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `UPDATE nodes SET extra = '{"n":1e400}' WHERE uuid = '`+huge+"'"); err != nil {
				t.Fatal(err)
			}
			if err := srv.Conductor().SyncPowerStates(ctx); err != nil {
				t.Errorf("power sync with an undecodable node: %v", err)
			}
			body := h.want(200, "GET", "/v1/nodes/detail", "")
			if !strings.Contains(body, fine) || !strings.Contains(body, huge) || strings.Contains(body, broken) {
				t.Errorf("list shows the wrong nodes: %s", truncated(body))
			}
			if b := h.want(200, "GET", "/v1/nodes/"+huge, ""); !strings.Contains(b, `"n":1e400`) {
				t.Errorf("the huge number is not shown as stored: %s", truncated(b))
			}
			h.want(200, "PATCH", "/v1/nodes/"+huge, `[{"op":"remove","path":"/extra/n"}]`)
			h.want(204, "DELETE", "/v1/nodes/"+huge, "")
			for _, b := range h.bad {
				t.Error(b)
			}
		})
	}
}
