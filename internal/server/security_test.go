package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/shacrypt"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestRoleBothOpensNoRPCPort checks that a process that is both API and conductor answers no
// JSON-RPC unless asked to, and that when asked, its port refuses unsealed requests.
func TestRoleBothOpensNoRPCPort(t *testing.T) {
	dsn := sqlstoretest.Targets()[0].DSN(t)
	srv := startServer(t, dsn)
	if addr := srv.RPCAddr(); addr != "" {
		t.Fatalf("role both opened a JSON-RPC port at %s by default", addr)
	}
	cs, err := srv.Store().ListConductors(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.RPCURL != "" {
			t.Fatalf("conductor %s advertises JSON-RPC at %s", c.Hostname, c.RPCURL)
		}
	}

	asked := startServer(t, sqlstoretest.Targets()[0].DSN(t), func(c *server.Config) { c.RPCListen = "127.0.0.1:0" })
	if asked.RPCAddr() == "" {
		t.Fatal("role both with rpc_listen set opened no JSON-RPC port")
	}
	resp, err := http.Post("http://"+asked.RPCAddr()+"/rpc", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","method":"validate","params":{"node":"x"},"id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unsealed request to the asked-for port: %d, want 401", resp.StatusCode)
	}
}

// TestRescuePasswordStoredOnlyAsHash rescues a node and checks that the database holds the
// password's SHA-512-crypt hash under Ironic's key and nowhere the password itself, that the
// API masks the hash, and that unrescue removes it.
func TestRescuePasswordStoredOnlyAsHash(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv, c, uuid := fakeNodeServer(t, target.DSN(t), "rescue-1", nil)
			ctx := context.Background()
			for _, verb := range []string{"manage", "provide", "active"} {
				provisionVerb(t, c, uuid, verb)
				waitState(t, c, uuid, map[string]string{"manage": "manageable", "provide": "available", "active": "active"}[verb], 20*time.Second)
			}
			const password = "Rescue-Me-S3cret"
			if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision",
				map[string]any{"target": "rescue", "rescue_password": password}, nil); err != nil {
				t.Fatal(err)
			}
			waitState(t, c, uuid, "rescue", 20*time.Second)
			var raw string
			if err := srv.Store().DB().QueryRow("SELECT instance_info FROM nodes WHERE uuid = '" + uuid + "'").Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(raw, password) {
				t.Fatalf("the rescue password is in the database: %s", raw)
			}
			n, err := srv.Store().GetNode(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			hash, _ := n.InstanceInfo[conductor.RescuePasswordHashKey].(string)
			if !shacrypt.Verify(hash, password) || shacrypt.Verify(hash, password+"!") {
				t.Fatalf("instance_info %s = %q is not the password's sha512-crypt hash", conductor.RescuePasswordHashKey, hash)
			}
			if _, ok := n.InstanceInfo["rescue_password"]; ok {
				t.Fatal("instance_info keeps rescue_password")
			}
			var shown map[string]any
			if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &shown); err != nil {
				t.Fatal(err)
			}
			if b, _ := jsonText(shown); strings.Contains(b, hash) || strings.Contains(b, password) {
				t.Fatal("the API shows the rescue password or its hash")
			}
			provisionVerb(t, c, uuid, "unrescue")
			waitState(t, c, uuid, "active", 20*time.Second)
			if n, err = srv.Store().GetNode(ctx, uuid); err != nil {
				t.Fatal(err)
			}
			if _, ok := n.InstanceInfo[conductor.RescuePasswordHashKey]; ok {
				t.Fatal("the hash outlives the rescue")
			}
		})
	}
}
