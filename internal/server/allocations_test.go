package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/allocations"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// addAvailableNodes stores n nodes that are ready for allocation: available, powered off, of
// resource class rc, with the given traits and properties.
func addAvailableNodes(t testing.TB, srv *server.Server, prefix string, n int, rc string, traits []string, props ironwork.JSONObject) []*ironwork.Node {
	t.Helper()
	var out []*ironwork.Node
	for i := range n {
		node := &ironwork.Node{Name: fmt.Sprintf("%s-%d", prefix, i), Driver: "fake-hardware", ResourceClass: rc,
			ProvisionState: ironwork.Available, PowerState: ironwork.PowerOff, Traits: traits, Properties: props}
		if err := srv.Store().CreateNode(context.Background(), node); err != nil {
			t.Fatal(err)
		}
		out = append(out, node)
	}
	return out
}

// waitAllocation polls an allocation until it leaves the allocating state.
func waitAllocation(t testing.TB, srv *server.Server, ident string) *ironwork.Allocation {
	t.Helper()
	// Bounded at a minute: 100 racing allocations on a loaded 2-core machine took over 10 s.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		a, err := srv.Store().GetAllocation(context.Background(), ident)
		if err != nil {
			t.Fatal(err)
		}
		if a.State != "allocating" {
			return a
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("allocation %s still allocating", ident)
	return nil
}

// rawCall sends a request with a microversion and returns the status and body.
func rawCall(t testing.TB, method, url, version, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAllocationsGophercloud(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t))
			ctx := context.Background()
			c := gopherClient(t, srv, "1.60")
			nodes := addAvailableNodes(t, srv, "gpu", 3, "gpu", []string{"CUSTOM_GPU", "HW_CPU_X86_AVX2"},
				ironwork.JSONObject{"cpu_arch": "x86_64", "capabilities": "boot_mode:uefi,disk_label:gpt"})
			addAvailableNodes(t, srv, "plain", 2, "gpu", nil, nil)

			a, err := allocations.Create(ctx, c, allocations.CreateOpts{
				Name: "alloc-1", ResourceClass: "gpu", Traits: []string{"CUSTOM_GPU"},
				CandidateNodes: []string{nodes[0].Name, nodes[1].UUID}, Extra: map[string]string{"team": "ml"},
			}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if a.State != "allocating" || a.Name != "alloc-1" || a.Extra["team"] != "ml" || a.CandidateNodes[0] != nodes[0].UUID {
				t.Fatalf("created: %+v", a)
			}
			done := waitAllocation(t, srv, a.UUID)
			if done.State != "active" || (done.NodeUUID != nodes[0].UUID && done.NodeUUID != nodes[1].UUID) {
				t.Fatalf("allocation: %+v", done)
			}
			got, err := allocations.Get(ctx, c, "alloc-1").Extract()
			if err != nil || got.NodeUUID != done.NodeUUID || got.State != "active" {
				t.Fatalf("get: %+v %v", got, err)
			}
			n, err := srv.Store().GetNode(ctx, done.NodeUUID)
			if err != nil || n.InstanceUUID != a.UUID || n.AllocationUUID != a.UUID {
				t.Fatalf("node after allocation: %+v %v", n, err)
			}
			pages, err := allocations.List(c, allocations.ListOpts{State: "active"}).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			list, _ := allocations.ExtractAllocations(pages)
			if len(list) != 1 || list[0].UUID != a.UUID {
				t.Fatalf("list: %+v", list)
			}

			// Capabilities (an Ironwork extension) and node sub-resource.
			st, body := rawCall(t, "POST", srv.URL()+"/v1/allocations", "1.60",
				`{"resource_class":"gpu","capabilities":{"cpu_arch":"x86_64","boot_mode":"uefi"}}`)
			if st != http.StatusCreated {
				t.Fatalf("create with capabilities: %d %s", st, body)
			}
			var capAlloc struct{ UUID string }
			json.Unmarshal([]byte(body), &capAlloc)
			capDone := waitAllocation(t, srv, capAlloc.UUID)
			if capDone.State != "active" || !strings.HasPrefix(nodeName(t, srv, capDone.NodeUUID), "gpu-") {
				t.Fatalf("capability allocation: %+v", capDone)
			}
			st, body = rawCall(t, "GET", srv.URL()+"/v1/nodes/"+capDone.NodeUUID+"/allocation", "1.60", "")
			if st != http.StatusOK || !strings.Contains(body, capAlloc.UUID) {
				t.Fatalf("node allocation: %d %s", st, body)
			}
			if st, body = rawCall(t, "DELETE", srv.URL()+"/v1/nodes/"+capDone.NodeUUID+"/allocation", "1.60", ""); st != http.StatusNoContent {
				t.Fatalf("delete node allocation: %d %s", st, body)
			}
			if n, _ := srv.Store().GetNode(ctx, capDone.NodeUUID); n.InstanceUUID != "" || n.AllocationUUID != "" {
				t.Fatalf("node not freed: %+v", n)
			}
			if st, _ = rawCall(t, "GET", srv.URL()+"/v1/nodes/"+capDone.NodeUUID+"/allocation", "1.60", ""); st != http.StatusNotFound {
				t.Fatalf("allocation of a free node: %d", st)
			}

			// No match: error with the reason.
			bad, err := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "nonexistent"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			failed := waitAllocation(t, srv, bad.UUID)
			if failed.State != "error" || failed.LastError != "Failed to process allocation "+bad.UUID+": no available nodes match the resource class nonexistent." {
				t.Fatalf("no-match allocation: %+v", failed)
			}
			trait, _ := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "gpu", Traits: []string{"CUSTOM_MISSING"}}).Extract()
			if f := waitAllocation(t, srv, trait.UUID); f.State != "error" || !strings.Contains(f.LastError, "no suitable nodes have the requested traits CUSTOM_MISSING") {
				t.Fatalf("trait mismatch: %+v", f)
			}

			// Validation.
			_, err = allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "gpu", Traits: []string{"lower-case"}}).Extract()
			wantStatus(t, err, http.StatusBadRequest)
			_, err = allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "gpu", CandidateNodes: []string{"no-such-node"}}).Extract()
			wantStatus(t, err, http.StatusBadRequest)
			_, err = allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "gpu", Name: "alloc-1"}).Extract()
			wantStatus(t, err, http.StatusConflict)
			old := gopherClient(t, srv, "1.51")
			_, err = allocations.Get(ctx, old, a.UUID).Extract()
			wantStatus(t, err, http.StatusNotFound)
			// Below 1.52, as Ironic: reads and the node's allocation 404, writes 405, all with
			// Ironic's message.
			const tooOld = "The API version does not allow allocations"
			if got := faultOf(t, err, http.StatusNotFound); got != tooOld {
				t.Errorf("GET at 1.51: %q", got)
			}
			_, err = allocations.Create(ctx, old, allocations.CreateOpts{ResourceClass: "gpu"}).Extract()
			if got := faultOf(t, err, http.StatusMethodNotAllowed); got != tooOld {
				t.Errorf("POST at 1.51: %q", got)
			}
			_, err = old.Delete(ctx, old.ServiceURL("nodes", "gpu-0", "allocation"), nil)
			if got := faultOf(t, err, http.StatusNotFound); got != tooOld {
				t.Errorf("DELETE of the node's allocation at 1.51: %q", got)
			}
			if st, _ := rawCall(t, "POST", srv.URL()+"/v1/allocations", "1.59", `{"resource_class":"gpu","owner":"p1"}`); st != http.StatusNotAcceptable {
				t.Fatalf("owner at 1.59: %d", st)
			}
			if st, _ := rawCall(t, "POST", srv.URL()+"/v1/allocations", "1.57", `{"node":"gpu-0"}`); st != http.StatusBadRequest {
				t.Fatalf("node at 1.57: %d", st)
			}
			if st, _ := rawCall(t, "POST", srv.URL()+"/v1/allocations", "1.60", `{}`); st != http.StatusBadRequest {
				t.Fatalf("no resource class: %d", st)
			}
			if st, _ := rawCall(t, "PATCH", srv.URL()+"/v1/allocations/"+a.UUID, "1.56", `[{"op":"add","path":"/name","value":"x"}]`); st != http.StatusMethodNotAllowed {
				t.Fatalf("patch at 1.56: %d", st)
			}
			st, body = rawCall(t, "PATCH", srv.URL()+"/v1/allocations/"+a.UUID, "1.60", `[{"op":"replace","path":"/name","value":"renamed"}]`)
			if st != http.StatusOK || !strings.Contains(body, `"name":"renamed"`) {
				t.Fatalf("patch name: %d %s", st, body)
			}
			// fields keeps the links, as Ironic's sanitize_dict does.
			st, body = rawCall(t, "GET", srv.URL()+"/v1/allocations?fields=uuid", "1.60", "")
			var some struct{ Allocations []map[string]any }
			if err := json.Unmarshal([]byte(body), &some); st != http.StatusOK || err != nil || len(some.Allocations) == 0 {
				t.Fatalf("list with fields: %d %v %s", st, err, body)
			}
			for _, x := range some.Allocations {
				if _, ok := x["links"]; !ok || len(x) != 2 {
					t.Errorf("allocation with fields=uuid: %v, want uuid and links", x)
				}
			}
			if st, _ = rawCall(t, "PATCH", srv.URL()+"/v1/allocations/"+a.UUID, "1.60", `[{"op":"replace","path":"/resource_class","value":"x"}]`); st != http.StatusBadRequest {
				t.Fatalf("patch resource_class: %d", st)
			}

			// Deleting frees the node; an active node refuses.
			if err := allocations.Delete(ctx, c, a.UUID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if n, _ := srv.Store().GetNode(ctx, done.NodeUUID); n.InstanceUUID != "" || n.AllocationUUID != "" {
				t.Fatalf("node not freed: %+v", n)
			}
			_, err = allocations.Get(ctx, c, a.UUID).Extract()
			wantStatus(t, err, http.StatusNotFound)

			// Deleting a node deletes its allocation.
			last, _ := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "gpu", CandidateNodes: []string{"plain-0"}}).Extract()
			if f := waitAllocation(t, srv, last.UUID); f.State != "active" {
				t.Fatalf("allocation of plain-0: %+v", f)
			}
			if _, err := srv.Store().UpdateNode(ctx, "plain-0", func(n *ironwork.Node) error { n.Maintenance = true; return nil }); err != nil {
				t.Fatal(err)
			}
			if st, body := rawCall(t, "DELETE", srv.URL()+"/v1/nodes/plain-0", "1.60", ""); st != http.StatusNoContent {
				t.Fatalf("delete node: %d %s", st, body)
			}
			_, err = allocations.Get(ctx, c, last.UUID).Extract()
			wantStatus(t, err, http.StatusNotFound)

			// Backfill an active node deployed without an allocation.
			active := addAvailableNodes(t, srv, "deployed", 1, "gpu", nil, nil)[0]
			inst := "8a1d2f6e-64c4-4cb6-9d7e-3b7c3b5b0f11"
			if _, err := srv.Store().UpdateNode(ctx, active.UUID, func(n *ironwork.Node) error {
				n.ProvisionState, n.InstanceUUID = ironwork.Active, inst
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			st, body = rawCall(t, "POST", srv.URL()+"/v1/allocations", "1.60", `{"node":"deployed-0","resource_class":"other"}`)
			if st != http.StatusBadRequest || !strings.Contains(body, "does not match the requested resource class other") {
				t.Fatalf("mismatched backfill: %d %s", st, body)
			}
			// As in Ironic, the refused backfill stays behind in state error.
			if f, err := srv.Store().GetAllocation(ctx, inst); err != nil || f.State != "error" || f.NodeUUID != "" {
				t.Fatalf("refused backfill: %+v %v", f, err)
			}
			if st, body = rawCall(t, "DELETE", srv.URL()+"/v1/allocations/"+inst, "1.60", ""); st != http.StatusNoContent {
				t.Fatalf("delete failed backfill: %d %s", st, body)
			}
			st, body = rawCall(t, "POST", srv.URL()+"/v1/allocations", "1.60", `{"node":"deployed-0","name":"backfilled"}`)
			if st != http.StatusCreated || !strings.Contains(body, `"state":"active"`) || !strings.Contains(body, `"uuid":"`+inst+`"`) {
				t.Fatalf("backfill: %d %s", st, body)
			}
			st, body = rawCall(t, "DELETE", srv.URL()+"/v1/allocations/backfilled", "1.60", "")
			if st != http.StatusConflict || !strings.Contains(body, "because the node is active") {
				t.Fatalf("delete on active node: %d %s", st, body)
			}
		})
	}
}

