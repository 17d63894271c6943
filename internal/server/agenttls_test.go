package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	agentserver "github.com/ironwork/ironwork/internal/agent/server"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestAgentVerifyCAInHeartbeats checks agent_verify_ca through the API (SQLite and
// PostgreSQL): refused below 1.68 and when it is no certificate, pinned at the first
// heartbeat, a different one refused with Ironic's message, no fall back to plain HTTP once
// pinned, require_tls refusing plain callbacks, and the pin gone when the boot ends.
func TestAgentVerifyCAInHeartbeats(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t), func(c *server.Config) { c.AgentRequireTLS = true })
			c := &api.Client{BaseURL: srv.URL(), Version: "1.115"}
			ctx := context.Background()
			var node map[string]any
			if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "tls-1", "driver": "fake-hardware",
				"driver_info": map[string]any{"fake_deploy_wait": true}}, &node); err != nil {
				t.Fatal(err)
			}
			uuid := node["uuid"].(string)
			for _, verb := range []string{"manage", "provide", "active"} {
				provisionVerb(t, c, uuid, verb)
				waitState(t, c, uuid, map[string]string{"manage": "manageable", "provide": "available", "active": "wait call-back"}[verb], 10*time.Second)
			}
			var lr api.LookupResponse
			if err := c.Do(ctx, http.MethodGet, "/v1/lookup?node_uuid="+uuid, nil, &lr); err != nil {
				t.Fatal(err)
			}
			token := lr.Config.AgentToken
			certA, certB := autoCert(t), autoCert(t)
			hb := func(version, callback, cert string) error {
				cl := *c
				cl.Version = version
				body := map[string]any{"callback_url": callback, "agent_token": token}
				if cert != "" {
					body["agent_verify_ca"] = cert
				}
				return cl.Do(ctx, http.MethodPost, "/v1/heartbeat/"+uuid, body, nil)
			}
			pinned := func() (string, string) {
				var n map[string]any
				if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
					t.Fatal(err)
				}
				dii, _ := n["driver_internal_info"].(map[string]any)
				ca, _ := dii["agent_verify_ca"].(string)
				u, _ := dii["agent_url"].(string)
				return ca, u
			}
			https, plain := "https://127.0.0.1:9999", "http://127.0.0.1:9999"
			refusals := []struct {
				name, version, url, cert, want string
			}{
				{"below 1.68", "1.67", https, certA, `Field "agent_verify_ca" not recognised in this version`},
				{"not a certificate", "1.68", https, "hello", "Invalid agent_verify_ca"},
				{"plain HTTP with require_tls", "1.68", plain, "", "Agent is required to use TLS"},
			}
			for _, r := range refusals {
				err := hb(r.version, r.url, r.cert)
				if !api.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), r.want) {
					t.Errorf("%s: %v, want 400 %q", r.name, err, r.want)
				}
			}
			if ca, _ := pinned(); ca != "" {
				t.Fatalf("a refused heartbeat pinned %q", ca)
			}
			if err := hb("1.68", https, certA); err != nil {
				t.Fatalf("first heartbeat with a certificate: %v", err)
			}
			if ca, u := pinned(); ca != certA || u != https {
				t.Fatalf("pinned %q at %q, want the first certificate at %s", ca, u, https)
			}
			if err := hb("1.68", https, certB); !api.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), `Detected change in ramdisk provided "agent_verify_ca"`) {
				t.Fatalf("another certificate in the same boot: %v, want 400", err)
			}
			if err := hb("1.68", "https://127.0.0.1:9998", certB); !api.IsStatus(err, http.StatusBadRequest) {
				t.Fatalf("another certificate from another URL: %v, want 400", err)
			}
			if ca, u := pinned(); ca != certA || u != https {
				t.Fatalf("a refused heartbeat changed the pin or URL: %q at %q", ca, u)
			}
			if err := hb("1.68", https, certA); err != nil {
				t.Fatalf("the same certificate again: %v", err)
			}
			// The boot ends (abort): the pin goes with the token.
			provisionVerb(t, c, uuid, "abort")
			waitState(t, c, uuid, "deploy failed", 10*time.Second)
			if ca, _ := pinned(); ca != "" {
				t.Fatal("the certificate outlived the boot")
			}
		})
	}
}

