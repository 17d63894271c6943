package main

import (
	"fmt"
	"strings"
)

// seedCalls creates, as the system admin, the nodes (with BMC passwords in driver_info), one
// port per node and two allocations.
func seedCalls(e *env) []call {
	owner := map[string][2]string{ // node -> owner, lessee (project labels)
		"owned": {"A", ""}, "leased": {"A", "B"}, "lessee-only": {"", "B"}, "unowned": {"", ""}, "other-project": {"C", ""},
	}
	var calls []call
	for i, n := range nodeNames {
		body := map[string]any{
			"uuid": nodeUUID[n], "name": "rbac-" + n, "driver": "fake-hardware", "resource_class": "rbac-rc",
			"driver_info":   map[string]any{"ipmi_address": fmt.Sprintf("192.0.2.%d", i+1), "ipmi_username": "root", "ipmi_password": "bmc-secret-" + n},
			"instance_info": map[string]any{"image_source": "http://192.0.2.100/" + n + ".qcow2"},
			"properties":    map[string]any{"cpus": 2, "memory_mb": 2048},
			"extra":         map[string]any{"seeded": true},
		}
		if o := owner[n][0]; o != "" {
			body["owner"] = e.projects[o]
		}
		if l := owner[n][1]; l != "" {
			body["lessee"] = e.projects[l]
		}
		calls = append(calls, call{method: "POST", path: "/v1/nodes", body: body})
		calls = append(calls, call{method: "POST", path: "/v1/ports", body: map[string]any{
			"uuid": portUUID(n), "node_uuid": nodeUUID[n], "address": fmt.Sprintf("52:54:00:aa:bb:%02x", i+1)}})
	}
	calls = append(calls,
		call{method: "POST", path: "/v1/allocations", body: map[string]any{"uuid": allocUUID["alloc-A"], "name": "rbac-alloc-a",
			"resource_class": "rbac-none", "owner": e.projects["A"]}},
		call{method: "POST", path: "/v1/allocations", body: map[string]any{"uuid": allocUUID["alloc-none"], "name": "rbac-alloc-none",
			"resource_class": "rbac-none"}},
	)
	return calls
}

// cleanupCalls deletes everything the run may have made (errors ignored).
func cleanupCalls() []call {
	var calls []call
	for _, u := range allocUUID {
		calls = append(calls, call{method: "DELETE", path: "/v1/allocations/" + u})
	}
	for _, p := range []string{"owner-admin", "owner-member", "lessee-member", "other-member", "system-admin", "system-reader"} {
		calls = append(calls,
			call{method: "DELETE", path: "/v1/allocations/" + personaUUID(p, "c1")},
			call{method: "DELETE", path: "/v1/ports/" + personaUUID(p, "b1")},
			call{method: "DELETE", path: "/v1/nodes/" + personaUUID(p, "a1")})
	}
	for _, n := range nodeNames {
		calls = append(calls, call{method: "DELETE", path: "/v1/ports/" + portUUID(n)})
		calls = append(calls, call{method: "DELETE", path: "/v1/nodes/" + nodeUUID[n] + "/maintenance"})
		calls = append(calls, call{method: "DELETE", path: "/v1/nodes/" + nodeUUID[n]})
	}
	return calls
}

// personaUUID is the fixed UUID of a record a persona tries to create (kind a1 node, b1 port,
// c1 allocation).
func personaUUID(p, kind string) string {
	idx := map[string]int{"system-admin": 1, "system-reader": 2, "owner-admin": 3, "owner-member": 4, "lessee-member": 5, "other-member": 6}[p]
	return fmt.Sprintf("6b0d8f3e-0000-4000-8000-0000000%s%03d", kind, idx)
}