func nodeName(t testing.TB, srv *server.Server, uuid string) string {
	n, err := srv.Store().GetNode(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return n.Name
}

// TestAllocationsConcurrent races 100 allocations for 50 matching nodes: exactly 50 win, each
// node once, and 50 end in error.
func TestAllocationsConcurrent(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			srv := startServer(t, target.DSN(t))
			nodes := addAvailableNodes(t, srv, "race", 50, "baremetal", []string{"CUSTOM_RACE"}, nil)
			addAvailableNodes(t, srv, "other", 10, "other-class", []string{"CUSTOM_RACE"}, nil)
			runRace(t, []*server.Server{srv}, srv, nodes, 100)
		})
	}
}

// runRace posts allocs allocations spread over the API servers and checks the outcome in store.
func runRace(t *testing.T, apis []*server.Server, srv *server.Server, nodes []*ironwork.Node, allocs int) {
	t.Helper()
	ctx := context.Background()
	uuids := make([]string, allocs)
	var wg sync.WaitGroup
	errs := make(chan error, allocs)
	for i := range allocs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := gopherClient(t, apis[i%len(apis)], "1.60")
			a, err := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "baremetal", Traits: []string{"CUSTOM_RACE"}}).Extract()
			if err != nil {
				errs <- err
				return
			}
			uuids[i] = a.UUID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	byNode := map[string]string{}
	active, failed := 0, 0
	for _, u := range uuids {
		a := waitAllocation(t, srv, u)
		switch a.State {
		case "active":
			active++
			if prev, dup := byNode[a.NodeUUID]; dup {
				t.Fatalf("node %s given to %s and %s", a.NodeUUID, prev, a.UUID)
			}
			byNode[a.NodeUUID] = a.UUID
		case "error":
			failed++
			if a.LastError == "" {
				t.Fatalf("failed allocation without a reason: %+v", a)
			}
		}
	}
	if active != len(nodes) || failed != allocs-len(nodes) {
		t.Fatalf("active %d, error %d; want %d and %d", active, failed, len(nodes), allocs-len(nodes))
	}
	for _, n := range nodes {
		got, err := srv.Store().GetNode(ctx, n.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if got.AllocationUUID == "" || byNode[n.UUID] != got.AllocationUUID || got.InstanceUUID != got.AllocationUUID {
			t.Fatalf("node %s: allocation %q instance %q, want %q", n.Name, got.AllocationUUID, got.InstanceUUID, byNode[n.UUID])
		}
	}
}

