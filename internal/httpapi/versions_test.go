package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/network"
	"github.com/ironwork/ironwork/internal/httpapi"
)

// TestVersionTable checks the table itself: one row per version from 1.1 on, the advertised
// maximum derived from it, and every Elsewhere row naming who brings it.
func TestVersionTable(t *testing.T) {
	rows := httpapi.Versions()
	for i, f := range rows {
		if f.Minor != i+1 || f.Adds == "" {
			t.Fatalf("row %d: %+v", i, f)
		}
		if f.Support == httpapi.Elsewhere && f.By == "" {
			t.Errorf("1.%d is served elsewhere but says not by whom", f.Minor)
		}
		if f.Support != httpapi.Served {
			t.Logf("1.%d %s: %s (%s)", f.Minor, f.Support, f.Adds, f.By)
		}
	}
	if httpapi.MaxMinor != httpapi.PendingMax() {
		t.Fatalf("MaxMinor is 1.%d but the version table allows 1.%d", httpapi.MaxMinor, httpapi.PendingMax())
	}
	// Every advertised version is served by this build: none waits for other work.
	if httpapi.MaxMinor != httpapi.ServedMax() {
		t.Fatalf("MaxMinor is 1.%d but this build serves only up to 1.%d", httpapi.MaxMinor, httpapi.ServedMax())
	}
	t.Logf("advertised 1.%d; served by this build alone up to 1.%d", httpapi.MaxMinor, httpapi.ServedMax())
}

// TestVersionProbes walks the table: every probe of a Served version answers something other
// than 404 at that version, and the same request at the version before answers differently
// when the version introduced an endpoint (404, 405 or 406 as Ironic gates it).
func TestVersionProbes(t *testing.T) {
	ts, store := newAPI(t, func(o *httpapi.Options) {
		reg := conductor.Registry{}
		fake.Register(reg)
		network.Register(reg)
		cfg := conductor.Defaults()
		cfg.Hostname = "c1"
		o.Conductor = localConductor{conductor.New(cfg, o.Store, ironwork.DefaultDriverConfig(), reg, nil)}
	})
	r := call(t, ts, "POST", "/v1/nodes", "1.1", map[string]any{"driver": "fake-hardware"})
	mustStatus(t, r, 201)
	node := r.body["uuid"].(string)
	if _, err := store.UpdateNode(context.Background(), node, func(n *ironwork.Node) error { n.PowerState = ironwork.PowerOff; return nil }); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, call(t, ts, "POST", "/v1/runbooks", "1.112", map[string]any{"name": "rb",
		"steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices", "order": 1}}}), 201)
	bodies := map[string]any{"POST /v1/events": map[string]any{"events": []any{map[string]any{"event": "network.bind_port",
		"port_id": "11111111-aaaa-bbbb-cccc-555555555555", "mac_address": "de:ad:be:ef:00:01", "status": "ACTIVE"}}},
		"PUT /v1/nodes/{node}/states/raid": map[string]any{"logical_disks": []any{}}}
	probed := 0
	for _, f := range httpapi.Versions() {
		if f.Support != httpapi.Served && f.Support != httpapi.Elsewhere {
			continue
		}
		for _, p := range f.Probes {
			path := strings.NewReplacer("{node}", node, "{runbook}", "rb").Replace(p.Path)
			body := bodies[p.Method+" "+p.Path]
			at := call(t, ts, p.Method, path, fmt.Sprintf("1.%d", f.Minor), body)
			if at.status == 404 || at.status >= 500 {
				t.Errorf("1.%d %s %s: %d %s", f.Minor, p.Method, path, at.status, at.raw)
			}
			if f.Minor > 1 {
				before := call(t, ts, p.Method, path, fmt.Sprintf("1.%d", f.Minor-1), body)
				if before.status < 400 {
					t.Errorf("1.%d %s %s answers %d at 1.%d already", f.Minor, p.Method, path, before.status, f.Minor-1)
				}
			}
			probed++
		}
	}
	t.Logf("%d probes answered at their versions", probed)
}

