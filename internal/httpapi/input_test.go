package httpapi_test

import (
	"strings"
	"testing"
)

// TestInputRefusedCentrally checks the central input checks: each request gets a 400 whose
// message names what is wrong, and nothing is stored.
func TestInputRefusedCentrally(t *testing.T) {
	ts, _ := newAPI(t)
	for _, c := range []struct {
		name, method, path, body, msg string
	}{
		{"huge number in extra", "POST", "/v1/nodes", `{"driver":"fake-hardware","extra":{"n":1e400}}`, "/extra/n: the number 1e400 is out of range"},
		{"huge negative number in a list", "POST", "/v1/nodes", `{"driver":"fake-hardware","properties":{"l":[1,-1e999]}}`, "/properties/l/1"},
		{"NUL in description", "POST", "/v1/nodes", `{"driver":"fake-hardware","description":"a\u0000b"}`, "/description: it contains a NUL character"},
		{"NUL in a member name", "POST", "/v1/chassis", `{"extra":{"a\u0000":1}}`, "NUL character"},
		{"lone high surrogate", "POST", "/v1/chassis", `{"description":"\ud800"}`, "UTF-16 surrogate"},
		{"lone low surrogate", "POST", "/v1/chassis", `{"extra":{"k":"a\udc00b"}}`, "UTF-16 surrogate"},
		{"reversed pair", "POST", "/v1/chassis", `{"description":"\udc00\ud800"}`, "UTF-16 surrogate"},
		{"invalid UTF-8", "POST", "/v1/chassis", "{\"description\":\"\xff\"}", "not valid UTF-8"},
		{"deep nesting", "POST", "/v1/chassis", `{"extra":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, "nested more than 64 levels"},
		{"huge number in a patch", "PATCH", "/v1/nodes/n1", `[{"op":"add","path":"/extra/n","value":1e400}]`, "out of range"},
		{"NUL in a patch path", "PATCH", "/v1/nodes/n1", `[{"op":"add","path":"/extra/a\u0000","value":1}]`, "NUL character"},
		{"NUL in a filter", "GET", "/v1/nodes?driver=%00", "", `query parameter "driver"`},
		{"invalid UTF-8 in a filter", "GET", "/v1/nodes?owner=%ff", "", "not valid UTF-8"},
		{"NUL in an identifier", "GET", "/v1/ports/not-a-uuid%00", "", "Invalid path"},
		{"semicolon separator", "GET", "/v1/nodes?driver=nonexistent;x", "", "semicolon"},
		{"bad escape", "GET", "/v1/nodes?driver=%zz", "", "Invalid query string"},
		{"over Go's parameter cap", "GET", "/v1/nodes?" + strings.Repeat("x=1&", 10000) + "x=1", "", "exceeded limit"},
		{"just under Go's parameter cap", "GET", "/v1/nodes?" + strings.Repeat("x=1&", 9998) + "x=1", "", "Unexpected arguments: x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, ts, c.method, c.path, "1.96", c.body)
			mustStatus(t, r, 400)
			if _, msg := r.fault(t); !strings.Contains(msg, c.msg) {
				t.Errorf("message %q does not contain %q", msg, c.msg)
			}
		})
	}
	r := call(t, ts, "GET", "/v1/nodes/detail", "1.96", nil)
	mustStatus(t, r, 200)
	if nodes := r.body["nodes"].([]any); len(nodes) != 0 {
		t.Errorf("refused requests stored %d nodes", len(nodes))
	}
}

// TestUncleanPathsAreNotRedirected checks that paths the router would clean get Ironic's 404,
// not a redirect to another resource.
func TestUncleanPathsAreNotRedirected(t *testing.T) {
	ts, _ := newAPI(t)
	for _, p := range []string{"/v1/nodes/../chassis", "/v1//nodes", "/v1/./nodes", "/v1/nodes/%2e%2e/ports"} {
		r := call(t, ts, "GET", p, "1.96", nil)
		mustStatus(t, r, 404)
		r.fault(t)
	}
}

// TestMaskingInStringsListsAndURLs checks that secrets inside strings, lists and URLs of
// driver_info and instance_info are hidden in API output but kept for PATCH.
func TestMaskingInStringsListsAndURLs(t *testing.T) {
	ts, _ := newAPI(t)
	r := call(t, ts, "POST", "/v1/nodes", "1.96", map[string]any{"driver": "fake-hardware", "name": "m",
		"driver_info": map[string]any{"redfish_address": "https://admin:S3cr3t@10.0.0.5", "kernel_append_params": "--password S3cr3t",
			"list": []any{map[string]any{"ipmi_password": "S3cr3t"}, "token=S3cr3t"}},
		"instance_info": map[string]any{"image_source": "http://user:S3cr3t@images/img.qcow2"}})
	mustStatus(t, r, 201)
	for _, path := range []string{"/v1/nodes/m", "/v1/nodes/detail"} {
		r = call(t, ts, "GET", path, "1.96", nil)
		mustStatus(t, r, 200)
		if strings.Contains(r.raw, "S3cr3t") {
			t.Errorf("GET %s shows a secret: %s", path, r.raw)
		}
		if !strings.Contains(r.raw, "https://admin:******@10.0.0.5") || !strings.Contains(r.raw, "--password ******") {
			t.Errorf("GET %s: masked values missing: %s", path, r.raw)
		}
	}
	r = call(t, ts, "PATCH", "/v1/nodes/m", "1.96", `[{"op":"add","path":"/driver_info/x","value":1}]`)
	mustStatus(t, r, 200)
	if strings.Contains(r.raw, "S3cr3t") {
		t.Errorf("PATCH answer shows a secret: %s", r.raw)
	}
}

// TestSurrogatePairsAccepted checks that a proper surrogate pair, and an escaped backslash
// followed by "ud800", are text the API keeps.
func TestSurrogatePairsAccepted(t *testing.T) {
	ts, _ := newAPI(t)
	r := call(t, ts, "POST", "/v1/chassis", "1.96", `{"description":"\ud83d\ude00 \\ud800"}`)
	mustStatus(t, r, 201)
	if got := r.body["description"]; got != "\U0001F600 \\ud800" {
		t.Errorf("description = %q", got)
	}
}
