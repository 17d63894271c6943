package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/server"
)

// TestStartRefusesBadPolicyAndKeystoneConfig checks that a policy file with an unknown rule or
// bad syntax stops the server at start with the file's line, and that auth_strategy keystone
// without its service credentials is refused.
func TestStartRefusesBadPolicyAndKeystoneConfig(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"\"baremetal:node:get\": \"role:reader\"\n\"baremetal:node:gett\": \"role:admin\"\n", "line 2"},
		{"# comment\n\"baremetal:node:get\": \"role:reader and (\"\n", "line 2"},
	} {
		c := server.Default()
		c.DataDir, c.Listen = t.TempDir(), "127.0.0.1:0"
		c.PolicyFile = filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(c.PolicyFile, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		srv, err := server.Start(t.Context(), c, nil)
		if err == nil {
			srv.Close()
			t.Fatalf("started with policy file %q", tc.file)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), c.PolicyFile) {
			t.Errorf("policy file %q: %v, want the file and %q", tc.file, err, tc.want)
		}
	}
	c := server.Default()
	c.DataDir, c.Listen = t.TempDir(), "127.0.0.1:0"
	c.AuthStrategy = "keystone"
	c.Keystone.AuthURL = "http://127.0.0.1:5000/v3"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "keystone_authtoken") {
		t.Errorf("keystone without a service user: %v", err)
	}
}
