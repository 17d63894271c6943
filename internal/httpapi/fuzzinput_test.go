package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// allocConductor creates allocations straight in the store, so that allocation bodies reach
// the store without a running conductor; the fuzz targets call nothing else of it.
type allocConductor struct{ store *sqlstore.Store }

func (c allocConductor) Route(context.Context, string) (*conductor.Conductor, conductor.Remote, error) {
	return nil, c, nil
}

func (c allocConductor) Call(ctx context.Context, method string, req, resp any) error {
	r, ok := req.(conductor.CreateAllocationRequest)
	if method != conductor.OpCreateAllocation.Name || !ok {
		return fmt.Errorf("allocConductor: %s is not an allocation create", method)
	}
	a := r.Allocation
	a.State = "allocating"
	if err := c.store.CreateAllocation(ctx, a); err != nil {
		return err
	}
	*resp.(**ironwork.Allocation) = a
	return nil
}

// fuzzResources are the resources whose create bodies and list queries are fuzzed, with the
// list that must stay readable after every request.
var fuzzResources = []struct{ create, list string }{
	{"/v1/nodes", "/v1/nodes/detail"},
	{"/v1/ports", "/v1/ports/detail"},
	{"/v1/portgroups", "/v1/portgroups/detail"},
	{"/v1/chassis", "/v1/chassis/detail"},
	{"/v1/allocations", "/v1/allocations"},
	{"/v1/deploy_templates", "/v1/deploy_templates?detail=true"},
}

// fuzzSend sends one request and fails on a 5xx or a 4xx without Ironic's error body.
func fuzzSend(t *testing.T, ts *httptest.Server, method, url string, body []byte) (int, []byte) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", latest)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Fatalf("%s %s %q: status %d: %s", method, url, body, resp.StatusCode, b)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			ErrorMessage string `json:"error_message"`
		}
		if json.Unmarshal(b, &e) != nil || !json.Valid([]byte(e.ErrorMessage)) {
			t.Fatalf("%s %s %q: status %d without Ironic's error body: %s", method, url, body, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, b
}

func fuzzServer(f *testing.F) *httptest.Server {
	ts, _ := newAPI(f, func(o *httpapi.Options) { o.Conductor = allocConductor{store: o.Store} })
	req, _ := http.NewRequest("POST", ts.URL+"/v1/nodes", bytes.NewReader([]byte(`{"driver":"fake-hardware","name":"n"}`)))
	req.Header.Set("X-OpenStack-Ironic-API-Version", latest)
	resp, err := ts.Client().Do(req)
	if err != nil || resp.StatusCode != 201 {
		f.Fatalf("create node n: %v %v", err, resp)
	}
	resp.Body.Close()
	return ts
}

// FuzzCreateBodies posts arbitrary bodies to the create endpoint of every resource: a bad body
// gets a 4xx in Ironic's format, and whatever is accepted leaves the resource's list (with
// detail) readable, and an accepted node readable by its UUID.
func FuzzCreateBodies(f *testing.F) {
	f.Add(uint8(0), []byte(`{"driver":"fake-hardware","extra":{"n":1e400}}`))
	f.Add(uint8(0), []byte(`{"driver":"fake-hardware","description":"a\u0000b","properties":{"memory_mb":12}}`))
	f.Add(uint8(0), []byte(`{"driver":"fake-hardware","driver_info":{"ipmi_password":"p","l":[1,{"a":null}]}}`))
	f.Add(uint8(1), []byte(`{"node_uuid":"n","address":"52:54:00:00:00:01","local_link_connection":{"port_id":"x"}}`))
	f.Add(uint8(1), []byte(`{"node_uuid":"n","address":"52:54:00:00:00:02","extra":{"l":[1e999]}}`))
	f.Add(uint8(2), []byte(`{"node_uuid":"n","name":"g","mode":"802.3ad","properties":{"x":1}}`))
	f.Add(uint8(3), []byte(`{"description":"c","extra":{"a":[[[]]]}}`))
	f.Add(uint8(4), []byte(`{"resource_class":"rc","traits":["CUSTOM_A"],"candidate_nodes":["n"],"extra":{"x":1}}`))
	f.Add(uint8(4), []byte(`{"resource_class":"rc","name":"a\u0000"}`))
	f.Add(uint8(5), []byte(`{"name":"CUSTOM_A","steps":[{"interface":"deploy","step":"x","args":{"n":1e400},"priority":1}]}`))
	ts := fuzzServer(f)
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		r := fuzzResources[int(kind)%len(fuzzResources)]
		status, b := fuzzSend(t, ts, "POST", ts.URL+r.create, body)
		if status == http.StatusCreated && r.create == "/v1/nodes" {
			var n struct{ UUID string }
			if err := json.Unmarshal(b, &n); err != nil || n.UUID == "" {
				t.Fatalf("201 without a uuid: %s", b)
			}
			if got, _ := fuzzSend(t, ts, "GET", ts.URL+"/v1/nodes/"+n.UUID, nil); got != http.StatusOK {
				t.Fatalf("node created from %q: GET answers %d", body, got)
			}
		}
		if got, lb := fuzzSend(t, ts, "GET", ts.URL+r.list, nil); got != http.StatusOK {
			t.Fatalf("after POST %s %q: GET %s answers %d: %s", r.create, body, r.list, got, lb)
		}
	})
}

// FuzzListQueries sends arbitrary query strings to every list: a bad one gets a 4xx in Ironic's
// format, never a 5xx, and never a silently widened list.
func FuzzListQueries(f *testing.F) {
	for i, q := range []string{"driver=%00", "driver=nonexistent;x", "limit=2&sort_key=name&marker=x&fields=uuid",
		"node=n&address=zz", "detail=true&fields=uuid", "resource_class=%ff", "a=%zz&b=1", "sort_dir=desc&limit=1",
		"state=allocating&owner=x", "name=CUSTOM_A&detail=1", "provision_state=enroll&maintenance=false&associated=true"} {
		f.Add(uint8(i), q)
	}
	ts := fuzzServer(f)
	lists := []string{"/v1/nodes", "/v1/nodes/detail", "/v1/ports", "/v1/ports/detail", "/v1/portgroups",
		"/v1/portgroups/detail", "/v1/chassis", "/v1/chassis/detail", "/v1/allocations", "/v1/deploy_templates",
		"/v1/nodes/n/ports", "/v1/conductors", "/v1/drivers"}
	f.Fuzz(func(t *testing.T, kind uint8, query string) {
		fuzzSend(t, ts, "GET", ts.URL+lists[int(kind)%len(lists)]+"?"+query, nil)
	})
}
