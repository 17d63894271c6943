package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// cacheAPI is one API server on a shared database.
type cacheAPI struct {
	ts    *httptest.Server
	api   *httpapi.Server
	store *sqlstore.Store
}

// openCacheAPI starts an API server on the database dsn, with links based on a fixed public
// URL so that several servers give the same bytes.
func openCacheAPI(t *testing.T, dsn string, ring httpapi.Ring, mutate ...func(*httpapi.Options)) cacheAPI {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	opts := httpapi.Options{Store: store, Drivers: ironwork.DefaultDriverConfig(), PublicURL: "http://ironwork.test:6385", Ring: ring}
	for _, m := range mutate {
		m(&opts)
	}
	api := httpapi.New(opts)
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	return cacheAPI{ts, api, store}
}

// get sends a GET with the microversion and extra headers and returns the status and body.
func (c cacheAPI) get(t *testing.T, path, version string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.ts.URL+path, nil)
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := c.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testRing assigns nodes to conductors by the first hex digit of their UUID; hosts can change
// between requests, as a hash ring does when conductors come and go.
type testRing struct {
	mu    sync.Mutex
	hosts []string
}

func (r *testRing) ConductorFor(n *ironwork.Node) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.hosts) == 0 || n.UUID == "" {
		return ""
	}
	return r.hosts[int(n.UUID[0])%len(r.hosts)] + "-" + n.ConductorGroup
}

func (r *testRing) set(hosts ...string) {
	r.mu.Lock()
	r.hosts = hosts
	r.mu.Unlock()
}

// listViews are the node lists and single nodes compared between cached and uncached servers:
// several microversions (fields appear, provision_state is shown differently), fields=, the
// default fields, paging, filters and the conductor filter.
var listViews = []struct{ path, version string }{
	// One node, by UUID and by name: first, so that after a write they
	// meet the entries the lists of the step before made, at their old revision.
	{"/v1/nodes/{uuid}", "1.1"},
	{"/v1/nodes/{uuid}", "1.38"},
	{"/v1/nodes/{uuid}", latest},
	{"/v1/nodes/{uuid}?fields=uuid,driver_info,instance_info,traits,conductor,extra", latest},
	{"/v1/nodes/{uuid}?fields=name", latest},
	{"/v1/nodes/cache-0", latest},
	{"/v1/nodes/detail", "1.1"},
	{"/v1/nodes/detail", "1.38"},
	{"/v1/nodes/detail", "1.52"},
	{"/v1/nodes/detail", latest},
	{"/v1/nodes", "1.20"},
	{"/v1/nodes", latest},
	{"/v1/nodes?fields=uuid,driver_info,instance_info,traits,conductor,extra", latest},
	{"/v1/nodes?fields=name,extra", latest},
	{"/v1/nodes?detail=true&limit=2", latest},
	{"/v1/nodes/detail?limit=2&sort_key=name&sort_dir=desc", latest},
	{"/v1/nodes/detail?maintenance=false", latest},
	{"/v1/nodes/detail?provision_state=enroll", latest},
	{"/v1/nodes/detail?conductor=c1-", latest},
}

