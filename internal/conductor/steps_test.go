package conductor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// stepCalls are the step runs recorded, in order.
func stepCalls(r *recorder) []string {
	var out []string
	for _, c := range r.Calls() {
		if strings.Contains(c, ".RunStep(") || strings.HasSuffix(c, ".Deploy") || strings.Contains(c, ".SetPowerState(") {
			out = append(out, c)
		}
	}
	return out
}

func TestAutomatedCleanOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Priorities order the steps; equal priorities go by interface (management before deploy
	// before raid); priority 0 does not run automatically.
	e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps,
		conductor.Step{Name: "erase_devices", Priority: 10}, conductor.Step{Name: "erase_slowly", Priority: 0})
	e.rec.offer(ironwork.ManagementInterface, conductor.CleanSteps, conductor.Step{Name: "reset_bmc", Priority: 10})
	e.rec.offer(ironwork.PowerInterface, conductor.CleanSteps, conductor.Step{Name: "check_psu", Priority: 50})
	e.rec.offer(ironwork.RAIDInterface, conductor.CleanSteps, conductor.Step{Name: "delete_configuration", Priority: 5})
	e.rec.offer(ironwork.BIOSInterface, conductor.CleanSteps, conductor.Step{Name: "factory_reset", Priority: 10})
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })

	ok(t, provision(t, e.c, n.UUID, "provide"))
	got := e.settled(t, n.UUID, ironwork.Available)
	want := []string{"power.RunStep(check_psu)", "management.RunStep(reset_bmc)", "deploy.RunStep(erase_devices)",
		"bios.RunStep(factory_reset)", "raid.RunStep(delete_configuration)"}
	if diff := cmp.Diff(want, stepCalls(e.rec)); diff != "" {
		t.Errorf("clean steps run (-want +got):\n%s", diff)
	}
	if len(got.CleanStep) != 0 || got.TargetProvisionState != "" || got.LastError != "" {
		t.Errorf("after cleaning: clean_step %v, target %q, last_error %q; want all empty", got.CleanStep, got.TargetProvisionState, got.LastError)
	}
	for k := range got.DriverInternalInfo {
		if strings.HasPrefix(k, "ironwork_") {
			t.Errorf("driver_internal_info keeps working key %q after cleaning", k)
		}
	}
}

func TestAutomatedCleanDisabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		global bool
		node   *bool
		runs   bool
	}{
		{"config on", true, nil, true},
		{"config off", false, nil, false},
		{"node off overrides config", true, new(false), false},
		{"node on overrides config", false, new(true), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *conductor.Config) { c.AutomatedClean = tc.global })
			e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices", Priority: 10})
			n := e.node(t, func(n *ironwork.Node) { n.ProvisionState, n.AutomatedClean = ironwork.Manageable, tc.node })
			ok(t, provision(t, e.c, n.UUID, "provide"))
			e.settled(t, n.UUID, ironwork.Available)
			if ran := len(stepCalls(e.rec)) > 0; ran != tc.runs {
				t.Errorf("clean steps ran: %t, want %t (%v)", ran, tc.runs, e.rec.Calls())
			}
		})
	}
}

func TestManualClean(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices", Priority: 10})
	e.rec.offer(ironwork.RAIDInterface, conductor.CleanSteps, conductor.Step{Name: "create_configuration", Priority: 0})
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })

	// Manual steps run in the order given, whatever their priority, with their arguments;
	// the conductor's own power steps are allowed; the node returns to manageable.
	ok(t, provision(t, e.c, n.UUID, "clean", withCleanSteps(
		stepMap("raid", "create_configuration", -1, map[string]any{"level": "1"}),
		stepMap("power", "power_on", -1, nil),
		stepMap("deploy", "erase_devices", 0, nil),
	)))
	got := e.settled(t, n.UUID, ironwork.Manageable)
	want := []string{"raid.RunStep(create_configuration map[level:1])", "power.SetPowerState(power on)", "deploy.RunStep(erase_devices)"}
	if diff := cmp.Diff(want, stepCalls(e.rec)); diff != "" {
		t.Errorf("manual clean steps run (-want +got):\n%s", diff)
	}
	if got.PowerState != ironwork.PowerOn {
		t.Errorf("power state after the power_on step: %q, want %q", got.PowerState, ironwork.PowerOn)
	}
}

func TestManualStepsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices", Priority: 10})
	for _, tc := range []struct {
		name  string
		steps []conductor.StepRequest
	}{
		{"none", nil},
		{"unknown step", []conductor.StepRequest{stepMap("deploy", "format_everything", -1, nil)}},
		{"step of another interface", []conductor.StepRequest{stepMap("raid", "erase_devices", -1, nil)}},
		{"no interface", []conductor.StepRequest{{Step: "erase_devices"}}},
		{"no step", []conductor.StepRequest{{Interface: "deploy"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })
			wantCode(t, provision(t, e.c, n.UUID, "clean", withCleanSteps(tc.steps...)), ironwork.EINVALID)
			got := e.settled(t, n.UUID, ironwork.Manageable)
			if got.LastError != "" {
				t.Errorf("a refused request set last_error %q", got.LastError)
			}
		})
	}
	if calls := stepCalls(e.rec); len(calls) != 0 {
		t.Errorf("refused requests ran steps: %v", calls)
	}
}

// deployEnv is a conductor whose driver offers deploy steps: deploy.deploy (100),
// deploy.write_image (80), management.tweak (disabled), bios.apply (disabled).
func deployEnv(t *testing.T) *env {
	e := newEnv(t)
	e.rec.offer(ironwork.DeployInterface, conductor.DeploySteps,
		conductor.Step{Name: "deploy", Priority: 100}, conductor.Step{Name: "write_image", Priority: 80})
	e.rec.offer(ironwork.ManagementInterface, conductor.DeploySteps, conductor.Step{Name: "tweak", Priority: 0})
	e.rec.offer(ironwork.BIOSInterface, conductor.DeploySteps, conductor.Step{Name: "apply", Priority: 0})
	return e
}

func addTemplate(t *testing.T, e *env, name string, steps ...ironwork.DeployTemplateStep) {
	t.Helper()
	if err := e.store.CreateDeployTemplate(context.Background(), &ironwork.DeployTemplate{Name: name, Steps: steps}); err != nil {
		t.Fatalf("create deploy template: %v", err)
	}
}

func TestDeployStepMerging(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		templates map[string][]ironwork.DeployTemplateStep
		traits    []any
		requested []conductor.StepRequest
		want      []string
	}{
		{name: "driver steps only", want: []string{"deploy.Deploy", "deploy.RunStep(write_image)"}},
		{
			name: "template enables a disabled step and disables another",
			templates: map[string][]ironwork.DeployTemplateStep{"CUSTOM_BIOS": {
				{Interface: ironwork.BIOSInterface, Step: "apply", Priority: 150, Args: ironwork.JSONObject{"mode": "fast"}},
				{Interface: ironwork.DeployInterface, Step: "write_image", Priority: 0},
			}},
			traits: []any{"CUSTOM_BIOS"},
			want:   []string{"bios.RunStep(apply map[mode:fast])", "deploy.Deploy"},
		},
		{
			name: "requested step overrides the template's",
			templates: map[string][]ironwork.DeployTemplateStep{"CUSTOM_BIOS": {
				{Interface: ironwork.BIOSInterface, Step: "apply", Priority: 150, Args: ironwork.JSONObject{"mode": "fast"}},
			}},
			traits:    []any{"CUSTOM_BIOS"},
			requested: []conductor.StepRequest{stepMap("bios", "apply", 90, map[string]any{"mode": "safe"})},
			want:      []string{"deploy.Deploy", "bios.RunStep(apply map[mode:safe])", "deploy.RunStep(write_image)"},
		},
		{
			name:      "requested priority 0 disables a driver step",
			requested: []conductor.StepRequest{stepMap("deploy", "write_image", 0, nil), stepMap("management", "tweak", 120, nil)},
			want:      []string{"management.RunStep(tweak)", "deploy.Deploy"},
		},
		{
			name: "two templates, the first trait's template wins a shared step",
			templates: map[string][]ironwork.DeployTemplateStep{
				"CUSTOM_A": {{Interface: ironwork.ManagementInterface, Step: "tweak", Priority: 90, Args: ironwork.JSONObject{"from": "a"}}},
				"CUSTOM_B": {{Interface: ironwork.BIOSInterface, Step: "apply", Priority: 85}},
			},
			traits: []any{"CUSTOM_A", "CUSTOM_B"},
			want:   []string{"deploy.Deploy", "management.RunStep(tweak map[from:a])", "bios.RunStep(apply)", "deploy.RunStep(write_image)"},
		},
		{
			name:      "a template of a trait the instance does not ask for is ignored",
			templates: map[string][]ironwork.DeployTemplateStep{"CUSTOM_OTHER": {{Interface: ironwork.BIOSInterface, Step: "apply", Priority: 150}}},
			want:      []string{"deploy.Deploy", "deploy.RunStep(write_image)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := deployEnv(t)
			for name, steps := range tc.templates {
				addTemplate(t, e, name, steps...)
			}
			n := e.node(t, func(n *ironwork.Node) {
				n.Traits = []string{"CUSTOM_A", "CUSTOM_B", "CUSTOM_BIOS", "CUSTOM_OTHER"}
				if tc.traits != nil {
					n.InstanceInfo = ironwork.JSONObject{"traits": tc.traits}
				}
			})
			var more []func(*conductor.ProvisionRequest)
			if tc.requested != nil {
				more = append(more, withDeploySteps(tc.requested...))
			}
			ok(t, provision(t, e.c, n.UUID, "active", more...))
			got := e.settled(t, n.UUID, ironwork.Active)
			if diff := cmp.Diff(tc.want, stepCalls(e.rec)); diff != "" {
				t.Errorf("deploy steps run (-want +got):\n%s", diff)
			}
			if len(got.DeployStep) != 0 {
				t.Errorf("deploy_step after the deploy: %v, want empty", got.DeployStep)
			}
			if got.ConductorAffinity != e.conductorID(t, e.host) {
				t.Errorf("conductor affinity %d after the deploy, want this conductor's %d", got.ConductorAffinity, e.conductorID(t, e.host))
			}
		})
	}
}

