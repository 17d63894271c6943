package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// TestConfigDriveAcceptRefuse runs the provision call's config drive matrix against the real
// server: what Ironic refuses is a 400 that leaves the node alone, what it accepts deploys,
// and the config drive never shows in instance_info or in the log.
func TestConfigDriveAcceptRefuse(t *testing.T) {
	logs := &lockedbuf.Buffer{}
	srv := startServerLog(t, "sqlite://"+filepath.Join(t.TempDir(), "db"), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "cd-1", "driver": "fake-hardware"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "available", 10*time.Second)

	const secret = "#cloud-config\npassword: SECRET-USER-DATA\n"
	dict := map[string]any{"meta_data": map[string]any{"hostname": "h"}, "user_data": secret}
	for _, tc := range []struct {
		version, target string
		cd              any
		msg             string
	}{
		{"1.55", "active", dict, "only supported starting with API version 1.56"},
		{"1.58", "active", map[string]any{"vendor_data": map[string]any{}}, "vendor_data in configdrive is only supported starting with API version 1.59"},
		{"1.87", "active", map[string]any{"extra": 1}, "Invalid configdrive format"},
		{"1.87", "active", map[string]any{"meta_data": "x"}, "Invalid configdrive format"},
		{"1.87", "active", map[string]any{"user_data": 3}, "Invalid configdrive format"},
		{"1.87", "active", "not base64 {", "neither a JSON, nor a URL, nor a base64 string"},
		{"1.87", "active", []any{1}, "Invalid configdrive format"},
		{"1.87", "manage", dict, "only supported when setting provision state to active, rebuild"},
		{"1.34", "rebuild", "H4sI", "only supported when setting provision state to active"},
	} {
		v := &api.Client{BaseURL: srv.URL(), Version: tc.version}
		err := v.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": tc.target, "configdrive": tc.cd}, nil)
		if !api.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %s %v: %v, want a 400 saying %q", tc.version, tc.target, tc.cd, err, tc.msg)
		}
	}
	if n := waitState(t, c, uuid, "available", time.Second); n["instance_info"] != nil && len(n["instance_info"].(map[string]any)) != 0 {
		t.Errorf("refused calls changed instance_info: %v", n["instance_info"])
	}

	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active", "configdrive": dict}, nil); err != nil {
		t.Fatal(err)
	}
	n := waitState(t, c, uuid, "active", 10*time.Second)
	if ii, _ := n["instance_info"].(map[string]any); ii["configdrive"] != "******" {
		t.Errorf("instance_info shows the config drive as %v", ii["configdrive"])
	}
	if strings.Contains(logs.String(), "SECRET-USER-DATA") || strings.Contains(logs.String(), "H4sI") {
		t.Error("the config drive is in the log")
	}
}
