package conductor_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ironwork/ironwork/internal/conductor"
)

// TestProvisionRequestJSON checks that a provision request crosses JSON (the JSON-RPC wire)
// as the API body gave it: the config drive as a string or an object, steps with their args
// and priority, and no config drive as none.
func TestProvisionRequestJSON(t *testing.T) {
	prio := 0
	for name, req := range map[string]conductor.ProvisionRequest{
		"encoded":      {Target: "active", ConfigDrive: &conductor.ConfigDrive{Encoded: "H4sI"}},
		"empty":        {Target: "active", ConfigDrive: &conductor.ConfigDrive{}},
		"object":       {Target: "rebuild", ConfigDrive: &conductor.ConfigDrive{Dict: map[string]any{"user_data": "#!/bin/sh", "meta_data": map[string]any{"hostname": "h"}}}},
		"empty object": {Target: "active", ConfigDrive: &conductor.ConfigDrive{Dict: map[string]any{}}},
		"none":         {Target: "active"},
		"steps": {Target: "clean", CleanSteps: []conductor.StepRequest{
			{Interface: "deploy", Step: "erase_devices", Args: map[string]any{"n": 2.0}, Priority: &prio},
			{Interface: "bios", Step: "apply_configuration"}}},
	} {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got conductor.ProvisionRequest
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, req) {
			t.Errorf("%s: %s came back as %+v, want %+v", name, b, got, req)
		}
	}
	var raw map[string]any
	b, _ := json.Marshal(conductor.ProvisionRequest{ConfigDrive: &conductor.ConfigDrive{Dict: map[string]any{"user_data": "x"}}})
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["configdrive"].(map[string]any); !ok {
		t.Errorf("an object config drive is %T on the wire, want an object", raw["configdrive"])
	}
	var bad conductor.ProvisionRequest
	if err := json.Unmarshal([]byte(`{"configdrive": 5}`), &bad); err == nil {
		t.Errorf("a number config drive was accepted: %+v", bad.ConfigDrive)
	}
}
