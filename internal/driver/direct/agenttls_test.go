package direct

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/agent/server"
	"github.com/ironwork/ironwork/internal/conductor"
)

// tlsPeer is an agent's command API over TLS on loopback with a certificate of its own,
// counting the requests that got past the handshake.
type tlsPeer struct {
	url      string
	cert     server.AutoTLS
	requests atomic.Int64
}

func startTLSPeer(t *testing.T) *tlsPeer {
	t.Helper()
	at, err := server.NewAutoTLS("127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsPeer{url: "https://" + ln.Addr().String(), cert: at}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		fmt.Fprint(w, `{"commands": [{"id": "c1", "command_name": "sync", "command_status": "SUCCEEDED"}]}`)
	}), ErrorLog: nil}
	go srv.Serve(at.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return p
}

// TestClientHoldsTheAgentToItsCertificate: an agent that pinned its certificate is spoken
// to only when it presents exactly that certificate; another one fails the handshake before
// any request (the token never travels); an https agent without a pin is verified against
// the configured roots, or not at all when verify_ca is false; a pin with a plain-HTTP URL
// is refused without a connection.
func TestClientHoldsTheAgentToItsCertificate(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	// Handshakes under -race on a loaded machine take seconds: bounds for a peer that answers.
	cfg.MaxCommandAttempts, cfg.ConnectTimeout, cfg.CommandTimeout = 1, 30*time.Second, 60*time.Second
	peer, other := startTLSPeer(t), startTLSPeer(t)

	a := newAgentClient(cfg, nil)
	if _, err := a.status(ctx, endpoint{URL: peer.url, Token: testToken, VerifyCA: peer.cert.PEM}, "c1"); err != nil {
		t.Fatalf("the agent with its pinned certificate: %v", err)
	}
	if n := peer.requests.Load(); n != 1 {
		t.Fatalf("the agent saw %d requests, want 1", n)
	}
	_, err := a.status(ctx, endpoint{URL: peer.url, Token: testToken, VerifyCA: other.cert.PEM}, "c1")
	if !errors.Is(err, errCertificateMismatch) || !errors.Is(err, conductor.ErrAgentUnreachable) {
		t.Fatalf("an agent with another certificate: %v, want a certificate mismatch", err)
	}
	if n := peer.requests.Load(); n != 1 {
		t.Fatalf("a request got past a refused handshake (%d requests)", n)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Fatal("the error shows the token")
	}
	if _, err := a.status(ctx, endpoint{URL: strings.Replace(peer.url, "https", "http", 1), Token: testToken, VerifyCA: peer.cert.PEM}, "c1"); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Fatalf("a pinned agent at a plain-HTTP URL: %v", err)
	}

	// No pin: the system's roots do not know a self-signed certificate...
	var unknown *tls.CertificateVerificationError
	if _, err := a.status(ctx, endpoint{URL: peer.url, Token: testToken}, "c1"); !errors.As(err, &unknown) {
		t.Fatalf("an unpinned self-signed agent against the system's roots: %v", err)
	}
	// ...a CA bundle that holds it does (Ironic's verify_ca as a path)...
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(peer.cert.PEM))
	cfg.verify = verifyCA{roots: roots}
	if _, err := newAgentClient(cfg, nil).status(ctx, endpoint{URL: peer.url, Token: testToken}, "c1"); err != nil {
		t.Fatalf("an unpinned agent verified against a CA bundle: %v", err)
	}
	// ...and verify_ca = false takes anything.
	cfg.verify = verifyCA{insecure: true}
	if _, err := newAgentClient(cfg, nil).status(ctx, endpoint{URL: other.url, Token: testToken}, "c1"); err != nil {
		t.Fatalf("an unpinned agent with verify_ca false: %v", err)
	}
}

func TestParseVerifyCA(t *testing.T) {
	for _, s := range []string{"", "True", "1"} {
		if roots, insecure, err := ParseVerifyCA(s); roots != nil || insecure || err != nil {
			t.Errorf("%q: %v %v %v, want the system's roots", s, roots, insecure, err)
		}
	}
	if _, insecure, err := ParseVerifyCA("false"); !insecure || err != nil {
		t.Errorf("false: %v %v", insecure, err)
	}
	if _, _, err := ParseVerifyCA("/nonexistent/ca.pem"); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
