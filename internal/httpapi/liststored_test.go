package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
)

// randomJSON builds a random JSON object with the values that make rendering differ: secrets
// in names and strings, URLs with passwords, characters JSON or HTML escape, non-ASCII text,
// numbers of every size, nesting.
func randomJSON(rng *rand.Rand, depth int) ironwork.JSONObject {
	keys := []string{"ipmi_address", "ipmi_password", "ipmi_username", "redfish_password", "Auth_Token", "cpus", "memory_mb",
		"image_url", "configdrive", "image_source", "kernel", "root_gb", "snmp_auth_key", "note", "nested", "list", "a", "Z", "ü"}
	strs := []string{"", "admin", "10.0.0.1", "password=abc x", "http://user:pw@host/x", "<b>&amp;", "a\nb\tc\x01\b\f",
		"\u2028", "ünïcode", "--token abc", "<secret>s</secret>", "x86_64", "KEY: v", `quote " and \ backslash`}
	nums := []float64{0, 1, -1, 8, 32768, 1.5, -0.25, 1234567.5, 1e20, 1e-7, 123456789012345, 1234567890123456, 3.14159}
	n := rng.IntN(6)
	out := ironwork.JSONObject{}
	for range n {
		k := keys[rng.IntN(len(keys))]
		switch r := rng.IntN(10); {
		case r < 4:
			out[k] = strs[rng.IntN(len(strs))]
		case r < 7:
			out[k] = nums[rng.IntN(len(nums))]
		case r == 7:
			out[k] = rng.IntN(2) == 0
		case r == 8 && depth < 3:
			out[k] = randomJSON(rng, depth+1)
		default:
			out[k] = []any{strs[rng.IntN(len(strs))], nums[rng.IntN(len(nums))], nil, map[string]any{"password": "p", "x": 1.0}}
		}
	}
	return out
}

// getBody reads path with API version 1.82 and fails the test unless the status is want.
func getBody(t *testing.T, base, path string, want int) []byte {
	t.Helper()
	b, _ := getFull(t, base+path, "1.82", want)
	return b
}

// getFull reads url at API version and fails the test unless the status is want; it returns
// the body and the length the answer declared (-1 when it was sent in chunks).
func getFull(t *testing.T, url, version string, want int) ([]byte, int64) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return b, resp.ContentLength
}

// TestListMatchesGetOnRandomNodes checks that a list, which renders the JSON objects from their
// stored text, gives for every node the same bytes as GET of that node, which decodes them and
// encodes them again: on random nodes, with secrets to mask, with fields=, and on stored text
// that the API would not write (spaces, keys out of order or repeated, escapes, huge numbers).
func TestListMatchesGetOnRandomNodes(t *testing.T) {
	ts, store := newAPI(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(21, 19))
	var uuids []string
	for i := range 150 {
		n := &ironwork.Node{Name: fmt.Sprintf("n-%03d", i), Driver: "fake-hardware", ProvisionState: ironwork.Available,
			DriverInfo: randomJSON(rng, 0), DriverInternalInfo: randomJSON(rng, 0), Extra: randomJSON(rng, 0),
			InstanceInfo: randomJSON(rng, 0), Properties: randomJSON(rng, 0), RAIDConfig: randomJSON(rng, 0),
			TargetRAIDConfig: randomJSON(rng, 0), CleanStep: randomJSON(rng, 0), DeployStep: randomJSON(rng, 0),
			ServiceStep: randomJSON(rng, 0), NetworkData: randomJSON(rng, 0)}
		if i%7 == 0 {
			n.DriverInfo, n.Extra = nil, nil // NULL columns
		}
		if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, n.UUID)
	}
	// Stored text in forms the API does not write, but a hand or an older version might have.
	odd := []string{` { "b" : 1 , "a" : [ 1 , 2 ] } `, `{"b":1,"a":2}`, `{"a":1,"a":2}`, `{"k":"\u0070assword=1"}`,
		`{"ipmi_passw\u006frd":"x"}`, `{"n":1e400,"m":-0,"o":1E5,"p":0.10}`, `null`, `{"s":"\u003c\u2028\ud800"}`}
	for i, raw := range odd {
		for _, col := range []string{"driver_info", "extra", "instance_info"} {
			if _, err := store.DB().ExecContext(ctx, "UPDATE nodes SET "+col+" = $1 WHERE uuid = $2", raw, uuids[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	var page struct {
		Nodes []json.RawMessage `json:"nodes"`
	}
	fieldsets := []string{"", "uuid,driver_info,instance_info,driver_internal_info",
		"extra,properties,name,clean_step,deploy_step,raid_config,target_raid_config,network_data"}
	for _, fields := range fieldsets {
		list, one := "/v1/nodes/detail?limit=1000", ""
		if fields != "" {
			list, one = "/v1/nodes?limit=1000&fields="+fields, "?fields="+fields
		}
		if err := json.Unmarshal(getBody(t, ts.URL, list, 200), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Nodes) != len(uuids) {
			t.Fatalf("%s: %d nodes, want %d", list, len(page.Nodes), len(uuids))
		}
		for i, got := range page.Nodes {
			want := getBody(t, ts.URL, "/v1/nodes/"+uuids[i]+one, 200)
			if string(got) != string(want) {
				t.Fatalf("node %d, fields %q: the list shows\n%s\nGET shows\n%s", i, fields, got, want)
			}
		}
	}
	// A node whose stored text is not an object is left out of lists, as before, whatever the
	// fields asked for; the others are all there.
	if _, err := store.DB().ExecContext(ctx, "UPDATE nodes SET network_data = '[1]' WHERE uuid = $1", uuids[100]); err != nil {
		t.Fatal(err)
	}
	for _, list := range []string{"/v1/nodes/detail", "/v1/nodes?fields=uuid,name", "/v1/nodes"} {
		if err := json.Unmarshal(getBody(t, ts.URL, list, 200), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Nodes) != len(uuids)-1 || strings.Contains(fmt.Sprint(page.Nodes), uuids[100]) {
			t.Fatalf("%s: %d nodes, want %d without %s", list, len(page.Nodes), len(uuids)-1, uuids[100])
		}
	}
}