// steps is the replay: the same requests as every persona, then a few token checks and a final
// look, as the system admin, at what the personas' changes did.
func steps(e *env) []step {
	var st []step
	add := func(p *persona, method, path string, body any, l look) {
		st = append(st, step{persona: p, call: call{method: method, path: path, body: body}, look: l})
	}
	nodeFields := fieldsOf("driver_info", "owner", "lessee", "instance_info", "properties", "extra", "driver_internal_info")
	for i, p := range e.personas {
		add(p, "GET", "/v1/nodes", nil, listOf("nodes", "owner", "lessee"))
		add(p, "GET", "/v1/nodes/detail", nil, listOf("nodes", "driver_info", "instance_info"))
		add(p, "GET", "/v1/nodes?fields=uuid,driver_info", nil, listOf("nodes", "driver_info"))
		add(p, "GET", "/v1/nodes?owner="+e.projects["A"], nil, listOf("nodes"))
		add(p, "GET", "/v1/nodes?lessee="+e.projects["B"], nil, listOf("nodes"))
		add(p, "GET", "/v1/nodes?project="+e.projects["C"], nil, listOf("nodes"))
		add(p, "GET", "/v1/nodes?resource_class=rbac-rc&detail=true", nil, listOf("nodes", "lessee"))
		for _, n := range nodeNames {
			add(p, "GET", "/v1/nodes/"+nodeUUID[n], nil, nodeFields)
		}
		add(p, "GET", "/v1/nodes/rbac-unowned", nil, statusOnly)
		add(p, "GET", "/v1/nodes/"+missing, nil, statusOnly)
		add(p, "GET", "/v1/nodes/"+nodeUUID["leased"]+"/states", nil, statusOnly)
		add(p, "GET", "/v1/nodes/"+nodeUUID["unowned"]+"/states", nil, statusOnly)
		add(p, "GET", "/v1/nodes/"+nodeUUID["leased"]+"/traits", nil, statusOnly)
		add(p, "GET", "/v1/nodes/"+nodeUUID["leased"]+"/history", nil, statusOnly)
		add(p, "GET", "/v1/nodes/"+nodeUUID["leased"]+"/validate", nil, statusOnly)
		add(p, "GET", "/v1/nodes/"+nodeUUID["owned"]+"/ports", nil, listOf("ports"))
		add(p, "GET", "/v1/nodes/"+nodeUUID["leased"]+"/ports", nil, listOf("ports"))
		add(p, "GET", "/v1/nodes/"+nodeUUID["unowned"]+"/ports", nil, listOf("ports"))
		add(p, "GET", "/v1/ports", nil, listOf("ports"))
		add(p, "GET", "/v1/ports/detail", nil, listOf("ports", "address"))
		add(p, "GET", "/v1/ports?node="+nodeUUID["unowned"], nil, listOf("ports"))
		for _, n := range []string{"owned", "leased", "unowned"} {
			add(p, "GET", "/v1/ports/"+portUUID(n), nil, fieldsOf("address"))
		}
		add(p, "GET", "/v1/allocations", nil, listOf("allocations", "owner"))
		add(p, "GET", "/v1/allocations/"+allocUUID["alloc-A"], nil, fieldsOf("owner"))
		add(p, "GET", "/v1/allocations/"+allocUUID["alloc-none"], nil, fieldsOf("owner"))
		add(p, "GET", "/v1/portgroups", nil, statusOnly)
		add(p, "GET", "/v1/chassis", nil, statusOnly)
		add(p, "GET", "/v1/drivers", nil, statusOnly)
		add(p, "GET", "/v1/conductors", nil, statusOnly)
		add(p, "GET", "/v1/deploy_templates", nil, statusOnly)
		add(p, "GET", "/v1/volume/connectors", nil, statusOnly)

		// Changes: each persona marks what it may change with its own name.
		mark := strings.ReplaceAll(p.name, "-", "_")
		leased := "/v1/nodes/" + nodeUUID["leased"]
		patch := func(path, op string, value any) []map[string]any {
			m := map[string]any{"op": op, "path": path}
			if value != nil {
				m["value"] = value
			}
			return []map[string]any{m}
		}
		add(p, "PATCH", leased, patch("/driver_info/ipmi_username", "replace", "by-"+p.name), fieldsOf("driver_info"))
		add(p, "PATCH", leased, patch("/driver_info/ipmi_password", "replace", "new-secret-"+p.name), fieldsOf("driver_info"))
		add(p, "PATCH", leased, patch("/extra/"+mark, "add", true), fieldsOf("extra"))
		add(p, "PATCH", leased, patch("/instance_info/"+mark, "add", "x"), fieldsOf("instance_info"))
		add(p, "PATCH", leased, patch("/description", "add", "by "+p.name), fieldsOf("description"))
		add(p, "PATCH", leased, patch("/properties/"+mark, "add", 1), fieldsOf("properties"))
		// Same values: the rule is checked by path, and the next personas find the node as seeded.
		add(p, "PATCH", leased, patch("/owner", "replace", e.projects["A"]), fieldsOf("owner"))
		add(p, "PATCH", leased, patch("/lessee", "replace", e.projects["B"]), fieldsOf("lessee"))
		add(p, "PATCH", "/v1/nodes/"+nodeUUID["other-project"], patch("/owner", "replace", e.projects["C"]), fieldsOf("owner"))
		add(p, "PATCH", "/v1/nodes/"+nodeUUID["unowned"], patch("/extra/"+mark, "add", true), fieldsOf("extra"))
		add(p, "PUT", leased+"/maintenance", map[string]any{"reason": "rbac check " + p.name}, statusOnly)
		add(p, "DELETE", leased+"/maintenance", nil, statusOnly)
		add(p, "PUT", leased+"/traits/CUSTOM_"+strings.ToUpper(mark), nil, statusOnly)
		add(p, "PATCH", "/v1/ports/"+portUUID("leased"), patch("/extra/"+mark, "add", true), fieldsOf("extra"))

		// Creations and deletions.
		pn := personaUUID(p.name, "a1")
		add(p, "POST", "/v1/nodes", map[string]any{"uuid": pn, "driver": "fake-hardware"}, fieldsOf("owner", "lessee"))
		add(p, "DELETE", "/v1/nodes/"+pn, nil, statusOnly)
		add(p, "POST", "/v1/ports", map[string]any{"uuid": personaUUID(p.name, "b1"), "node_uuid": nodeUUID["owned"],
			"address": fmt.Sprintf("52:54:00:cc:dd:%02x", i+1)}, fieldsOf("address"))
		add(p, "DELETE", "/v1/ports/"+personaUUID(p.name, "b1"), nil, statusOnly)
		add(p, "POST", "/v1/ports", map[string]any{"uuid": personaUUID(p.name, "b1"), "node_uuid": nodeUUID["unowned"],
			"address": fmt.Sprintf("52:54:00:ee:dd:%02x", i+1)}, fieldsOf("address"))
		add(p, "DELETE", "/v1/ports/"+personaUUID(p.name, "b1"), nil, statusOnly)
		add(p, "POST", "/v1/allocations", map[string]any{"uuid": personaUUID(p.name, "c1"), "resource_class": "rbac-none"}, fieldsOf("owner"))
		add(p, "DELETE", "/v1/allocations/"+personaUUID(p.name, "c1"), nil, statusOnly)
		if p.project != "" {
			add(p, "DELETE", "/v1/nodes/"+nodeUUID["other-project"], nil, statusOnly)
			add(p, "DELETE", "/v1/allocations/"+allocUUID["alloc-none"], nil, statusOnly)
		}
	}
	// Tokens: none, malformed, unknown.
	empty, bad := "", "gAAAAABnot-a-real-token"
	for _, tok := range []*string{&empty, &bad} {
		st = append(st, step{persona: e.admin, token: tok, call: call{method: "GET", path: "/v1/nodes"}, look: statusOnly})
		st = append(st, step{persona: e.admin, token: tok, call: call{method: "GET", path: "/v1/nodes/" + nodeUUID["owned"]}, look: statusOnly})
	}
	st = append(st, step{persona: e.admin, token: &empty, call: call{method: "GET", path: "/v1"}, look: statusOnly})
	// What the personas' changes left, as the system admin sees it.
	for _, n := range nodeNames {
		st = append(st, step{persona: e.admin, call: call{method: "GET", path: "/v1/nodes/" + nodeUUID[n]},
			look: fieldsOf("driver_info", "owner", "lessee", "instance_info", "properties", "extra", "description", "traits", "maintenance")})
	}
	st = append(st, step{persona: e.admin, call: call{method: "GET", path: "/v1/ports/" + portUUID("leased")}, look: fieldsOf("extra")})
	st = append(st, step{persona: e.admin, call: call{method: "GET", path: "/v1/allocations"}, look: listOf("allocations", "owner")})
	return st
}
