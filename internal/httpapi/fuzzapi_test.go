package httpapi_test

import "testing"

// FuzzAPIRequests sends arbitrary bodies and query strings to the write and list endpoints of
// a real server: bad input must give a 4xx in Ironic's error format, never a 5xx.
func FuzzAPIRequests(f *testing.F) {
	f.Add("POST", "/v1/nodes", "", []byte(`{"driver":"fake-hardware","name":"n"}`))
	f.Add("POST", "/v1/nodes", "", []byte(`{"driver":"fake-hardware","properties":{"memory_mb":"12"}}`))
	f.Add("PATCH", "/v1/nodes/n", "", []byte(`[{"op":"add","path":"/extra/x","value":1}]`))
	f.Add("POST", "/v1/ports", "", []byte(`{"node_ident":"n","address":"52:54:00:00:00:01"}`))
	f.Add("POST", "/v1/portgroups", "", []byte(`{"node_uuid":"n"}`))
	f.Add("POST", "/v1/chassis", "", []byte(`{"description":5}`))
	f.Add("PUT", "/v1/nodes/n/traits", "", []byte(`{"traits":["CUSTOM_A"]}`))
	f.Add("GET", "/v1/nodes", "limit=2&sort_key=name&marker=x&fields=uuid", []byte(nil))
	f.Add("GET", "/v1/ports/detail", "node=n&address=zz", []byte(nil))
	f.Add("POST", "/v1/deploy_templates", "", []byte(`{"name":"CUSTOM_A","steps":[{"interface":"deploy","step":"x","args":{},"priority":"1"}]}`))
	f.Add("PATCH", "/v1/deploy_templates/CUSTOM_A", "", []byte(`[{"op":"replace","path":"/steps/0/priority","value":-1}]`))
	f.Add("GET", "/v1/deploy_templates", "limit=1&sort_key=steps&fields=name", []byte(nil))
	f.Add("POST", "/v1/inspection_rules", "", []byte(`{"uuid":"0e4d2a42-9a3c-4a39-a1b4-5d3a5a4b6c7d","conditions":[{"op":"!eq","args":{"values":["{inventory[cpu][count]}","{item}"]},"loop":[1,2],"multiple":"all"}],"actions":[{"op":"set-attribute","args":["/properties/cpus","{inventory[cpu][count]}"]}]}`))
	f.Add("PATCH", "/v1/inspection_rules/0e4d2a42-9a3c-4a39-a1b4-5d3a5a4b6c7d", "", []byte(`[{"op":"add","path":"/actions/-","value":{"op":"fail","args":{"msg":"x"}}}]`))
	f.Add("GET", "/v1/inspection_rules", "detail=true&sort_key=priority&phase=main", []byte(nil))
	f.Add("POST", "/v1/events", "", []byte(`{"events":[{"event":"network.bind_port","port_id":"11111111-aaaa-bbbb-cccc-555555555555","mac_address":"de:ad:be:ef:00:01","status":"ACTIVE","device_id":null}]}`))
	f.Add("POST", "/v1/runbooks", "", []byte(`{"name":"CUSTOM_RB","steps":[{"interface":"deploy","step":"x","args":{},"order":"1"}],"public":true}`))
	f.Add("PATCH", "/v1/runbooks/CUSTOM_RB", "", []byte(`[{"op":"add","path":"/owner","value":"p"}]`))
	f.Add("PUT", "/v1/runbooks/CUSTOM_RB/traits", "", []byte(`{"traits":["CUSTOM_A"]}`))
	f.Add("POST", "/v1/volume/connectors", "", []byte(`{"node_uuid":"1be26c0b-03f2-4d2e-ae87-c02d7f33c123","type":"iqn","connector_id":"iqn.x"}`))
	f.Add("POST", "/v1/volume/targets", "", []byte(`{"node_uuid":"1be26c0b-03f2-4d2e-ae87-c02d7f33c123","volume_type":"iscsi","boot_index":1e300,"volume_id":"v"}`))
	f.Add("GET", "/v1/volume/targets", "node=n&sort_key=boot_index&detail=true", []byte(nil))
	ts, _ := newAPI(f)
	paths := map[string]bool{"/v1/events": true, "/v1/runbooks": true, "/v1/runbooks/CUSTOM_RB": true,
		"/v1/runbooks/CUSTOM_RB/traits": true, "/v1/volume/connectors": true, "/v1/volume/targets": true, "/v1/nodes": true, "/v1/nodes/n": true, "/v1/ports": true, "/v1/portgroups": true,
		"/v1/chassis": true, "/v1/nodes/n/traits": true, "/v1/ports/detail": true, "/v1/nodes/detail": true,
		"/v1/deploy_templates": true, "/v1/deploy_templates/CUSTOM_A": true,
		"/v1/inspection_rules": true, "/v1/inspection_rules/0e4d2a42-9a3c-4a39-a1b4-5d3a5a4b6c7d": true}
	methods := map[string]bool{"GET": true, "POST": true, "PATCH": true, "PUT": true, "DELETE": true}
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		if !methods[method] || !paths[path] {
			return
		}
		fuzzSend(t, ts, method, ts.URL+path+"?"+query, body)
	})
}
