package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork/internal/agent/server"
)

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("cmdline%d", n))
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	boot := "initrd=ramdisk BOOTIF=01-52-54-00-aa-bb-cc ipa-api-url=http://10.98.0.1:6385 ironwork-node=6f1a " +
		"ironwork-boot-mode=uefi console=ttyS0 ipa-lookup-timeout=120 ipa-listen-port=9998 ipa-debug=1 ipa-insecure=0\n"
	for _, tc := range []struct {
		name    string
		args    []string
		want    func(*Config)
		wantErr string
	}{
		{name: "kernel command line", args: []string{"--cmdline", write(boot)}, want: func(c *Config) {
			c.APIURL, c.NodeUUID, c.BootMAC = "http://10.98.0.1:6385", "6f1a", "52:54:00:aa:bb:cc"
			c.LookupTimeout, c.Listen, c.Debug = 120*time.Second, "0.0.0.0:9998", true
		}},
		{name: "flags win", args: []string{"--cmdline", write(boot), "--api-url", "http://127.0.0.1:1", "--listen", "127.0.0.1:0",
			"--root-device", "/tmp/x", "--no-poweroff", "--lookup-timeout", "5s"}, want: func(c *Config) {
			c.APIURL, c.NodeUUID, c.BootMAC = "http://127.0.0.1:1", "6f1a", "52:54:00:aa:bb:cc"
			c.LookupTimeout, c.Listen, c.Debug, c.RootDevice, c.NoPowerOff = 5*time.Second, "127.0.0.1:0", true, "/tmp/x", true
		}},
		{name: "advertise host", args: []string{"--cmdline", write("ipa-api-url=https://a:1,https://b:2 ipa-advertise-host=10.0.0.9 ipa-agent-token=T")}, want: func(c *Config) {
			c.APIURL, c.AdvertiseHost, c.AgentToken = "https://a:1", "10.0.0.9", "T"
		}},
		{name: "inspection only", args: []string{"--cmdline", write("ipa-inspection-callback-url=http://10.98.0.1:6385/v1/continue_inspection ipa-collect-lldp=0 ipa-lldp-timeout=2.5")}, want: func(c *Config) {
			c.InspectionURL, c.CollectLLDP, c.LLDPTimeout = "http://10.98.0.1:6385/v1/continue_inspection", false, 2500*time.Millisecond
		}},
		{name: "bad inspection URL", args: []string{"--cmdline", write("ipa-inspection-callback-url=10.0.0.1/x")}, wantErr: "inspection callback URL"},
		{name: "bad LLDP timeout", args: []string{"--cmdline", write("ipa-api-url=http://a ipa-lldp-timeout=0")}, wantErr: "ipa-lldp-timeout"},
		{name: "no API URL", args: []string{"--cmdline", write("console=ttyS0")}, wantErr: "no Ironic API URL"},
		{name: "bad port", args: []string{"--cmdline", write("ipa-api-url=http://a ipa-listen-port=x")}, wantErr: "not a port"},
		{name: "bad timeout", args: []string{"--cmdline", write("ipa-api-url=http://a ipa-lookup-timeout=-1")}, wantErr: "positive"},
		{name: "bad scheme", args: []string{"--cmdline", write(""), "--api-url", "ftp://a"}, wantErr: "must be http(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			want.CmdlineFile = tc.args[1]
			tc.want(&want)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
		})
	}
}

func TestHeartbeatInterval(t *testing.T) {
	for timeout, want := range map[int]time.Duration{0: 10 * time.Second, 300: 10 * time.Second, 15: 5 * time.Second, 1: time.Second} {
		if got := heartbeatInterval(timeout); got != want {
			t.Errorf("heartbeatInterval(%d) = %s, want %s", timeout, got, want)
		}
	}
}

// An API that refuses Ironwork's heartbeat extensions (a real Ironic below 1.72) gets IPA's
// plain fields from then on.
func TestHeartbeatFallback(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	ironic := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if strings.Contains(string(b), "agent_status") {
			http.Error(w, `{"error_message": "Unknown argument: agent_status"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ironic.Close()
	srv := server.New(server.Config{Token: "t"})
	defer srv.Close()
	hb := heartbeater{client: newAPIClient(Config{APIURL: ironic.URL}), node: "n", token: "t", callback: "http://x:9999",
		srv: srv, log: slog.New(slog.DiscardHandler)}
	hb.beat(context.Background(), true)
	hb.beat(context.Background(), false)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 3 || !strings.Contains(bodies[0], `"agent_status":"start"`) ||
		strings.Contains(bodies[1], "agent_status") || strings.Contains(bodies[2], "agent_status") ||
		!strings.Contains(bodies[2], `"callback_url":"http://x:9999"`) {
		t.Errorf("heartbeat bodies %q", bodies)
	}
}