func TestDeployTemplateUnsupportedStep(t *testing.T) {
	t.Parallel()
	e := deployEnv(t)
	addTemplate(t, e, "CUSTOM_X", ironwork.DeployTemplateStep{Interface: ironwork.RAIDInterface, Step: "no_such_step", Priority: 10})
	n := e.node(t, func(n *ironwork.Node) {
		n.Traits = []string{"CUSTOM_X"}
		n.InstanceInfo = ironwork.JSONObject{"traits": []any{"CUSTOM_X"}}
	})
	// Accepted, then the deploy fails, as Ironic's does once it validates the steps.
	ok(t, provision(t, e.c, n.UUID, "active"))
	got := e.settled(t, n.UUID, ironwork.DeployFailed)
	if !strings.Contains(got.LastError, "CUSTOM_X") || !strings.Contains(got.LastError, "no_such_step") {
		t.Errorf("last_error %q does not name the template and the step", got.LastError)
	}
	if calls := stepCalls(e.rec); len(calls) != 0 {
		t.Errorf("a deploy with an invalid template ran steps: %v", calls)
	}
}

func TestInstanceTraitsRefused(t *testing.T) {
	t.Parallel()
	e := deployEnv(t)
	for _, tc := range []struct {
		name   string
		traits any
	}{
		{"trait not on the node", []any{"CUSTOM_MISSING"}},
		{"not a list", "CUSTOM_A"},
		{"not strings", []any{1.0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.node(t, func(n *ironwork.Node) {
				n.Traits = []string{"CUSTOM_A"}
				n.InstanceInfo = ironwork.JSONObject{"traits": tc.traits}
			})
			wantCode(t, provision(t, e.c, n.UUID, "active"), ironwork.EINVALID)
			e.settled(t, n.UUID, ironwork.Available)
		})
	}
	// An empty string is no traits at all.
	n := e.node(t, func(n *ironwork.Node) { n.InstanceInfo = ironwork.JSONObject{"traits": ""} })
	ok(t, provision(t, e.c, n.UUID, "active"))
	e.settled(t, n.UUID, ironwork.Active)
}

func TestDeployHoldAndUnhold(t *testing.T) {
	t.Parallel()
	e := deployEnv(t)
	n := e.node(t, nil)
	ok(t, provision(t, e.c, n.UUID, "active", withDeploySteps(stepMap("deploy", "hold", 90, nil))))
	held := e.settled(t, n.UUID, ironwork.DeployHold)
	if diff := cmp.Diff([]string{"deploy.Deploy"}, stepCalls(e.rec)); diff != "" {
		t.Errorf("steps before the hold (-want +got):\n%s", diff)
	}
	if held.DeployStep["step"] != "hold" {
		t.Errorf("deploy_step while held: %v, want the hold step", held.DeployStep)
	}
	ok(t, provision(t, e.c, n.UUID, "unhold"))
	e.settled(t, n.UUID, ironwork.Active)
	if diff := cmp.Diff([]string{"deploy.Deploy", "deploy.RunStep(write_image)"}, stepCalls(e.rec)); diff != "" {
		t.Errorf("steps after the unhold (-want +got):\n%s", diff)
	}
}

