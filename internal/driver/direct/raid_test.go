package direct

import (
	"context"
	"encoding/json"
	"net"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	agentserver "github.com/ironwork/ironwork/internal/agent/server"
	"github.com/ironwork/ironwork/internal/conductor"
)

// TestRAIDOutcomeFromARealAgent sends a raid step to the agent's own command server (an agent
// with no md layer: the step fails) and an erase step, and reads their records as the
// heartbeat does: only a raid step's record is taken for one, whatever the agent calls it.
func TestRAIDOutcomeFromARealAgent(t *testing.T) {
	srv := agentserver.New(agentserver.Config{Token: testToken, Version: "t", Commands: (&agentserver.Machine{RootDevice: "/dev/null"}).Commands()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://" + ln.Addr().String()
	d := New(testConfig(), nil)
	n := &ironwork.Node{UUID: "u1", TargetRAIDConfig: ironwork.JSONObject{"logical_disks": []any{map[string]any{"raid_level": "1", "size_gb": "MAX", "controller": "software"}}}}
	name, params, err := raidCommand(n, conductor.Step{Interface: ironwork.RAIDInterface, Name: "create_configuration"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.agent.run(ctx, endpoint{URL: url, Token: testToken}, name, params, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.CommandStatus != api.CommandFailed || commandError(res) == "" {
		t.Fatalf("create_configuration on an agent without md: %+v", res)
	}
	// The record of a raid step that succeeded, as the agent writes it.
	res.CommandStatus = api.CommandSucceeded
	res.CommandResult, _ = json.Marshal(map[string]any{"clean_step": params["step"], "clean_result": map[string]any{"logical_disks": []any{}}})
	if step, result, ok := raidOutcome(res); !ok || step != "create_configuration" || string(result) != `{"logical_disks":[]}` {
		t.Errorf("raid outcome of %s: %q %s %v", res.CommandName, step, result, ok)
	}
	res.CommandResult, _ = json.Marshal(map[string]any{"clean_step": map[string]any{"interface": "deploy", "step": "erase_devices_metadata"}})
	if _, _, ok := raidOutcome(res); ok {
		t.Error("an erase step taken for a raid step")
	}
}
