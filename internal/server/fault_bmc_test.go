package server_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/bmctest"
)

// TestFaultBMCSilentDuringPowerOn is fault 2 of docs/reliability.md: an ipmi node's BMC
// (OpenIPMI's ipmi_sim behind a relay that drops every datagram) stops answering for 30 s
// just as the node is powered on through the API — the conductor's power path, the one every
// deploy, clean and reboot step takes. With the default retry timeout (60 s, Ironic's
// [ipmi]command_retry_timeout) the request is retried and the node ends powered on without
// an error; the BMC's answer after the silence is what counts, not a timeout.
func TestFaultBMCSilentDuringPowerOn(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 30 s BMC silence")
	}
	t.Parallel()
	sim := bmctest.NewIPMISim(t)
	relay := bmctest.NewLossyUDP(t, sim.Port)
	srv := startServer(t, "sqlite://"+filepath.Join(t.TempDir(), "db"))
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var n map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "bmc-silent", "driver": "ipmi",
		"driver_info": map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": fmt.Sprint(relay.Port), "ipmi_username": sim.User,
			"ipmi_password": sim.Password, "ipmi_cipher_suite": "3"}}, &n); err != nil {
		t.Fatal(err)
	}
	uuid := n["uuid"].(string)
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 20*time.Second)

	const silence = 30 * time.Second
	relay.SetDropAll(true)
	start := time.Now()
	timer := time.AfterFunc(silence, func() { relay.SetDropAll(false) })
	defer timer.Stop()
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/power", map[string]any{"target": "power on"}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := start.Add(silence + 60*time.Second)
	for {
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			t.Fatal(err)
		}
		if n["target_power_state"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("power on still in progress %s after the request: %v", time.Since(start), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("outcome: %q, last_error %v, %.1f s after the request (BMC silent for %s, %d datagrams dropped)",
		n["power_state"], n["last_error"], took.Seconds(), silence, relay.Dropped())
	if n["power_state"] != "power on" || n["last_error"] != nil || sim.Power() != "1" {
		t.Fatalf("after a %s BMC silence: power_state %v, last_error %v, simulator power %s", silence, n["power_state"], n["last_error"], sim.Power())
	}
	if took < silence {
		t.Fatalf("the power on finished %s after the request, before the BMC answered again", took)
	}
	if le, _ := n["last_error"].(string); strings.Contains(le, "password") {
		t.Fatal("secret in last_error")
	}
}