func TestDeployWaitAndResume(t *testing.T) {
	t.Parallel()
	e := deployEnv(t)
	e.rec.set(func(r *recorder) { r.deployWait = true })
	n := e.node(t, nil)
	ok(t, provision(t, e.c, n.UUID, "active"))
	waiting := e.settled(t, n.UUID, ironwork.DeployWait)
	if waiting.DeployStep["step"] != "deploy" || waiting.TargetProvisionState != ironwork.Active {
		t.Errorf("waiting node: deploy_step %v, target %q", waiting.DeployStep, waiting.TargetProvisionState)
	}
	ok(t, resume(t, e.c, n.UUID))
	e.settled(t, n.UUID, ironwork.Active)
	if diff := cmp.Diff([]string{"deploy.Deploy", "deploy.RunStep(write_image)"}, stepCalls(e.rec)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	// Resume of a node that does not wait is refused and changes nothing.
	wantCode(t, resume(t, e.c, n.UUID), ironwork.EINVALID)
	e.settled(t, n.UUID, ironwork.Active)
}

func TestServiceSteps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rec.offer(ironwork.ManagementInterface, conductor.ServiceSteps, conductor.Step{Name: "update_firmware", Priority: 0})
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
	wantCode(t, provision(t, e.c, n.UUID, "service", withServiceSteps(stepMap("management", "nope", -1, nil))), ironwork.EINVALID)
	ok(t, provision(t, e.c, n.UUID, "service", withServiceSteps(stepMap("management", "update_firmware", -1, map[string]any{"v": "2"}))))
	got := e.settled(t, n.UUID, ironwork.Active)
	if diff := cmp.Diff([]string{"management.RunStep(update_firmware map[v:2])"}, stepCalls(e.rec)); diff != "" {
		t.Errorf("service steps (-want +got):\n%s", diff)
	}
	if len(got.ServiceStep) != 0 {
		t.Errorf("service_step after servicing: %v", got.ServiceStep)
	}
}

func TestWaitStepThenAbort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The conductor's own "wait" step is allowed on any interface, even one that runs no
	// steps (noop storage); abort then fails the clean and clears its steps.
	e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices", Priority: 10})
	n := e.node(t, func(n *ironwork.Node) {
		n.ProvisionState = ironwork.Manageable
		n.Interfaces[ironwork.StorageInterface] = "noop"
	})
	ok(t, provision(t, e.c, n.UUID, "clean", withCleanSteps(stepMap("storage", "wait", -1, nil))))
	// "wait" is the conductor's own step: the node waits for a callback.
	e.settled(t, n.UUID, ironwork.CleanWait)
	ok(t, provision(t, e.c, n.UUID, "abort"))
	got := e.settled(t, n.UUID, ironwork.CleanFailed)
	if len(got.CleanStep) != 0 || got.LastError == "" {
		t.Errorf("aborted clean: clean_step %v, last_error %q", got.CleanStep, got.LastError)
	}
}

func TestHoldThenUnholdOrAbort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		from             ironwork.ProvisionState
		target           string
		more             func(steps ...conductor.StepRequest) func(*conductor.ProvisionRequest)
		hold             ironwork.ProvisionState
		done, aborted    ironwork.ProvisionState
		afterHold, iface string
	}{
		{"clean", ironwork.Manageable, "clean", withCleanSteps, ironwork.CleanHold, ironwork.Manageable, ironwork.CleanFailed, "erase_devices", "deploy"},
		{"service", ironwork.Active, "service", withServiceSteps, ironwork.ServiceHold, ironwork.Active, ironwork.ServiceFailed, "flash", "management"},
	} {
		for _, unhold := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s unhold=%t", tc.name, unhold), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices", Priority: 10})
				e.rec.offer(ironwork.ManagementInterface, conductor.ServiceSteps, conductor.Step{Name: "flash", Priority: 0})
				n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = tc.from })
				ok(t, provision(t, e.c, n.UUID, tc.target, tc.more(stepMap(tc.iface, "hold", -1, nil), stepMap(tc.iface, tc.afterHold, -1, nil))))
				e.settled(t, n.UUID, tc.hold)
				want := tc.aborted
				if unhold {
					ok(t, provision(t, e.c, n.UUID, "unhold"))
					want = tc.done
				} else {
					ok(t, provision(t, e.c, n.UUID, "abort"))
				}
				got := e.settled(t, n.UUID, want)
				ran := false // abort in a hold powers the node off (as Ironic); only steps count here
				for _, c := range stepCalls(e.rec) {
					ran = ran || strings.Contains(c, ".RunStep(")
				}
				if ran != unhold {
					t.Errorf("step after the hold ran: %t, want %t", ran, unhold)
				}
				if len(got.CleanStep)+len(got.ServiceStep) != 0 {
					t.Errorf("step fields kept: %v %v", got.CleanStep, got.ServiceStep)
				}
			})
		}
	}
}