// TestNodeCacheNeverStale runs two caching API servers and one that does not cache on one
// database, and after each kind of write (through either server, through the store as a
// conductor writes, by raw SQL) checks that every list of both caching servers gives exactly
// the bytes of the uncached one, and that the caches did serve nodes.
func TestNodeCacheNeverStale(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := target.DSN(t)
			ring := &testRing{}
			ring.set("c1", "c2")
			a := openCacheAPI(t, dsn, ring)
			b := openCacheAPI(t, dsn, ring)
			ref := openCacheAPI(t, dsn, ring, func(o *httpapi.Options) { o.NodeCacheBytes = -1 })
			var uuids []string
			for i := range 5 {
				r := call(t, a.ts, "POST", "/v1/nodes", latest, map[string]any{
					"name": fmt.Sprintf("cache-%d", i), "driver": "fake-hardware",
					"driver_info":   map[string]any{"ipmi_address": "10.0.0.1", "ipmi_password": "s3cret", "deploy_kernel": "http://u:pw@h/k"},
					"instance_info": map[string]any{"image_url": "http://img", "configdrive": "abc", "note": "password=hunter2"},
					"properties":    map[string]any{"cpus": 8, "memory_mb": 1024, "cpu_ghz": 2.5},
					"extra":         map[string]any{"n": i, "z": []any{1, "a", nil, true}, "\u00e9": "<&>"},
				})
				mustStatus(t, r, http.StatusCreated)
				uuids = append(uuids, r.body["uuid"].(string))
			}
			check := func(step, want string) {
				t.Helper()
				seen := false
				for _, v := range listViews {
					path := strings.ReplaceAll(v.path, "{uuid}", uuids[0])
					st, wantBody := ref.get(t, path, v.version)
					if st != http.StatusOK {
						t.Fatalf("%s: GET %s (%s) on the uncached server: %d %s", step, path, v.version, st, wantBody)
					}
					seen = seen || strings.Contains(wantBody, want)
					for name, srv := range map[string]cacheAPI{"a": a, "b": b} {
						// Twice: the first may fill the cache, the second is served from it.
						for range 2 {
							if _, got := srv.get(t, path, v.version); got != wantBody {
								t.Fatalf("%s: GET %s (%s) on server %s:\n got %s\nwant %s", step, path, v.version, name, got, wantBody)
							}
						}
					}
				}
				if !seen {
					t.Fatalf("%s: no list shows %q: the write did not happen", step, want)
				}
			}
			check("enrolled", `"name":"cache-4"`)
			hits, _, _, _ := a.api.NodeCacheUse()
			if hits == 0 {
				t.Fatal("server a served no node from its cache")
			}

			mustStatus(t, call(t, a.ts, "PATCH", "/v1/nodes/"+uuids[1], latest,
				[]map[string]any{{"op": "add", "path": "/extra/patched", "value": "through-a"}}), http.StatusOK)
			check("PATCH through a", `"patched":"through-a"`)

			mustStatus(t, call(t, b.ts, "PUT", "/v1/nodes/"+uuids[2]+"/traits", latest,
				map[string]any{"traits": []string{"CUSTOM_CACHE"}}), http.StatusNoContent)
			check("traits through b", `"CUSTOM_CACHE"`)
			mustStatus(t, call(t, a.ts, "DELETE", "/v1/nodes/"+uuids[2]+"/traits/CUSTOM_CACHE", latest, nil), http.StatusNoContent)
			check("trait deleted through a", `"traits":[]`)

			// A conductor's write, through its own store handle.
			if _, err := ref.store.UpdateNode(ctx, uuids[3], func(n *ironwork.Node) error {
				n.PowerState, n.LastError = ironwork.PowerOn, "conductor wrote this"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			check("conductor update", "conductor wrote this")

			n, err := ref.store.ReserveNode(ctx, uuids[0], "conductor-x")
			if err != nil {
				t.Fatal(err)
			}
			check("lock", `"reservation":"conductor-x"`)
			if err := ref.store.ReleaseNode(ctx, n.ID, "conductor-x"); err != nil {
				t.Fatal(err)
			}
			check("release", `"reservation":null`)
			if _, err := ref.store.ReserveNode(ctx, uuids[0], "conductor-y"); err != nil {
				t.Fatal(err)
			}
			check("lock again", `"reservation":"conductor-y"`)
			// A release that touches nothing but the reservation, as a conductor starting up
			// frees its old locks.
			if _, err := ref.store.DB().ExecContext(ctx, "UPDATE nodes SET reservation = NULL WHERE reservation = 'conductor-y'"); err != nil {
				t.Fatal(err)
			}
			check("raw SQL release", `"reservation":null`)

			mustStatus(t, call(t, b.ts, "PATCH", "/v1/nodes/"+uuids[4], latest,
				[]map[string]any{{"op": "replace", "path": "/description", "value": "through b"}, {"op": "remove", "path": "/extra/z"}}), http.StatusOK)
			check("PATCH through b", `"description":"through b"`)

			ring.set("c3")
			check("ring changed", `"conductor":"c3-"`)

			mustStatus(t, call(t, a.ts, "DELETE", "/v1/nodes/"+uuids[1], latest, nil), http.StatusNoContent)
			check("deleted through a", `"name":"cache-0"`)
			for _, srv := range []cacheAPI{a, b} {
				if _, body := srv.get(t, "/v1/nodes/detail", latest); strings.Contains(body, uuids[1]) {
					t.Fatalf("deleted node %s still listed: %s", uuids[1], body)
				}
			}
			hitsA, missA, entriesA, bytesA := a.api.NodeCacheUse()
			hitsB, missB, _, _ := b.api.NodeCacheUse()
			t.Logf("server a: %d hits, %d misses, %d entries (%d bytes); server b: %d hits, %d misses", hitsA, missA, entriesA, bytesA, hitsB, missB)
			if hitsB == 0 || missB == 0 {
				t.Fatalf("server b: %d hits, %d misses: the cache was not exercised", hitsB, missB)
			}
		})
	}
}

