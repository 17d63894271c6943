package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/server"
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