// TestAllocationsSplitRoles races allocations through two API-only servers whose calls go over
// JSON-RPC to two conductors sharing one PostgreSQL database.
func TestAllocationsSplitRoles(t *testing.T) {
	dsn := sqlstoretest.PostgresDSN(t)
	role := func(role, host string) func(*server.Config) {
		return func(c *server.Config) { c.Role, c.Hostname = role, host }
	}
	startServer(t, dsn, role("conductor", "alloc-c1"))
	startServer(t, dsn, role("conductor", "alloc-c2"))
	a1 := startServer(t, dsn, role("api", "alloc-a1"))
	a2 := startServer(t, dsn, role("api", "alloc-a2"))
	nodes := addAvailableNodes(t, a1, "split", 50, "baremetal", []string{"CUSTOM_RACE"}, nil)
	runRace(t, []*server.Server{a1, a2}, a1, nodes, 100)
	var hosts []string
	rows, err := a1.Store().DB().Query("SELECT DISTINCT c.hostname FROM allocations a JOIN conductors c ON c.id = a.conductor_affinity")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		rows.Scan(&h)
		hosts = append(hosts, h)
	}
	t.Logf("allocations processed by conductors %v", hosts)
	if len(hosts) == 0 {
		t.Fatal("no allocation records the conductor that processed it")
	}
}