// TestNewestFields checks the fields of 1.97 to 1.115 appear at their version and not before.
func TestNewestFields(t *testing.T) {
	ts, _ := newAPI(t)
	n := call(t, ts, "POST", "/v1/nodes", latest, map[string]any{"driver": "fake-hardware", "name": "new",
		"instance_info": map[string]any{"display_name": "web-1"}})
	mustStatus(t, n, 201)
	if n.body["instance_name"] != "web-1" || n.body["health"] != nil {
		t.Fatalf("instance_name from display_name, health: %s", n.raw)
	}
	// A name given stays; removing it lets the next display_name name the instance.
	p := call(t, ts, "PATCH", "/v1/nodes/new", latest, []map[string]any{{"op": "remove", "path": "/instance_name"}})
	mustStatus(t, p, 200)
	p = call(t, ts, "PATCH", "/v1/nodes/new", latest, []map[string]any{{"op": "add", "path": "/instance_info/display_name", "value": "web-2"}})
	if p.body["instance_name"] != "web-2" {
		t.Fatalf("instance_name after a new display_name: %s", p.raw)
	}
	mustStatus(t, call(t, ts, "PATCH", "/v1/nodes/new", latest, []map[string]any{{"op": "replace", "path": "/instance_name", "value": ""}}), 400)
	for _, c := range []struct {
		path, field string
		since       int
	}{
		{"/v1/nodes/new", "instance_name", 104},
		{"/v1/nodes/new", "health", 109},
	} {
		if _, ok := call(t, ts, "GET", c.path, fmt.Sprintf("1.%d", c.since), nil).body[c.field]; !ok {
			t.Errorf("%s has no %s at 1.%d", c.path, c.field, c.since)
		}
		if _, ok := call(t, ts, "GET", c.path, fmt.Sprintf("1.%d", c.since-1), nil).body[c.field]; ok {
			t.Errorf("%s shows %s at 1.%d", c.path, c.field, c.since-1)
		}
	}
	mustStatus(t, call(t, ts, "GET", "/v1/nodes?instance_name=web-1", "1.103", nil), 406)
	if l := call(t, ts, "GET", "/v1/nodes?instance_name=web-2", "1.104", nil); len(l.body["nodes"].([]any)) != 1 {
		t.Fatalf("instance_name filter: %s", l.raw)
	}

	g := call(t, ts, "POST", "/v1/portgroups", latest, map[string]any{"node_uuid": n.body["uuid"], "address": "52:54:00:00:00:aa", "name": "bond0"})
	mustStatus(t, g, 201)
	if g.body["dynamic_portgroup"] != false {
		t.Fatalf("portgroup: %s", g.raw)
	}
	mustStatus(t, call(t, ts, "POST", "/v1/portgroups", latest, map[string]any{"node_uuid": n.body["uuid"], "address": "52:54:00:00:00:ab", "dynamic_portgroup": true}), 400)
	port := call(t, ts, "POST", "/v1/ports", latest, map[string]any{"node_uuid": n.body["uuid"], "address": "52:54:00:00:00:01"})
	mustStatus(t, port, 201)
	if port.body["available_for_dynamic_portgroup"] != true {
		t.Fatalf("port default: %s", port.raw)
	}
	off := call(t, ts, "PATCH", "/v1/ports/"+port.body["uuid"].(string), latest, []map[string]any{{"op": "replace", "path": "/available_for_dynamic_portgroup", "value": false}})
	if off.body["available_for_dynamic_portgroup"] != false {
		t.Fatalf("patched port: %s", off.raw)
	}
	if _, ok := call(t, ts, "GET", "/v1/ports/"+port.body["uuid"].(string), "1.110", nil).body["available_for_dynamic_portgroup"]; ok {
		t.Fatal("available_for_dynamic_portgroup shown at 1.110")
	}
	mustStatus(t, call(t, ts, "POST", "/v1/ports", "1.110", map[string]any{"node_uuid": n.body["uuid"], "address": "52:54:00:00:00:02", "available_for_dynamic_portgroup": false}), 406)

	// OVN VTEP keys: accepted from 1.90 to 1.104 only.
	vtep := map[string]any{"port_id": "p", "vtep-logical-switch": "l", "vtep-physical-switch": "s"}
	mustStatus(t, call(t, ts, "POST", "/v1/ports", "1.90", map[string]any{"node_uuid": n.body["uuid"], "address": "52:54:00:00:00:03", "local_link_connection": vtep}), 201)
	mustStatus(t, call(t, ts, "POST", "/v1/ports", "1.105", map[string]any{"node_uuid": n.body["uuid"], "address": "52:54:00:00:00:04", "local_link_connection": vtep}), 400)
	mustStatus(t, call(t, ts, "POST", "/v1/ports", "1.89", map[string]any{"node_uuid": n.body["uuid"], "address": "52:54:00:00:00:05", "local_link_connection": vtep}), 400)

	// Port and portgroup filters: conductor_group (1.99), portgroup shard (1.106).
	mustStatus(t, call(t, ts, "GET", "/v1/ports?conductor_group=x", "1.98", nil), 406)
	if l := call(t, ts, "GET", "/v1/ports?conductor_group=x", "1.99", nil); len(l.body["ports"].([]any)) != 0 {
		t.Fatalf("conductor_group filter: %s", l.raw)
	}
	if l := call(t, ts, "GET", "/v1/portgroups?conductor_group=", "1.99", nil); len(l.body["portgroups"].([]any)) != 1 {
		t.Fatalf("empty conductor_group filter: %s", l.raw)
	}
	mustStatus(t, call(t, ts, "GET", "/v1/portgroups?shard=a", "1.105", nil), 406)
	if l := call(t, ts, "GET", "/v1/portgroups?shard=a", "1.106", nil); len(l.body["portgroups"].([]any)) != 0 {
		t.Fatalf("shard filter: %s", l.raw)
	}
}
