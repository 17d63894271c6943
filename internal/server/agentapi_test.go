package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestAgentLookupAndHeartbeat checks the agent's endpoints as Ironic defines them: lookup
// only in the states where an agent runs, the token handed out once, heartbeats refused
// without it or with bad arguments, and secrets never shown.
func TestAgentLookupAndHeartbeat(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			_, c, uuid := fakeNodeServer(t, target.DSN(t), "agent-1", map[string]any{"fake_deploy_wait": true})
			ctx := context.Background()
			if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": "52:54:00:12:34:56"}, nil); err != nil {
				t.Fatal(err)
			}
			lookup := "/v1/lookup?addresses=52:54:00:00:00:99,52:54:00:12:34:56"
			var lr api.LookupResponse
			if err := c.Do(ctx, http.MethodGet, lookup, nil, &lr); !api.IsStatus(err, http.StatusNotFound) {
				t.Fatalf("lookup of an enrolled node: %v, want 404", err)
			}
			if err := c.Do(ctx, http.MethodGet, "/v1/lookup?addresses=nonsense", nil, &lr); !api.IsStatus(err, http.StatusBadRequest) {
				t.Fatalf("lookup with a bad address: %v, want 400", err)
			}
			for _, verb := range []string{"manage", "provide", "active"} {
				provisionVerb(t, c, uuid, verb)
				want := map[string]string{"manage": "manageable", "provide": "available", "active": "wait call-back"}[verb]
				waitState(t, c, uuid, want, 10*time.Second)
			}
			if err := c.Do(ctx, http.MethodGet, lookup, nil, &lr); err != nil {
				t.Fatalf("lookup while waiting for the agent: %v", err)
			}
			token := lr.Config.AgentToken
			if lr.Node["uuid"] != uuid || len(token) < 32 || !lr.Config.AgentTokenRequired {
				t.Fatalf("lookup answer: %+v", lr)
			}
			if err := c.Do(ctx, http.MethodGet, "/v1/lookup?node_uuid="+uuid, nil, &lr); err != nil || lr.Config.AgentToken != "******" {
				t.Fatalf("second lookup: %+v %v, want the token masked", lr.Config, err)
			}
			var shown map[string]any
			if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &shown); err != nil {
				t.Fatal(err)
			}
			if b, _ := jsonText(shown); strings.Contains(b, token) {
				t.Fatal("the agent token appears in the node's API representation")
			}
			hb := func(body map[string]any) error {
				return c.Do(ctx, http.MethodPost, "/v1/heartbeat/"+uuid, body, nil)
			}
			if err := hb(map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": "wrong"}); !api.IsStatus(err, http.StatusForbidden) {
				t.Fatalf("heartbeat with a wrong token: %v, want 403", err)
			}
			if err := hb(map[string]any{"callback_url": "ftp://x", "agent_token": token}); !api.IsStatus(err, http.StatusBadRequest) {
				t.Fatalf("heartbeat with a bad callback URL: %v, want 400", err)
			}
			if err := hb(map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": token, "surprise": 1}); !api.IsStatus(err, http.StatusBadRequest) {
				t.Fatalf("heartbeat with an unknown argument: %v, want 400", err)
			}
			if err := hb(map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": token, "agent_version": "test 1"}); err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &shown); err != nil {
				t.Fatal(err)
			}
			dii := shown["driver_internal_info"].(map[string]any)
			if dii["agent_url"] != "http://127.0.0.1:9999" || dii["agent_version"] != "test 1" || dii["agent_secret_token"] != "******" {
				t.Fatalf("driver_internal_info after the heartbeat: %v", dii)
			}
		})
	}
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// TestAgentTokenBoundToOneBoot checks that a token dies with the boot of the agent it was
// handed to: after an abort and after a new deployment the old token is refused with 403,
// and the next boot's agent gets a new token from its first lookup.
func TestAgentTokenBoundToOneBoot(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			_, c, uuid := fakeNodeServer(t, target.DSN(t), "token-1", map[string]any{"fake_deploy_wait": true})
			ctx := context.Background()
			lookup := func() (string, error) {
				var lr api.LookupResponse
				err := c.Do(ctx, http.MethodGet, "/v1/lookup?node_uuid="+uuid, nil, &lr)
				return lr.Config.AgentToken, err
			}
			hb := func(token string) error {
				return c.Do(ctx, http.MethodPost, "/v1/heartbeat/"+uuid, map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": token}, nil)
			}
			for _, verb := range []string{"manage", "provide", "active"} {
				provisionVerb(t, c, uuid, verb)
				waitState(t, c, uuid, map[string]string{"manage": "manageable", "provide": "available", "active": "wait call-back"}[verb], 10*time.Second)
			}
			first, err := lookup()
			if err != nil || len(first) < 32 {
				t.Fatalf("first lookup: %q %v", first, err)
			}
			if err := hb(first); err != nil {
				t.Fatalf("heartbeat with the boot's token: %v", err)
			}
			if again, err := lookup(); err != nil || again != "******" {
				t.Fatalf("second lookup in the same boot: %q %v, want ******", again, err)
			}

			provisionVerb(t, c, uuid, "abort")
			waitState(t, c, uuid, "deploy failed", 10*time.Second)
			if err := hb(first); !api.IsStatus(err, http.StatusForbidden) {
				t.Fatalf("heartbeat with the token of an aborted deployment: %v, want 403", err)
			}
			if _, err := lookup(); !api.IsStatus(err, http.StatusNotFound) {
				t.Fatalf("lookup of a failed deployment: %v, want 404", err)
			}

			provisionVerb(t, c, uuid, "deleted")
			waitState(t, c, uuid, "available", 20*time.Second)
			provisionVerb(t, c, uuid, "active")
			waitState(t, c, uuid, "wait call-back", 10*time.Second)
			if err := hb(first); !api.IsStatus(err, http.StatusForbidden) {
				t.Fatalf("heartbeat of the next deployment with the previous one's token: %v, want 403", err)
			}
			second, err := lookup()
			if err != nil || len(second) < 32 || second == first {
				t.Fatalf("lookup of the next deployment's agent: %q %v, want a new token", second, err)
			}
			if err := hb(second); err != nil {
				t.Fatalf("heartbeat with the new token: %v", err)
			}
		})
	}
}

// fakeNodeServer starts a whole server on dsn and enrols one fake-hardware node with
// driverInfo, returning the server, a client at microversion 1.87 and the node's UUID.
func fakeNodeServer(t *testing.T, dsn, name string, driverInfo map[string]any) (*server.Server, *api.Client, string) {
	t.Helper()
	srv := startServer(t, dsn)
	c := &api.Client{BaseURL: srv.URL(), Version: "1.110"}
	body := map[string]any{"name": name, "driver": "fake-hardware"}
	if driverInfo != nil {
		body["driver_info"] = driverInfo
	}
	var node map[string]any
	if err := c.Do(context.Background(), http.MethodPost, "/v1/nodes", body, &node); err != nil {
		t.Fatal(err)
	}
	return srv, c, node["uuid"].(string)
}
