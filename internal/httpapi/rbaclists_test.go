package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/httpapi"
)

// TestProjectListsAndRunbookOwners checks, under Ironic's default rules, what the stop-13
// report left open: volume connector and target lists and the runbook list filtered to the
// caller's project (Ironic's check_volume_list_policy and check_list_policy: list_all for
// system readers, list with the project as filter otherwise), and the runbook rules checked
// against the runbook's owner (check_runbook_policy_and_retrieve): 403, never 404, for
// another project's runbook; public runbooks readable by anyone but only through
// GET /v1/runbooks/{ident}; owner and public changed only by the system; project-scoped
// creation owned by the creator's project and never public; baremetal:runbook:use when a
// provision request names a runbook.
func TestProjectListsAndRunbookOwners(t *testing.T) {
	ts, store := newAPI(t, func(o *httpapi.Options) { o.Auth = headerAuth{} })
	ids := matrixFixtures(t, store)
	ctx := context.Background()
	owned, err := store.GetNode(ctx, ids["owner_node_ident"])
	if err != nil {
		t.Fatal(err)
	}
	leased, err := store.GetNode(ctx, ids["lessee_node_ident"])
	if err != nil {
		t.Fatal(err)
	}
	ownerConn := &ironwork.VolumeConnector{UUID: "4f2d7a3e-2222-4c6b-9b0a-000000000001", NodeID: owned.ID, NodeUUID: owned.UUID, Type: "iqn", ConnectorID: "iqn.2026-12.org.example:owner"}
	leasedConn := &ironwork.VolumeConnector{UUID: "4f2d7a3e-2222-4c6b-9b0a-000000000002", NodeID: leased.ID, NodeUUID: leased.UUID, Type: "iqn", ConnectorID: "iqn.2026-12.org.example:lessee"}
	for _, c := range []*ironwork.VolumeConnector{ownerConn, leasedConn} {
		if err := store.CreateVolumeConnector(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	leasedTarget := &ironwork.VolumeTarget{UUID: "4f2d7a3e-2222-4c6b-9b0a-000000000003", NodeID: leased.ID, NodeUUID: leased.UUID,
		VolumeType: "iscsi", VolumeID: "vol-1", BootIndex: 0}
	if err := store.CreateVolumeTarget(ctx, leasedTarget); err != nil {
		t.Fatal(err)
	}
	const thirdProject = "0c9a7f6e-3333-4d4d-8e8e-123456789abc"
	runbook := func(uuid, name, owner string, public bool) *ironwork.Runbook {
		b := &ironwork.Runbook{UUID: uuid, Name: name, Owner: owner, Public: public, Traits: []string{name},
			Steps: []ironwork.RunbookStep{{Interface: "deploy", Step: "erase_devices_metadata", Args: ironwork.JSONObject{}, Order: 1}}}
		if err := store.CreateRunbook(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	ownRB := runbook("7a1b0c2d-0000-4000-8000-000000000001", "CUSTOM_OWNED", ownerProject, false)
	lesseeRB := runbook("7a1b0c2d-0000-4000-8000-000000000002", "CUSTOM_LESSEE", lesseeProject, false)
	publicRB := runbook("7a1b0c2d-0000-4000-8000-000000000003", "CUSTOM_PUBLIC", "", true)
	sysRB := runbook("7a1b0c2d-0000-4000-8000-000000000004", "CUSTOM_SYSTEM", "", false)

	type persona struct{ name, project, roles string }
	var (
		system      = persona{"system-reader", "", "reader"} // system scope
		ownerAdmin  = persona{"owner-admin", ownerProject, "admin,manager,member,reader"}
		ownerMember = persona{"owner-member", ownerProject, "member,reader"}
		ownerReader = persona{"owner-reader", ownerProject, "reader"}
		lesseeRead  = persona{"lessee-reader", lesseeProject, "reader"}
		thirdAdmin  = persona{"third-party-admin", thirdProject, "admin,manager,member,reader"}
	)
	call := func(who persona, method, path string, body any) (int, map[string]any) {
		t.Helper()
		rd := strings.NewReader("")
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req, _ := http.NewRequest(method, ts.URL+path, rd)
		req.Header.Set("X-Auth-Token", who.name)
		req.Header.Set("X-Roles", who.roles)
		if who.project == "" {
			req.Header.Set("OpenStack-System-Scope", "all")
		} else {
			req.Header.Set("X-Project-Id", who.project)
		}
		req.Header.Set("X-OpenStack-Ironic-API-Version", "latest")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		return resp.StatusCode, got
	}

	lists := []struct {
		who        persona
		path, key  string
		wantStatus int
		want       []string // the UUIDs listed, sorted
	}{
		{system, "/v1/volume/connectors", "connectors", 200, []string{ownerConn.UUID, leasedConn.UUID}},
		{ownerReader, "/v1/volume/connectors", "connectors", 200, []string{ownerConn.UUID, leasedConn.UUID}},
		{lesseeRead, "/v1/volume/connectors", "connectors", 200, []string{leasedConn.UUID}},
		{lesseeRead, "/v1/volume/connectors/detail", "connectors", 200, []string{leasedConn.UUID}},
		{thirdAdmin, "/v1/volume/connectors", "connectors", 200, nil},
		{thirdAdmin, "/v1/volume/connectors?node=" + owned.UUID, "", 404, nil},
		{lesseeRead, "/v1/volume/connectors?node=" + owned.UUID, "", 404, nil},
		{lesseeRead, "/v1/volume/targets", "targets", 200, []string{leasedTarget.UUID}},
		{thirdAdmin, "/v1/volume/targets/detail", "targets", 200, nil},
		{system, "/v1/runbooks", "runbooks", 200, []string{ownRB.UUID, lesseeRB.UUID, publicRB.UUID, sysRB.UUID}},
		{ownerReader, "/v1/runbooks", "runbooks", 200, []string{ownRB.UUID, publicRB.UUID}},
		{lesseeRead, "/v1/runbooks", "runbooks", 200, []string{lesseeRB.UUID, publicRB.UUID}},
		{thirdAdmin, "/v1/runbooks", "runbooks", 200, []string{publicRB.UUID}},
		{ownerReader, "/v1/runbooks?project=" + lesseeProject, "", 403, nil},
		// Node lists: Ironic checks `project` against the caller's project (403 for another);
		// `owner` and `lessee` filter within what the caller may list (found by the RBAC
		// comparison with Ironic 21.4, docs/compat-report-rbac.md).
		{lesseeRead, "/v1/nodes?owner=" + ownerProject, "nodes", 200, []string{leased.UUID}},
		{thirdAdmin, "/v1/nodes?owner=" + ownerProject, "nodes", 200, nil},
		{lesseeRead, "/v1/nodes?project=" + ownerProject, "", 403, nil},
		{thirdAdmin, "/v1/nodes?project=" + lesseeProject, "", 403, nil},
		{lesseeRead, "/v1/nodes?project=" + lesseeProject, "nodes", 200, []string{leased.UUID}},
	}
	for _, l := range lists {
		code, got := call(l.who, "GET", l.path, nil)
		if code != l.wantStatus {
			t.Errorf("GET %s as %s: %d %s, want %d", l.path, l.who.name, code, errorText(got), l.wantStatus)
			continue
		}
		if l.key == "" {
			continue
		}
		var uuids []string
		items, _ := got[l.key].([]any)
		for _, it := range items {
			uuids = append(uuids, it.(map[string]any)["uuid"].(string))
		}
		slices.Sort(uuids)
		want := slices.Sorted(slices.Values(l.want))
		if !slices.Equal(uuids, want) {
			t.Errorf("GET %s as %s listed %v, want %v", l.path, l.who.name, uuids, want)
		}
	}

	rb := func(b *ironwork.Runbook) string { return "/v1/runbooks/" + b.UUID }
	patch := func(path string, value any) []any {
		return []any{map[string]any{"op": "replace", "path": path, "value": value}}
	}
	const ok = 0 // any answer but 403 and 404
	cases := []struct {
		who          persona
		method, path string
		body         any
		want         int
	}{
		{ownerReader, "GET", rb(ownRB), nil, 200},
		{ownerReader, "GET", rb(lesseeRB), nil, 403},
		{thirdAdmin, "GET", rb(ownRB), nil, 403},
		{thirdAdmin, "GET", rb(publicRB), nil, 200},
		{thirdAdmin, "GET", rb(publicRB) + "/traits", nil, 403},
		{ownerReader, "GET", rb(ownRB) + "/traits", nil, 200},
		{ownerReader, "GET", rb(sysRB), nil, 403},
		{system, "GET", rb(lesseeRB), nil, 200},
		{thirdAdmin, "GET", "/v1/runbooks/7a1b0c2d-0000-4000-8000-0000000000ff", nil, 404},
		{ownerAdmin, "PATCH", rb(ownRB), patch("/extra", map[string]any{"a": "b"}), 200},
		{ownerMember, "PATCH", rb(ownRB), patch("/extra", map[string]any{"a": "c"}), 403},
		{ownerAdmin, "PATCH", rb(ownRB), patch("/public", true), 403},
		{ownerAdmin, "PATCH", rb(ownRB), patch("/owner", thirdProject), 403},
		{ownerAdmin, "PATCH", rb(lesseeRB), patch("/extra", map[string]any{"a": "b"}), 403},
		{ownerAdmin, "PATCH", rb(publicRB), patch("/extra", map[string]any{"a": "b"}), 403},
		{ownerAdmin, "PUT", rb(ownRB) + "/traits/CUSTOM_MORE", nil, ok},
		{thirdAdmin, "PUT", rb(ownRB) + "/traits/CUSTOM_MORE", nil, 403},
		{thirdAdmin, "DELETE", rb(ownRB), nil, 403},
		{ownerAdmin, "POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_THEIRS", "owner": thirdProject,
			"steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "order": 1}}}, 400},
		{ownerAdmin, "POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_SHARED", "public": true,
			"steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "order": 1}}}, 400},
		{ownerMember, "POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_MINE",
			"steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "order": 1}}}, 403},
		// baremetal:runbook:use is checked against the runbook's owner: a public runbook has
		// none, so under Ironic's defaults only the system uses it.
		{ownerAdmin, "PUT", "/v1/nodes/" + owned.UUID + "/states/provision", map[string]any{"target": "clean", "runbook": lesseeRB.UUID}, 403},
		{ownerAdmin, "PUT", "/v1/nodes/" + owned.UUID + "/states/provision", map[string]any{"target": "clean", "runbook": publicRB.UUID}, 403},
		{ownerMember, "PUT", "/v1/nodes/" + owned.UUID + "/states/provision", map[string]any{"target": "clean", "runbook": ownRB.UUID}, 403},
		{ownerAdmin, "PUT", "/v1/nodes/" + owned.UUID + "/states/provision", map[string]any{"target": "clean", "runbook": ownRB.UUID}, ok},
	}
	for _, c := range cases {
		code, got := call(c.who, c.method, c.path, c.body)
		msg := errorText(got)
		switch {
		case c.want == ok && (code == 403 || code == 404):
			t.Errorf("%s %s as %s: %d %s, Ironic lets it through", c.method, c.path, c.who.name, code, msg)
		case c.want != ok && code != c.want:
			t.Errorf("%s %s as %s: %d %s, want %d", c.method, c.path, c.who.name, code, msg, c.want)
		}
	}
	// A project's runbook is its own.
	code, got := call(ownerAdmin, "POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_MINE",
		"steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "order": 1}}})
	if code != 201 || got["owner"] != ownerProject || got["public"] != false {
		t.Errorf("runbook created by the owner's manager: %d owner %v public %v, want 201 owned by %s", code, got["owner"], got["public"], ownerProject)
	}
	t.Logf("%d list cases, %d cases", len(lists), len(cases)+1)
}
