package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/httpapi"
)

// TestEveryRouteHasARule checks that every route the API serves names its Ironic rule, so that
// none falls under ironwork:unlisted_route.
func TestEveryRouteHasARule(t *testing.T) {
	s := httpapi.New(httpapi.Options{Drivers: ironwork.DefaultDriverConfig()})
	if u := s.UnguardedRoutes(); len(u) != 0 {
		t.Fatalf("routes without an Ironic rule: %v", u)
	}
}

// TestNewRoutesPolicy checks the routes of BIOS, firmware, indicators, children, vendor
// passthru, external events and volumes under Ironic's default rules, for the owner project,
// the lessee project and a third project, as Ironic's project-scoped matrix expects them:
// readers of the owner and the lessee see a node's BIOS, firmware, indicators and volume
// objects, only the owner's members set an indicator, vendor passthru and events are for the
// system, and a third project does not see the node at all (404).
func TestNewRoutesPolicy(t *testing.T) {
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
	ownerConn := &ironwork.VolumeConnector{UUID: "4f2d7a3e-1111-4c6b-9b0a-000000000001", NodeID: owned.ID, NodeUUID: owned.UUID, Type: "iqn", ConnectorID: "iqn.2026-12.org.example:owner"}
	leasedConn := &ironwork.VolumeConnector{UUID: "4f2d7a3e-1111-4c6b-9b0a-000000000002", NodeID: leased.ID, NodeUUID: leased.UUID, Type: "iqn", ConnectorID: "iqn.2026-12.org.example:lessee"}
	for _, c := range []*ironwork.VolumeConnector{ownerConn, leasedConn} {
		if err := store.CreateVolumeConnector(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	const thirdProject = "0c9a7f6e-3333-4d4d-8e8e-123456789abc"
	type persona struct{ name, project, roles string }
	var (
		ownerAdmin  = persona{"owner-admin", ownerProject, "admin,manager,member,reader"}
		ownerMember = persona{"owner-member", ownerProject, "member,reader"}
		ownerReader = persona{"owner-reader", ownerProject, "reader"}
		lesseeAdmin = persona{"lessee-admin", lesseeProject, "admin,manager,member,reader"}
		lesseeRead  = persona{"lessee-reader", lesseeProject, "reader"}
		thirdAdmin  = persona{"third-party-admin", thirdProject, "admin,manager,member,reader"}
	)
	own, lease := "/v1/nodes/"+owned.UUID, "/v1/nodes/"+leased.UUID
	ok := 0 // any answer that is not a policy refusal
	cases := []struct {
		who          persona
		method, path string
		body         any
		want         int // 403, 404, or ok
	}{
		{ownerReader, "GET", own + "/bios", nil, ok},
		{lesseeRead, "GET", lease + "/bios", nil, ok},
		{thirdAdmin, "GET", own + "/bios", nil, 404},
		{ownerReader, "GET", own + "/bios/ProcTurboMode", nil, ok},
		{thirdAdmin, "GET", own + "/bios/ProcTurboMode", nil, 404},
		{ownerReader, "GET", own + "/firmware", nil, ok},
		{lesseeRead, "GET", lease + "/firmware", nil, ok},
		{thirdAdmin, "GET", own + "/firmware", nil, 404},
		{ownerReader, "GET", own + "/management/indicators", nil, ok},
		{lesseeRead, "GET", lease + "/management/indicators", nil, ok},
		{thirdAdmin, "GET", own + "/management/indicators", nil, 404},
		{ownerReader, "GET", own + "/management/indicators/led@system", nil, ok},
		{ownerMember, "PUT", own + "/management/indicators/led@system", map[string]any{"state": "ON"}, ok},
		{ownerReader, "PUT", own + "/management/indicators/led@system", map[string]any{"state": "ON"}, 403},
		{lesseeAdmin, "PUT", lease + "/management/indicators/led@system", map[string]any{"state": "ON"}, 403},
		{thirdAdmin, "PUT", own + "/management/indicators/led@system", map[string]any{"state": "ON"}, 404},
		{ownerReader, "GET", own + "/children", nil, ok},
		{thirdAdmin, "GET", own + "/children", nil, 404},
		{ownerAdmin, "GET", own + "/vendor_passthru/methods", nil, 403},
		{ownerAdmin, "POST", own + "/vendor_passthru?method=x", map[string]any{}, 403},
		{lesseeAdmin, "POST", lease + "/vendor_passthru/x", map[string]any{}, 403},
		{thirdAdmin, "POST", own + "/vendor_passthru?method=x", map[string]any{}, 404},
		{ownerAdmin, "GET", "/v1/drivers/fake-hardware/vendor_passthru/methods", nil, 403},
		{ownerAdmin, "POST", "/v1/drivers/fake-hardware/vendor_passthru?method=x", map[string]any{}, 403},
		{ownerAdmin, "GET", "/v1/drivers/fake-hardware/raid/logical_disk_properties", nil, 403},
		{ownerAdmin, "POST", "/v1/events", map[string]any{"events": []any{}}, 403},
		{ownerReader, "GET", own + "/volume/connectors", nil, ok},
		{lesseeRead, "GET", lease + "/volume/connectors", nil, ok},
		{thirdAdmin, "GET", own + "/volume/connectors", nil, 404},
		{ownerReader, "GET", "/v1/volume/connectors/" + ownerConn.UUID, nil, ok},
		{lesseeRead, "GET", "/v1/volume/connectors/" + leasedConn.UUID, nil, ok},
		{thirdAdmin, "GET", "/v1/volume/connectors/" + ownerConn.UUID, nil, 404},
		{ownerReader, "PATCH", "/v1/volume/connectors/" + ownerConn.UUID, []any{map[string]any{"op": "add", "path": "/extra/a", "value": "b"}}, 403},
		{ownerMember, "PATCH", "/v1/volume/connectors/" + ownerConn.UUID, []any{map[string]any{"op": "add", "path": "/extra/a", "value": "b"}}, ok},
		{thirdAdmin, "DELETE", "/v1/volume/connectors/" + ownerConn.UUID, nil, 404},
		{ownerAdmin, "POST", "/v1/volume/connectors", map[string]any{"node_uuid": owned.UUID, "type": "iqn", "connector_id": "iqn.2026-12.org.example:new"}, ok},
		{thirdAdmin, "POST", "/v1/volume/connectors", map[string]any{"node_uuid": owned.UUID, "type": "iqn", "connector_id": "iqn.2026-12.org.example:third"}, 403},
		{ownerAdmin, "DELETE", "/v1/volume/connectors/" + ownerConn.UUID, nil, ok},
	}
	for _, c := range cases {
		var body *strings.Reader
		if c.body != nil {
			b, _ := json.Marshal(c.body)
			body = strings.NewReader(string(b))
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequest(c.method, ts.URL+c.path, body)
		req.Header.Set("X-Auth-Token", c.who.name)
		req.Header.Set("X-Project-Id", c.who.project)
		req.Header.Set("X-Roles", c.who.roles)
		req.Header.Set("X-OpenStack-Ironic-API-Version", "latest")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		msg := errorText(got)
		refused := resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusNotFound && strings.HasSuffix(msg, " could not be found.") && !strings.Contains(msg, "BIOS")
		switch {
		case c.want == ok && refused:
			t.Errorf("%s %s as %s: %d %s, Ironic lets it through", c.method, c.path, c.who.name, resp.StatusCode, msg)
		case c.want != ok && resp.StatusCode != c.want:
			t.Errorf("%s %s as %s: %d %s, Ironic answers %d", c.method, c.path, c.who.name, resp.StatusCode, msg, c.want)
		}
	}
	t.Logf("%d cases", len(cases))
}
