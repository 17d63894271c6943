package direct

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAgentErrorsKeepTheTokenOut: a failed call's error (which becomes the node's last_error)
// names the agent but never carries the token from the request's URL.
func TestAgentErrorsKeepTheTokenOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the connection is refused
	a := agentClient{http: &http.Client{Timeout: 5 * time.Second}}
	const token = "s3cr3t-agent-token-value"
	_, err = a.run(context.Background(), "http://"+addr, token, "standby.sync", nil, false)
	if err == nil {
		t.Fatal("a call to a closed port succeeded")
	}
	if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q: must name the agent and not carry the token", err)
	}
	_, err = a.status(context.Background(), "http://"+addr, token, "id")
	if err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("status error %q carries the token", err)
	}
}
