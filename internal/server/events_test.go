package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestEventsAcrossProcesses runs an API-only process and a conductor process on one PostgreSQL
// database: the conductor makes every state change of a deploy, and the API process's events
// stream shows them (found by its poll of the database), then the node's deletion.
func TestEventsAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the two-process test")
	}
	dsn := sqlstoretest.PostgresDSN(t)
	bin := builtBinary(t, "../../cmd/ironwork")
	common := fmt.Sprintf("database = %q\nheartbeat_interval = \"1s\"\nheartbeat_timeout = \"3s\"\npower_sync_interval = \"1h\"\n"+
		"automated_clean = false\nevents_poll_interval = \"100ms\"\n", dsn)
	spawn(t, bin, "conductor", common+"role = \"conductor\"\nhostname = \"conductor-1\"\n")
	addr := freeAddr(t)
	spawn(t, bin, "api", common+fmt.Sprintf("role = \"api\"\nhostname = \"api\"\nlisten = %q\n", addr))
	c := &api.Client{BaseURL: "http://" + addr}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		var cs struct {
			Conductors []map[string]any `json:"conductors"`
		}
		err := c.Do(ctx, http.MethodGet, "/v1/conductors", nil, &cs)
		if err == nil && len(cs.Conductors) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the API and the conductor did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the API's ring refresh sees the conductor
	stream, err := c.Events(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "xp-1", "driver": "fake-hardware",
		"driver_info": map[string]any{"fake_deploy_delay": 1}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	start := time.Now()
	var seen []string
	next := func(want string) {
		t.Helper()
		for {
			ev, err := stream.Next()
			if err != nil {
				t.Fatalf("waiting for %s (seen %v): %v", want, seen, err)
			}
			if ev.Node.UUID != uuid {
				continue
			}
			st := ev.Node.ProvisionState
			if ev.Type == "node.deleted" {
				st = "deleted"
			}
			if len(seen) == 0 || seen[len(seen)-1] != st {
				seen = append(seen, st)
				t.Logf("%6.2fs %s", time.Since(start).Seconds(), st)
			}
			if st == want {
				return
			}
		}
	}
	next("enroll")
	for _, step := range []struct{ verb, state string }{{"manage", "manageable"}, {"provide", "available"}, {"active", "active"}} {
		if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": step.verb}, nil); err != nil {
			t.Fatal(err)
		}
		next(step.state)
	}
	// The deploy step sleeps a second: the stream, polled every 100 ms, shows it.
	if !slices.Contains(seen, "deploying") {
		t.Errorf("deploying was not seen: %v", seen)
	}
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/maintenance", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := stream.Next()
		if err != nil {
			t.Fatalf("waiting for maintenance: %v", err)
		}
		if ev.Node.UUID == uuid && ev.Node.Maintenance {
			break
		}
	}
	if err := c.Do(ctx, http.MethodDelete, "/v1/nodes/"+uuid+"/maintenance", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "deleted"}, nil); err != nil {
		t.Fatal(err)
	}
	next("available")
	if err := c.Do(ctx, http.MethodDelete, "/v1/nodes/"+uuid, nil, nil); err != nil {
		t.Fatal(err)
	}
	next("deleted")
	t.Logf("states seen on the API process's stream: %v", seen)
}
