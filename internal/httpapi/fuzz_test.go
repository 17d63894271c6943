package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
)

// FuzzNegotiate checks that any version header either gives a version in range or a 406.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "1.1", "1.96", "latest", "2.0", "1.", "1.-5", "baremetal 1.50", "compute 2.1, baremetal 1.40", "1.9999999999999999999"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, legacy, std string) {
		h := http.Header{}
		h.Set("X-OpenStack-Ironic-API-Version", legacy)
		h.Set("OpenStack-API-Version", std)
		v, err := negotiate(h)
		if err != nil {
			if ironwork.ErrorCode(err) != ironwork.ENOTACCEPTABLE {
				t.Fatalf("error code %q for %q/%q", ironwork.ErrorCode(err), legacy, std)
			}
			return
		}
		if v < MinMinor || v > MaxMinor {
			t.Fatalf("version %d out of range for %q/%q", v, legacy, std)
		}
	})
}

// FuzzPatch decodes arbitrary PATCH documents and applies them to a node: the result is either
// a client error or a node whose read-only fields are untouched.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`[{"op":"add","path":"/properties/cpus","value":4}]`,
		`[{"op":"remove","path":"/extra/a/b"}]`,
		`[{"op":"replace","path":"/name","value":"x"},{"op":"add","path":"/extra/l/-","value":1}]`,
		`[{"op":"add","path":"/provision_state","value":"active"}]`,
		`[{"op":"add","path":"/extra","value":{"l":[1,2,3]}},{"op":"remove","path":"/extra/l/1"}]`,
		`{}`, `[]`, `[1]`, `[{"op":"test"}]`,
	} {
		f.Add([]byte(s))
	}
	t := nodeFields()
	f.Fuzz(func(tt *testing.T, body []byte) {
		ops, err := decodePatch(body)
		if err != nil {
			if ironwork.ErrorCode(err) != ironwork.EINVALID {
				tt.Fatalf("decode error code %q: %v", ironwork.ErrorCode(err), err)
			}
			return
		}
		n := &ironwork.Node{UUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", Driver: "fake-hardware",
			ProvisionState: ironwork.Enroll, Extra: ironwork.JSONObject{"a": map[string]any{"b": 1.0}, "l": []any{1.0}},
			Interfaces: map[ironwork.InterfaceKind]string{}}
		_, err = patchObject(t, n, ops, MaxMinor)
		if err != nil {
			code := ironwork.ErrorCode(err)
			if code != ironwork.EINVALID && code != ironwork.ENOTACCEPTABLE {
				tt.Fatalf("patch error code %q: %v", code, err)
			}
			return
		}
		if n.ProvisionState != ironwork.Enroll || n.UUID != "1be26c0b-03f2-4d2e-ae87-c02d7f33c123" {
			tt.Fatalf("a patch changed read-only fields: %+v", n)
		}
		if strings.Contains(string(body), "provision_state") && n.ProvisionState != ironwork.Enroll {
			tt.Fatal("provision_state changed")
		}
	})
}