// TestNodeCachePerCaller checks that a list a caller with a redacted view makes after an
// administrator filled the cache shows what the uncached server shows that caller, and that
// links follow each request's host when no public URL is set.
func TestNodeCachePerCaller(t *testing.T) {
	dsn := sqlstoretest.Targets()[0].DSN(t)
	auth := func(o *httpapi.Options) { o.Auth = headerAuth{}; o.PublicURL = "" }
	c := openCacheAPI(t, dsn, nil, auth)
	ref := openCacheAPI(t, dsn, nil, auth, func(o *httpapi.Options) { o.NodeCacheBytes = -1 })
	ctx := context.Background()
	for i, owner := range []string{ownerProject, "", ownerProject} {
		n := &ironwork.Node{Name: fmt.Sprintf("caller-%d", i), Driver: "fake-hardware", Owner: owner, Lessee: lesseeProject, ProvisionState: ironwork.Manageable,
			LastError: "boom", Reservation: "c1",
			DriverInfo:         ironwork.JSONObject{"ipmi_address": "10.0.0.9", "ipmi_password": "pw"},
			DriverInternalInfo: ironwork.JSONObject{"agent_url": "http://10.0.0.9:9999"}}
		if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
			t.Fatal(err)
		}
		if err := c.store.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	personas := []struct {
		name string
		hdr  []string
	}{
		{"system admin", []string{"X-Auth-Token", "admin", "X-Roles", "admin,member,reader", "OpenStack-System-Scope", "all"}},
		{"owner admin", []string{"X-Auth-Token", "o", "X-Roles", "admin,member,reader", "X-Project-Id", ownerProject}},
		{"owner reader", []string{"X-Auth-Token", "or", "X-Roles", "reader", "X-Project-Id", ownerProject}},
		{"lessee member", []string{"X-Auth-Token", "l", "X-Roles", "member,reader", "X-Project-Id", lesseeProject}},
		{"system reader", []string{"X-Auth-Token", "sr", "X-Roles", "reader", "OpenStack-System-Scope", "all"}},
		{"system admin, other host", []string{"X-Auth-Token", "admin", "X-Roles", "admin,member,reader", "OpenStack-System-Scope", "all", "Host", "other.example:6385"}},
	}
	redacted := false
	for range 2 {
		for _, p := range personas {
			for _, path := range []string{"/v1/nodes/detail", "/v1/nodes?fields=uuid,driver_info,last_error,reservation,driver_internal_info"} {
				hdr := append([]string{"Host", "ironwork.test:6385"}, p.hdr...)
				st, want := ref.get(t, path, latest, hdr...)
				if st != http.StatusOK {
					t.Fatalf("%s: GET %s: %d %s", p.name, path, st, want)
				}
				if _, got := c.get(t, path, latest, hdr...); got != want {
					t.Fatalf("%s: GET %s:\n got %s\nwant %s", p.name, path, got, want)
				}
				redacted = redacted || strings.Contains(want, "Redacted")
				if strings.Contains(p.name, "other host") && !strings.Contains(want, "http://other.example:6385/v1/nodes/") {
					t.Fatalf("%s: links do not follow the host: %s", p.name, want)
				}
			}
		}
	}
	if !redacted {
		t.Fatal("no persona saw a redacted field: the test does not cover redaction")
	}
	if hits, _, _, _ := c.api.NodeCacheUse(); hits == 0 {
		t.Fatal("no node served from the cache")
	}
}

