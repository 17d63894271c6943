package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/shacrypt"
)

// rescueNode enrols a fake-hardware node with the agent rescue interface and deploys it.
func rescueNode(t *testing.T, c *api.Client, name, rescue string) string {
	t.Helper()
	var node map[string]any
	if err := c.Do(context.Background(), http.MethodPost, "/v1/nodes", map[string]any{"name": name, "driver": "fake-hardware",
		"rescue_interface": rescue, "boot_interface": "fake", "deploy_interface": "fake"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if rescue == "agent" { // the agent looks its node up by this machine's MAC
		if err := c.Do(context.Background(), http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": hostMAC(t)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "available", 10*time.Second)
	provisionVerb(t, c, uuid, "active")
	waitState(t, c, uuid, "active", 10*time.Second)
	return uuid
}

func rescueVerb(c *api.Client, uuid string, body map[string]any) error {
	return c.Do(context.Background(), http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", body, nil)
}

// TestRescueWithTheAgent rescues a node with the real agent process: the conductor boots
// the (fake) ramdisk, the agent looks up and heartbeats, gets rescue.finalize_rescue with
// the password's hash, writes the rescue user and stops; the node is in "rescue"; unrescue
// brings it back to "active" without the hash. Neither the password nor its hash is logged.
func TestRescueWithTheAgent(t *testing.T) {
	dir := t.TempDir()
	agent := buildAgent(t)
	var logs lockedbuf.Buffer
	srv := startServerLog(t, "sqlite://"+filepath.Join(dir, "db"), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	uuid := rescueNode(t, c, "rescue-agent-1", "agent")
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "rescue-root")

	const password = "correct horse battery"
	start := time.Now()
	if err := rescueVerb(c, uuid, map[string]any{"target": "rescue", "rescue_password": password}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, uuid, "rescue wait", 10*time.Second)
	a := startAgent(t, agent, srv.URL(), disk, "--rescue-root", root)
	n := waitState(t, c, uuid, "rescue", 60*time.Second)
	t.Logf("rescue with the agent: %.1f s", time.Since(start).Seconds())
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("the agent ended with %v after the rescue, want status 0", err)
		}
		a.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("the agent still runs 30 s after finalize_rescue; it must stop its API and heartbeats")
	}
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["agent_url"] != nil || dii["agent_secret_token"] != nil {
		t.Errorf("the rescue agent's URL or token outlived the rescue: %v", dii)
	}
	shadow, err := os.ReadFile(filepath.Join(root, "etc/shadow"))
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	for _, l := range strings.Split(string(shadow), "\n") {
		if f := strings.Split(l, ":"); len(f) > 1 && f[0] == "rescue" {
			hash = f[1]
		}
	}
	if !strings.HasPrefix(hash, "$6$") || !shacrypt.Verify(hash, password) || shacrypt.Verify(hash, "wrong") {
		t.Errorf("the rescue user's shadow entry %q is not the password's sha512-crypt hash", hash)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/shadow")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/shadow mode: %v %v", fi.Mode(), err)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.Contains(string(passwd), "\nrescue:x:0:0:") && !strings.HasPrefix(string(passwd), "rescue:x:0:0:") {
		t.Errorf("etc/passwd has no rescue user:\n%s", passwd)
	}
	if strings.Contains(a.out.String(), password) || strings.Contains(a.out.String(), hash) {
		t.Error("the agent's log holds the rescue password or its hash")
	}

	provisionVerb(t, c, uuid, "unrescue")
	n = waitState(t, c, uuid, "active", 20*time.Second)
	if ii, _ := n["instance_info"].(map[string]any); ii["hashed_rescue_password"] != nil {
		t.Errorf("the hash outlives unrescue: %v", ii)
	}
	if l := logs.String(); strings.Contains(l, password) || strings.Contains(l, hash) {
		t.Error("the server's log holds the rescue password or its hash")
	}
}

// TestRescueFailures: a rescue ramdisk that never calls back fails at the rescue callback
// timeout, abort in rescue wait fails the rescue with Ironic's reason, and both forget the
// password's hash; bad requests are refused before any state changes.
func TestRescueFailures(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.RescueCallbackTimeout = server.Duration{Duration: 2 * time.Second}
		c.TimeoutCheckInterval = server.Duration{Duration: 200 * time.Millisecond}
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	uuid := rescueNode(t, c, "rescue-fail-1", "agent")

	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"no password", map[string]any{"target": "rescue"}, `A non-empty "rescue_password" is required`},
		{"empty password", map[string]any{"target": "rescue", "rescue_password": ""}, `A non-empty "rescue_password" is required`},
		{"blank password", map[string]any{"target": "rescue", "rescue_password": " \t "}, `A non-empty "rescue_password" is required`},
		{"not a string", map[string]any{"target": "rescue", "rescue_password": 7}, "rescue_password"},
		{"too long", map[string]any{"target": "rescue", "rescue_password": strings.Repeat("p", shacrypt.MaxPassword+1)},
			"Invalid rescue_password: it is longer than 511 bytes."},
	} {
		err := rescueVerb(c, uuid, tc.body)
		if !api.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 400 %q", tc.name, err, tc.want)
		}
	}
	var n map[string]any
	if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil || n["provision_state"] != "active" {
		t.Fatalf("refused rescues changed the node: %v %v", n["provision_state"], err)
	}

	// A driver without rescue.
	other := rescueNode(t, c, "rescue-fail-2", "no-rescue")
	err := rescueVerb(c, other, map[string]any{"target": "rescue", "rescue_password": "pw"})
	if !api.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "Driver fake-hardware does not support rescue") {
		t.Errorf("rescue with no-rescue: %v, want 400 \"... does not support rescue ...\"", err)
	}

	// No callback: the rescue callback timeout.
	start := time.Now()
	if err := rescueVerb(c, uuid, map[string]any{"target": "rescue", "rescue_password": "pw"}); err != nil {
		t.Fatal(err)
	}
	n = waitState(t, c, uuid, "rescue failed", 30*time.Second)
	t.Logf("rescue wait timed out after %.1f s (timeout 2 s, checked every 0.2 s)", time.Since(start).Seconds())
	if le := fmt.Sprint(n["last_error"]); !strings.Contains(le, "Timeout reached while waiting for rescue ramdisk callback") {
		t.Errorf("last_error after the timeout: %s", le)
	}
	if ii, _ := n["instance_info"].(map[string]any); ii["hashed_rescue_password"] != nil {
		t.Errorf("the hash outlives the failed rescue: %v", ii)
	}
	if n["power_state"] != "power off" {
		t.Errorf("a timed-out rescue left the node %v", n["power_state"])
	}

	// Abort in rescue wait (from rescue failed, rescue again).
	if err := rescueVerb(c, uuid, map[string]any{"target": "rescue", "rescue_password": "pw"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, uuid, "rescue wait", 10*time.Second)
	provisionVerb(t, c, uuid, "abort")
	n = waitState(t, c, uuid, "rescue failed", 10*time.Second)
	if le := fmt.Sprint(n["last_error"]); le != "By request, the rescue operation was aborted." {
		t.Errorf("last_error after abort: %s", le)
	}
	if ii, _ := n["instance_info"].(map[string]any); ii["hashed_rescue_password"] != nil || n["maintenance"] != false {
		t.Errorf("after abort: instance_info %v, maintenance %v", ii, n["maintenance"])
	}
	// Unrescue from rescue failed brings the instance back.
	provisionVerb(t, c, uuid, "unrescue")
	waitState(t, c, uuid, "active", 10*time.Second)
}
