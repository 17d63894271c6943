package rpc_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/rpc"
)

// TestConsoleOverRPC enables, reads and disables a fake-hardware node's console from an
// API-only router: the conductor at the other end of JSON-RPC serves it, and a node without a
// console is refused with EINVALID across the trip.
func TestConsoleOverRPC(t *testing.T) {
	ts, store, c := newConductor(t)
	ctx := context.Background()
	n := remoteNode(ctx, t, store, ts.URL, "rpc-console")
	plain := remoteNode(ctx, t, store, ts.URL, "rpc-no-console")
	if _, err := store.UpdateNode(ctx, plain.UUID, func(n *ironwork.Node) error {
		n.Interfaces[ironwork.ConsoleInterface] = "no-console"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := rpc.NewRouter(nil, store, conductor.NewRing(), "api-only", slog.New(slog.DiscardHandler))
	if err := r.Refresh(ctx, 60e9); err != nil {
		t.Fatal(err)
	}
	ref := conductor.NodeRef{Node: n.UUID}
	err := conductor.Do(ctx, r, conductor.OpSetConsoleMode, conductor.SetConsoleRequest{NodeRef: conductor.NodeRef{Node: plain.UUID}, Enabled: true})
	if ironwork.ErrorCode(err) != ironwork.EINVALID || !strings.Contains(err.Error(), "does not support console") {
		t.Fatalf("enable a no-console node over RPC: %v", err)
	}
	if err := conductor.Do(ctx, r, conductor.OpSetConsoleMode, conductor.SetConsoleRequest{NodeRef: ref, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	info, err := conductor.Call(ctx, r, conductor.OpConsoleInfo, ref)
	if err != nil || !info.Enabled || info.Type != "socat" || !strings.HasPrefix(info.URL, "tcp://127.0.0.1:") {
		t.Fatalf("console info over RPC: %+v %v", info, err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(info.URL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("over rpc\r"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	var line string
	for !strings.HasSuffix(line, "over rpc\r") { // after the fake line's banner, if it came
		if line, err = br.ReadString('\r'); err != nil {
			t.Fatalf("console echo: %q %v", line, err)
		}
	}
	if err := conductor.Do(ctx, r, conductor.OpSetConsoleMode, conductor.SetConsoleRequest{NodeRef: ref, Enabled: false}); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if info, err := conductor.Call(ctx, r, conductor.OpConsoleInfo, ref); err != nil || info.Enabled || info.URL != "" {
		t.Fatalf("console info after disable: %+v %v", info, err)
	}
}