// TestNodeCacheRaceBetweenReads changes a node between a cached list's read of revisions and
// its read of the missing nodes, so that the node no longer matches the list's filter: the list
// must be the uncached server's, read after the change (the node is not in it).
func TestNodeCacheRaceBetweenReads(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := target.DSN(t)
			c := openCacheAPI(t, dsn, nil)
			ref := openCacheAPI(t, dsn, nil, func(o *httpapi.Options) { o.NodeCacheBytes = -1 })
			var uuids []string
			for i := range 3 {
				// Through the uncached server, so that c has none of them rendered ahead.
				r := call(t, ref.ts, "POST", "/v1/nodes", latest, map[string]any{"name": fmt.Sprintf("race-%d", i), "driver": "fake-hardware"})
				mustStatus(t, r, http.StatusCreated)
				uuids = append(uuids, r.body["uuid"].(string))
			}
			fired := 0
			c.api.RunBetweenListReads(func() {
				fired++
				if fired > 1 {
					return
				}
				if _, err := ref.store.UpdateNode(ctx, uuids[1], func(n *ironwork.Node) error {
					n.ProvisionState = ironwork.Manageable
					return nil
				}); err != nil {
					t.Error(err)
				}
			})
			path := "/v1/nodes/detail?provision_state=enroll"
			_, got := c.get(t, path, latest)
			if fired != 1 {
				t.Fatalf("the hook ran %d times, want 1: the list did not miss", fired)
			}
			_, want := ref.get(t, path, latest)
			if got != want {
				t.Fatalf("list raced by a write:\n got %s\nwant %s", got, want)
			}
			if strings.Contains(got, uuids[1]) || !strings.Contains(got, uuids[0]) {
				t.Fatalf("node %s left the filter but is listed, or node %s is missing: %s", uuids[1], uuids[0], got)
			}
		})
	}
}

// TestNewNodesRenderedAhead enrols nodes through a caching server and checks that they reach
// its cache in the background, in the creating request's view, before anything lists them;
// that the first detailed list is then served from the cache whole; and that the page (larger
// than one send of the streaming writer, so sent in chunks) has exactly the uncached server's
// bytes, also after one of the nodes changed behind the cache's back.
func TestNewNodesRenderedAhead(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := target.DSN(t)
			a := openCacheAPI(t, dsn, nil)
			ref := openCacheAPI(t, dsn, nil, func(o *httpapi.Options) { o.NodeCacheBytes = -1 })
			const n = 60
			var uuids []string
			for i := range n {
				r := call(t, a.ts, "POST", "/v1/nodes", "1.82", map[string]any{
					"name": fmt.Sprintf("ahead-%d", i), "driver": "fake-hardware",
					"driver_info": map[string]any{"ipmi_password": "s3cret", "ipmi_address": "10.0.0.1"},
					"extra":       map[string]any{"pad": strings.Repeat("x", 1500), "i": i},
				})
				mustStatus(t, r, http.StatusCreated)
				uuids = append(uuids, r.body["uuid"].(string))
			}
			// The background renders within milliseconds; give it up to ten seconds.
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, _, entries, _ := a.api.NodeCacheUse(); entries >= n {
					break
				}
				if time.Now().After(deadline) {
					_, _, entries, _ := a.api.NodeCacheUse()
					t.Fatalf("%d of %d new nodes in the cache after 10 s: they were not rendered ahead", entries, n)
				}
				time.Sleep(10 * time.Millisecond)
			}
			hits0, misses0, _, _ := a.api.NodeCacheUse()
			page, length := getFull(t, a.ts.URL+"/v1/nodes/detail", "1.82", http.StatusOK)
			hits, misses, _, _ := a.api.NodeCacheUse()
			if misses != misses0 || hits-hits0 != n {
				t.Fatalf("first list after enrolment: %d hits, %d misses; want %d hits and none missed", hits-hits0, misses-misses0, n)
			}
			if length != -1 {
				t.Fatalf("a page of %d bytes was sent with Content-Length %d: want it streamed", len(page), length)
			}
			_, want := ref.get(t, "/v1/nodes/detail", "1.82")
			if string(page) != want {
				t.Fatalf("cached page differs from the uncached one:\n got %.600s\nwant %.600s", page, want)
			}

			// A node changed by another writer after it was rendered ahead is rendered again.
			if _, err := ref.store.UpdateNode(ctx, uuids[7], func(nd *ironwork.Node) error {
				nd.LastError = "changed behind the cache"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			_, got := a.get(t, "/v1/nodes/detail", "1.82")
			_, want = ref.get(t, "/v1/nodes/detail", "1.82")
			if got != want || !strings.Contains(want, "changed behind the cache") {
				t.Fatalf("after a change, cached page differs from the uncached one (or lacks the change)")
			}
			// A small answer keeps its length.
			if small, length := getFull(t, a.ts.URL+"/v1/nodes/detail?limit=1", "1.82", http.StatusOK); length != int64(len(small)) {
				t.Fatalf("one-node page: Content-Length %d, body %d bytes", length, len(small))
			}
		})
	}
}
