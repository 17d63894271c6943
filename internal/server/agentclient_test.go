package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/server"
)

// TestDirectDeployWithAnUnreachableAgent plays the agent by hand: lookup, a heartbeat from a
// command API that takes standby.prepare_image, then the agent's API goes away while the agent
// still heartbeats. The node keeps waiting with no last_error (an unreachable agent is no
// failed step), and the callback timeout then fails it with a reason naming the agent's URL.
func TestDirectDeployWithAnUnreachableAgent(t *testing.T) {
	dir := t.TempDir()
	no := false
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.AutomatedClean = &no
		c.CallbackTimeout = server.Duration{Duration: 15 * time.Second}
		c.TimeoutCheckInterval = server.Duration{Duration: 500 * time.Millisecond}
		c.AgentCommandTimeout = server.Duration{Duration: 2 * time.Second}
		c.AgentMaxCommandAttempts = 2
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "unreachable-1", "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake",
		"instance_info": map[string]any{"image_source": "http://127.0.0.1:9/image.raw", "image_checksum": "sha256:" + strings.Repeat("0", 64)}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	const mac = "52:54:00:77:00:01"
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "available", 10*time.Second)
	provisionVerb(t, c, uuid, "active")
	waitState(t, c, uuid, "wait call-back", 10*time.Second)

	var lr api.LookupResponse
	if err := c.Do(ctx, http.MethodGet, "/v1/lookup?addresses="+mac, nil, &lr); err != nil {
		t.Fatal(err)
	}
	token := lr.Config.AgentToken
	var commands atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("agent_token") != token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		const cmd = `{"id": "c1", "command_name": "standby.prepare_image", "command_status": "RUNNING"}`
		if r.Method == http.MethodPost {
			commands.Add(1)
			fmt.Fprint(w, cmd)
			return
		}
		fmt.Fprintf(w, `{"commands": [%s]}`, cmd)
	}))
	callback := agent.URL
	heartbeat := func() {
		t.Helper()
		if err := c.Do(ctx, http.MethodPost, "/v1/heartbeat/"+uuid, api.HeartbeatRequest{CallbackURL: callback, AgentToken: token, AgentVersion: "test"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	heartbeat() // the agent is up: write_image sends standby.prepare_image
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := waitState(t, c, uuid, "wait call-back", 10*time.Second)
		if step, _ := n["deploy_step"].(map[string]any); step["step"] == "write_image" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node never waited in write_image: %v", n["deploy_step"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	agent.Close() // the agent's API is gone; the agent still heartbeats
	began := time.Now()
	heartbeat()
	for {
		var n map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			t.Fatal(err)
		}
		if dii, _ := n["driver_internal_info"].(map[string]any); dii["ironwork_agent_unreachable"] != nil {
			if n["provision_state"] != "wait call-back" || n["last_error"] != nil {
				t.Fatalf("after a heartbeat the agent did not answer: %v, last_error %v; want wait call-back and none", n["provision_state"], n["last_error"])
			}
			t.Logf("unreachable agent recorded after %s: %v", time.Since(began).Round(time.Millisecond), dii["ironwork_agent_unreachable"])
			break
		}
		if n["provision_state"] != "wait call-back" {
			t.Fatalf("node went to %v (%v) before the unreachable agent was recorded", n["provision_state"], n["last_error"])
		}
		if time.Since(began) > 30*time.Second {
			t.Fatal("the unreachable agent was never recorded")
		}
		time.Sleep(100 * time.Millisecond)
	}
	n := waitState(t, c, uuid, "deploy failed", 60*time.Second)
	t.Logf("deploy failed %s after the agent's API went away", time.Since(began).Round(time.Millisecond))
	reason, _ := n["last_error"].(string)
	if !strings.Contains(reason, "Timeout reached") || !strings.Contains(reason, callback) || strings.Contains(reason, token) {
		t.Fatalf("last_error %q: want the callback timeout naming %s, without the token", reason, callback)
	}
	if got := commands.Load(); got != 1 {
		t.Fatalf("the agent got %d commands, want 1", got)
	}
}
