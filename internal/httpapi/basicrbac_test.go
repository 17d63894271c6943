package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/policy"
)

// TestBasicAuthProjects checks the http_basic file's project and roles: a line without them is
// a system administrator as before, a scoped line sees its project's nodes only, with its
// roles' rights, and malformed lines are refused with their number.
func TestBasicAuthProjects(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hash)
	file := filepath.Join(t.TempDir(), "htpasswd")
	lines := "root:" + h + "\n" + "olive:" + h + ":P1:member\n" + "larry:" + h + ":P2:admin\n" + "audit:" + h + "::reader\n"
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := httpapi.LoadBasicAuth(file)
	if err != nil {
		t.Fatal(err)
	}
	// A policy file keeps clean steps for system administrators.
	enforcer, err := policy.Parse([]byte(`"baremetal:node:set_provision_state:clean_steps": "role:admin and system_scope:all"`), "")
	if err != nil {
		t.Fatal(err)
	}
	ts, store := newAPI(t, func(o *httpapi.Options) { o.Auth, o.Policy = auth, enforcer })
	ctx := context.Background()
	for _, n := range []*ironwork.Node{{Name: "mine", Owner: "P1", Lessee: "P2"}, {Name: "theirs", Owner: "P3"}} {
		n.Driver, n.ProvisionState = "fake-hardware", ironwork.Manageable
		if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.SetBasicAuth(user, "pw")
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.80")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 64<<10)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	for _, tc := range []struct {
		user, method, path, body string
		want                     int
		contains, lacks          string
	}{
		{"root", "GET", "/v1/nodes", "", 200, "theirs", ""},
		{"audit", "GET", "/v1/nodes", "", 200, "theirs", ""},
		{"audit", "PATCH", "/v1/nodes/mine", `[{"op":"add","path":"/extra/a","value":1}]`, 403, "", ""},
		{"olive", "GET", "/v1/nodes", "", 200, "mine", "theirs"},
		{"olive", "GET", "/v1/nodes/theirs", "", 404, "", ""},
		{"olive", "PATCH", "/v1/nodes/mine", `[{"op":"add","path":"/driver_info/a","value":1}]`, 200, "", ""},
		{"larry", "PATCH", "/v1/nodes/mine", `[{"op":"add","path":"/driver_info/a","value":1}]`, 403, "update:driver_info", ""},
		{"larry", "PUT", "/v1/nodes/mine/maintenance", `{"reason":"x"}`, 503, "conductor", ""}, // allowed: lessee admin
		{"larry", "DELETE", "/v1/nodes/mine", "", 403, "node:delete", ""},
		{"larry", "GET", "/v1/ports?node=theirs", "", 404, "", "P3"},
		{"olive", "DELETE", "/v1/nodes/mine", "", 403, "", ""},
		{"olive", "PUT", "/v1/nodes/mine/states/provision", `{"target":"clean","clean_steps":[{"interface":"deploy","step":"erase_devices"}]}`, 403, "clean_steps", ""},
		{"olive", "PUT", "/v1/nodes/mine/states/provision", `{"target":"provide"}`, 503, "conductor", ""},
	} {
		st, body := as(tc.user, tc.method, tc.path, tc.body)
		if st != tc.want || !strings.Contains(body, tc.contains) || (tc.lacks != "" && strings.Contains(body, tc.lacks)) {
			t.Errorf("%s %s %s: %d %s, want %d with %q without %q", tc.user, tc.method, tc.path, st, body, tc.want, tc.contains, tc.lacks)
		}
	}
	for _, bad := range []string{"u:" + h + ":P1\n", "u:" + h + ":P1:\n", "u:" + h + ":P1:a:b\n"} {
		f := filepath.Join(t.TempDir(), "bad")
		os.WriteFile(f, []byte("ok:"+h+"\n"+bad), 0o600)
		if _, err := httpapi.LoadBasicAuth(f); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want an error at line 2", bad, err)
		}
	}
}