func autoCert(t *testing.T) string {
	t.Helper()
	at, err := agentserver.NewAutoTLS("127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return at.PEM
}

// TestAgentAutoTLSWithTheAgent runs ironwork-agent as a process against a conductor that
// requires TLS: the agent serves its command API over https with the certificate it sent,
// the conductor pins that certificate and runs clean steps through it; an impostor at the
// agent's address with another certificate gets no request (the step waits for the agent
// instead); the next boot's agent, with a new certificate, cleans the node to available.
func TestAgentAutoTLSWithTheAgent(t *testing.T) {
	dir := t.TempDir()
	mac := hostMAC(t)
	agent := buildAgent(t)
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xAA}, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.AgentRequireTLS = true
		c.AgentPowerOffTimeout = server.Duration{Duration: 2 * time.Second}
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.115"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "autotls-1", "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)

	start := time.Now()
	steps := []map[string]any{
		{"interface": "deploy", "step": "boot_agent"},
		{"interface": "deploy", "step": "erase_devices_metadata"},
		{"interface": "deploy", "step": "hold"},
		{"interface": "deploy", "step": "erase_devices_metadata"},
	}
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "clean", "clean_steps": steps}, nil); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, uuid, "clean wait", 10*time.Second)
	a := startAgent(t, agent, srv.URL(), disk)
	n := waitState(t, c, uuid, "clean hold", 60*time.Second)
	t.Logf("manual cleaning over TLS up to the hold: %.1f s", time.Since(start).Seconds())
	b := mapDisk(t, disk)
	if !bytes.Equal(b[:1<<20], make([]byte, 1<<20)) {
		t.Fatal("erase_devices_metadata (called over TLS) left the disk's first MiB")
	}
	dii := n["driver_internal_info"].(map[string]any)
	pinned, _ := dii["agent_verify_ca"].(string)
	agentURL, _ := dii["agent_url"].(string)
	u, err := url.Parse(agentURL)
	if err != nil || u.Scheme != "https" || pinned == "" {
		t.Fatalf("agent_url %q and agent_verify_ca %q: want https and a certificate", agentURL, pinned)
	}
	// What the agent serves is what it sent.
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate
	if err != nil {
		t.Fatal(err)
	}
	served := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: conn.ConnectionState().PeerCertificates[0].Raw}))
	conn.Close()
	if served != pinned {
		t.Fatal("the agent serves another certificate than the one the conductor pinned")
	}
	if !strings.Contains(a.out.String(), "auto-TLS: certificate for 127.0.0.1") {
		t.Fatalf("the agent's console does not report its certificate:\n%s", a.out.String())
	}

	// An impostor takes the agent's address with a certificate of its own.
	a.stop()
	var handshakes, requests atomic.Int64
	imp := impostor(t, u.Host, &handshakes, &requests)
	defer imp.Close()
	provisionVerb(t, c, uuid, "unhold")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			t.Fatal(err)
		}
		// The command the agent did not take waits, unsent, for the agent's next heartbeat.
		w, _ := n["driver_internal_info"].(map[string]any)["ironwork_agent_command"].(map[string]any)
		if w != nil && w["step"] == "erase_devices_metadata" && w["id"] == nil {
			break
		}
		if st := n["provision_state"]; time.Now().After(deadline) || (st != "clean wait" && st != "cleaning") {
			t.Fatalf("node %v, waiting for %v: want the step waiting for its agent", n["provision_state"], w)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if handshakes.Load() == 0 || requests.Load() != 0 {
		t.Fatalf("the impostor saw %d handshakes and %d requests: want handshakes and no request", handshakes.Load(), requests.Load())
	}
	imp.Close()
	provisionVerb(t, c, uuid, "abort")
	n = waitState(t, c, uuid, "clean failed", 20*time.Second)
	if dii := n["driver_internal_info"].(map[string]any); dii["agent_verify_ca"] != nil {
		t.Fatal("the certificate outlived the boot")
	}

	// The next boot: a new agent, a new certificate, accepted.
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 20*time.Second)
	start = time.Now()
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "clean wait", 20*time.Second)
	a2 := startAgent(t, agent, srv.URL(), disk)
	waitState(t, c, uuid, "available", 60*time.Second)
	t.Logf("automated cleaning over TLS: %.1f s", time.Since(start).Seconds())
	if !strings.Contains(a2.out.String(), "auto-TLS: certificate for 127.0.0.1") {
		t.Fatalf("the second agent's console does not report its certificate:\n%s", a2.out.String())
	}
}

// impostor serves TLS at addr with a certificate of its own, counting handshakes and the
// requests that got past one.
func impostor(t *testing.T, addr string, handshakes, requests *atomic.Int64) *http.Server {
	t.Helper()
	at, err := agentserver.NewAutoTLS("127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; i < 100; i++ { // the agent's port may take a moment to be free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte(`{"commands": []}`))
	}), ErrorLog: log.New(io.Discard, "", 0)}
	tc := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		handshakes.Add(1)
		return &at.Certificate, nil
	}}
	go s.Serve(tls.NewListener(ln, tc))
	return s
}
