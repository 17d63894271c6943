package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestBuiltInInspectionRules starts servers with a built-in rules file: the API lists its
// rules read-only, a restart with a changed file replaces them, and a broken file or an
// unknown masking mode stops the start.
func TestBuiltInInspectionRules(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			dsn := target.DSN(t)
			dir := t.TempDir()
			file := filepath.Join(dir, "rules.yaml")
			write := func(s string) {
				if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			list := func(srv *server.Server) []string {
				req, _ := http.NewRequest("GET", srv.URL()+"/v1/inspection_rules?sort_key=priority&sort_dir=desc", nil)
				req.Header.Set("X-OpenStack-Ironic-API-Version", "1.96")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body struct {
					Rules []struct{ UUID string } `json:"inspection_rules"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
					t.Fatalf("list: %d %v", resp.StatusCode, err)
				}
				var ids []string
				for _, r := range body.Rules {
					ids = append(ids, r.UUID)
				}
				return ids
			}
			withRules := func(c *server.Config) { c.InspectionRules.BuiltInRules = file }

			write(`
- uuid: rule-dell
  priority: 100
  conditions: [{op: contains, args: {value: "{inventory[system_vendor][manufacturer]}", regex: "(?i)dell"}}]
  actions: [{op: add-trait, args: {name: CUSTOM_DELL}}]
- actions: [{op: set-attribute, args: {path: /properties/cpus, value: "{inventory[cpu][count]}"}}]
`)
			first := startServer(t, dsn, withRules)
			if got := strings.Join(list(first), ","); got != "rule-dell,00000000-0000-0000-0000-000000000000" {
				t.Errorf("built-in rules listed: %s", got)
			}
			req, _ := http.NewRequest("DELETE", first.URL()+"/v1/inspection_rules/rule-dell", nil)
			req.Header.Set("X-OpenStack-Ironic-API-Version", "1.96")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("DELETE of a built-in rule: %d, want 400", resp.StatusCode)
			}

			write(`[{"uuid": "rule-hp", "actions": [{"op": "log", "args": {"msg": "hp"}}]}]`)
			second := startServer(t, dsn, withRules)
			if got := strings.Join(list(second), ","); got != "rule-hp" {
				t.Errorf("after a restart with a new file: %s", got)
			}

			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			for name, mutate := range map[string]func(*server.Config){
				"broken file":  func(c *server.Config) { write("- actions: [{op: nope, args: {}}]"); withRules(c) },
				"missing file": func(c *server.Config) { c.InspectionRules.BuiltInRules = filepath.Join(dir, "none.yaml") },
				"mask":         func(c *server.Config) { c.InspectionRules.MaskSecrets = "sometimes" },
			} {
				cfg := server.Default()
				cfg.Listen, cfg.DataDir, cfg.Database, cfg.Hostname = "127.0.0.1:0", t.TempDir(), dsn, "test-conductor"
				mutate(&cfg)
				srv, err := server.Start(context.Background(), cfg, quiet)
				if err == nil {
					srv.Close()
					t.Errorf("%s: the server started", name)
				}
			}
		})
	}
}
