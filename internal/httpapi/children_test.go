package httpapi_test

import (
	"slices"
	"testing"
)

// TestNodeChildren lists a parent's child nodes (1.83), hidden below it as in Ironic.
func TestNodeChildren(t *testing.T) {
	ts, _ := newAPI(t)
	const v = "1.83"
	parent := call(t, ts, "POST", "/v1/nodes", v, map[string]any{"driver": "fake-hardware", "name": "mother"})
	mustStatus(t, parent, 201)
	var kids []string
	for _, name := range []string{"kid-1", "kid-2"} {
		r := call(t, ts, "POST", "/v1/nodes", v, map[string]any{"driver": "fake-hardware", "name": name, "parent_node": "mother"})
		mustStatus(t, r, 201)
		kids = append(kids, r.body["uuid"].(string))
	}
	mustStatus(t, call(t, ts, "POST", "/v1/nodes", v, map[string]any{"driver": "fake-hardware", "name": "stranger"}), 201)

	mustStatus(t, call(t, ts, "GET", "/v1/nodes/mother/children", "1.82", nil), 404)
	r := call(t, ts, "GET", "/v1/nodes/mother/children", v, nil)
	mustStatus(t, r, 200)
	var got []string
	for _, u := range r.body["children"].([]any) {
		got = append(got, u.(string))
	}
	if !slices.Equal(got, kids) {
		t.Fatalf("children %v, want %v", got, kids)
	}
	link, _ := r.body["links"].(map[string]any)
	if link["rel"] != "children" || link["href"] != ts.URL+"/v1/nodes?parent_node="+parent.body["uuid"].(string) {
		t.Fatalf("links: %s", r.raw)
	}
	if r := call(t, ts, "GET", "/v1/nodes/stranger/children", v, nil); len(r.body["children"].([]any)) != 0 {
		t.Fatalf("a childless node: %s", r.raw)
	}
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/nobody/children", v, nil), 404)
}