// TestAllocationTearDown deploys an allocated node and undeploys it: the allocation goes away
// with the instance, as in Ironic, and the node can be allocated again.
func TestAllocationTearDown(t *testing.T) {
	srv := startServer(t, "sqlite://"+t.TempDir()+"/ironwork.db")
	c := gopherClient(t, srv, "1.87")
	ctx := context.Background()
	n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "alloc-life", Driver: "fake-hardware", ResourceClass: "baremetal"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitFor(t, c, n.UUID, 5*time.Second, inState("manageable"))
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitFor(t, c, n.UUID, 10*time.Second, inState("available"))
	a, err := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "baremetal"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got := waitAllocation(t, srv, a.UUID); got.State != "active" || got.NodeUUID != n.UUID {
		t.Fatalf("allocation: %+v", got)
	}
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	active := waitFor(t, c, n.UUID, 30*time.Second, inState("active"))
	if active.InstanceUUID != a.UUID || active.AllocationUUID != a.UUID {
		t.Fatalf("deployed node lost its allocation: instance %q allocation %v", active.InstanceUUID, active.AllocationUUID)
	}
	err = allocations.Delete(ctx, c, a.UUID).ExtractErr()
	wantStatus(t, err, http.StatusConflict)
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted})
	back := waitFor(t, c, n.UUID, 30*time.Second, inState("available"))
	if back.InstanceUUID != "" || back.AllocationUUID != "" {
		t.Fatalf("undeployed node keeps instance %q allocation %v", back.InstanceUUID, back.AllocationUUID)
	}
	_, err = allocations.Get(ctx, c, a.UUID).Extract()
	wantStatus(t, err, http.StatusNotFound)
}

// BenchmarkAllocations measures allocations per second through the HTTP API on SQLite: each
// iteration creates one allocation against a fleet with a free node for every iteration, 16 at a
// time, and waits for all to finish.
func BenchmarkAllocations(b *testing.B) {
	srv := startServer(b, "sqlite://"+b.TempDir()+"/ironwork.db")
	addAvailableNodes(b, srv, "bench", b.N, "baremetal", []string{"CUSTOM_BENCH"}, nil)
	b.ResetTimer()
	uuids := make([]string, b.N)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range b.N {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, body := rawCall(b, "POST", srv.URL()+"/v1/allocations", "1.60", `{"resource_class":"baremetal","traits":["CUSTOM_BENCH"]}`)
			if st != http.StatusCreated {
				b.Errorf("create: %d %s", st, body)
				return
			}
			var a struct{ UUID string }
			json.Unmarshal([]byte(body), &a)
			uuids[i] = a.UUID
		}()
	}
	wg.Wait()
	for _, u := range uuids {
		if u != "" {
			if a := waitAllocation(b, srv, u); a.State != "active" {
				b.Fatalf("allocation %s: %s %s", u, a.State, a.LastError)
			}
		}
	}
}
