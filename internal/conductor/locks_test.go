package conductor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// offerSteps makes the recorder offer one clean step (deploy.erase_devices) and two deploy
// steps (deploy.deploy, deploy.write_image).
func offerSteps(e *env) {
	e.rec.offer(ironwork.DeployInterface, conductor.CleanSteps, conductor.Step{Name: "erase_devices", Priority: 10})
	e.rec.offer(ironwork.DeployInterface, conductor.DeploySteps,
		conductor.Step{Name: "deploy", Priority: 100}, conductor.Step{Name: "write_image", Priority: 80})
}

// TestProvisionOutcomes drives every background action to its end, with no failure and with
// a driver failing in each phase: the node ends in the right state, unlocked, with last_error
// set exactly when something failed.
func TestProvisionOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		from   ironwork.ProvisionState
		target string
		fail   string // recorder call that fails; "" for none
		panic  bool
		want   ironwork.ProvisionState
		more   []func(*conductor.ProvisionRequest)
	}{
		{name: "verify", from: ironwork.Enroll, target: "manage", want: ironwork.Manageable},
		{name: "verify: power read fails", from: ironwork.Enroll, target: "manage", fail: "power.PowerState", want: ironwork.Enroll},
		{name: "verify: management invalid", from: ironwork.Enroll, target: "manage", fail: "management.Validate", want: ironwork.Enroll},
		{name: "provide", from: ironwork.Manageable, target: "provide", want: ironwork.Available},
		{name: "provide: clean step fails", from: ironwork.Manageable, target: "provide", fail: "deploy.RunStep(erase_devices)", want: ironwork.CleanFailed},
		{name: "deploy", from: ironwork.Available, target: "active", want: ironwork.Active},
		{name: "deploy: deploy step fails", from: ironwork.Available, target: "active", fail: "deploy.Deploy", want: ironwork.DeployFailed},
		{name: "deploy: later step fails", from: ironwork.Available, target: "active", fail: "deploy.RunStep(write_image)", want: ironwork.DeployFailed},
		{name: "deploy: step panics", from: ironwork.Available, target: "active", fail: "deploy.RunStep(write_image)", panic: true, want: ironwork.DeployFailed},
		{name: "rebuild", from: ironwork.Active, target: "rebuild", want: ironwork.Active},
		{name: "redeploy after a failure", from: ironwork.DeployFailed, target: "active", want: ironwork.Active},
		{name: "undeploy", from: ironwork.Active, target: "deleted", want: ironwork.Available},
		{name: "undeploy: tear down fails", from: ironwork.Active, target: "deleted", fail: "deploy.TearDown", want: ironwork.ProvisionError},
		{name: "undeploy: cleaning fails", from: ironwork.Active, target: "deleted", fail: "deploy.RunStep(erase_devices)", want: ironwork.CleanFailed},
		{name: "inspect", from: ironwork.Manageable, target: "inspect", want: ironwork.Manageable},
		{name: "inspect fails", from: ironwork.Manageable, target: "inspect", fail: "inspect.Inspect", want: ironwork.InspectFailed},
		{name: "adopt", from: ironwork.Manageable, target: "adopt", want: ironwork.Active},
		{name: "adopt: boot invalid", from: ironwork.Manageable, target: "adopt", fail: "boot.Validate", want: ironwork.AdoptFailed},
		{name: "adopt: instance boot fails", from: ironwork.Manageable, target: "adopt", fail: "boot.PrepareInstance", want: ironwork.AdoptFailed},
		{name: "rescue", from: ironwork.Active, target: "rescue", more: []func(*conductor.ProvisionRequest){withRescuePassword("pw")}, want: ironwork.Rescue},
		{name: "rescue fails", from: ironwork.Active, target: "rescue", more: []func(*conductor.ProvisionRequest){withRescuePassword("pw")}, fail: "rescue.Rescue", want: ironwork.RescueFailed},
		{name: "unrescue", from: ironwork.Rescue, target: "unrescue", want: ironwork.Active},
		{name: "unrescue fails", from: ironwork.Rescue, target: "unrescue", fail: "rescue.Unrescue", want: ironwork.UnrescueFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			offerSteps(e)
			if tc.fail != "" {
				e.rec.failOn(tc.fail)
				if tc.panic {
					e.rec.set(func(r *recorder) { r.panics[tc.fail] = true })
				}
			}
			n := e.node(t, func(n *ironwork.Node) {
				n.ProvisionState = tc.from
				n.InstanceInfo = ironwork.JSONObject{"image_source": "http://127.0.0.1/img"}
				if tc.from == ironwork.Rescue {
					n.InstanceInfo["rescue_password"] = "pw"
				}
			})
			ok(t, provision(t, e.c, n.UUID, tc.target, tc.more...))
			got := e.settled(t, n.UUID, tc.want)
			if tc.fail == "" && got.LastError != "" {
				t.Errorf("last_error %q after a successful %s", got.LastError, tc.target)
			}
			if tc.fail != "" && got.LastError == "" {
				t.Errorf("no last_error after %s failed", tc.fail)
			}
			if tc.fail != "" && !tc.panic && !strings.Contains(got.LastError, "injected "+tc.fail+" failure") {
				t.Errorf("last_error %q does not carry the driver's error", got.LastError)
			}
			if tc.panic && !strings.Contains(got.LastError, "injected panic") {
				t.Errorf("last_error %q does not say what panicked", got.LastError)
			}
			if got.TargetProvisionState != ironwork.TargetOf(tc.want) {
				t.Errorf("target provision state %q, want %q", got.TargetProvisionState, ironwork.TargetOf(tc.want))
			}
			hist := e.history(t, got)
			if len(hist) == 0 || !strings.Contains(hist[len(hist)-1], string(tc.want)) {
				t.Errorf("history %q does not end in %s", hist, tc.want)
			}
		})
	}
}

func TestUndeployForgetsInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, func(n *ironwork.Node) {
		n.ProvisionState, n.InstanceUUID, n.InstanceName = ironwork.Active, "8c9a1a3e-1b4f-4f8e-9c51-0d2a3c2f9f10", "web-1"
		n.InstanceInfo = ironwork.JSONObject{"image_source": "http://127.0.0.1/img"}
	})
	ok(t, provision(t, e.c, n.UUID, "undeploy"))
	got := e.settled(t, n.UUID, ironwork.Available)
	if got.InstanceUUID != "" || got.InstanceName != "" || len(got.InstanceInfo) != 0 {
		t.Errorf("instance kept after undeploy: uuid %q name %q info %v", got.InstanceUUID, got.InstanceName, got.InstanceInfo)
	}
	if e.rec.hardwarePower() != ironwork.PowerOff {
		t.Errorf("hardware is %q after tear down, want off", e.rec.hardwarePower())
	}
}

func TestUnrescueForgetsPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
	ok(t, provision(t, e.c, n.UUID, "rescue", withRescuePassword("hunter2")))
	got := e.settled(t, n.UUID, ironwork.Rescue)
	if h, _ := got.InstanceInfo["hashed_rescue_password"].(string); !strings.HasPrefix(h, "$6$") || got.InstanceInfo["rescue_password"] != nil {
		t.Errorf("rescue password not kept as its sha512-crypt hash only: %v", got.InstanceInfo)
	}
	ok(t, provision(t, e.c, n.UUID, "unrescue"))
	if got := e.settled(t, n.UUID, ironwork.Active); got.InstanceInfo["hashed_rescue_password"] != nil {
		t.Errorf("rescue password hash kept after unrescue")
	}
}

func TestProvisionRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	offerSteps(e)
	for _, tc := range []struct {
		name   string
		node   func(n *ironwork.Node)
		target string
		more   []func(*conductor.ProvisionRequest)
		want   ironwork.Code
	}{
		{name: "unknown target", target: "explode", want: ironwork.EINVALID},
		{name: "not allowed in this state", target: "provide", want: ironwork.EINVALID},
		{name: "protected node undeploy", node: func(n *ironwork.Node) { n.ProvisionState, n.Protected = ironwork.Active, true }, target: "deleted", want: ironwork.EFORBIDDEN},
		{name: "protected node rebuild", node: func(n *ironwork.Node) { n.ProvisionState, n.Protected = ironwork.Active, true }, target: "rebuild", want: ironwork.EFORBIDDEN},
		{name: "maintenance", node: func(n *ironwork.Node) { n.Maintenance = true }, target: "active", want: ironwork.EINVALID},
		{name: "rescue without a password", node: func(n *ironwork.Node) { n.ProvisionState = ironwork.Active }, target: "rescue", want: ironwork.EINVALID},
		{name: "deploy interface invalid", node: func(n *ironwork.Node) { n.Interfaces[ironwork.BootInterface] = "no-such-boot" }, target: "active", want: ironwork.EINVALID},
		{name: "driver not served here", node: func(n *ironwork.Node) { n.Driver = "no-such-hardware" }, target: "active", want: ironwork.EINVALID},
		{name: "config drive that cannot be built", target: "active", more: []func(*conductor.ProvisionRequest){withConfigDrive(&conductor.ConfigDrive{Dict: map[string]any{"meta_data": "not an object"}})}, want: ironwork.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.node(t, tc.node)
			wantCode(t, provision(t, e.c, n.UUID, tc.target, tc.more...), tc.want)
			got := e.settled(t, n.UUID, n.ProvisionState)
			if got.LastError != "" {
				t.Errorf("a refused request set last_error %q", got.LastError)
			}
		})
	}
	t.Run("unknown node", func(t *testing.T) {
		wantCode(t, provision(t, e.c, "no-such-node", "active"), ironwork.ENOTFOUND)
	})
	t.Run("locked by another conductor", func(t *testing.T) {
		n := e.node(t, nil)
		locked, err := e.store.ReserveNode(context.Background(), n.UUID, "other")
		ok(t, err)
		wantCode(t, provision(t, e.c, n.UUID, "active"), ironwork.ELOCKED)
		if got := e.get(t, n.UUID); got.Reservation != "other" || got.ProvisionState != ironwork.Available {
			t.Errorf("a refused request changed a locked node: reservation %q, state %q", got.Reservation, got.ProvisionState)
		}
		ok(t, e.store.ReleaseNode(context.Background(), locked.ID, "other"))
	})
	t.Run("validation failure", func(t *testing.T) {
		n := e.node(t, nil)
		e.rec.failOn("deploy.Validate")
		defer e.rec.set(func(r *recorder) { delete(r.fail, "deploy.Validate") })
		err := provision(t, e.c, n.UUID, "active")
		wantCode(t, err, ironwork.EINVALID)
		// The driver's reason reaches the user even when it carries no code (a plain error,
		// as the pxe and direct interfaces return).
		if msg := ironwork.ErrorMessage(err); !strings.Contains(msg, "injected deploy.Validate failure") {
			t.Errorf("validation error %q hides the driver's reason", msg)
		}
		e.settled(t, n.UUID, ironwork.Available)
	})
	if calls := stepCalls(e.rec); len(calls) != 0 {
		t.Errorf("refused requests ran steps: %v", calls)
	}
}

func TestMaintenanceAllowsManageAndAbort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState, n.Maintenance = ironwork.Available, true })
	ok(t, provision(t, e.c, n.UUID, "manage"))
	e.settled(t, n.UUID, ironwork.Manageable)
	w := e.node(t, func(n *ironwork.Node) { n.ProvisionState, n.Maintenance = ironwork.DeployWait, true })
	ok(t, provision(t, e.c, w.UUID, "abort"))
	if got := e.settled(t, w.UUID, ironwork.DeployFailed); !strings.Contains(got.LastError, "aborted") {
		t.Errorf("last_error after abort: %q", got.LastError)
	}
}

func TestConfigDriveStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	offerSteps(e)
	for _, tc := range []struct {
		name string
		cd   *conductor.ConfigDrive
	}{
		{"string", &conductor.ConfigDrive{Encoded: "H4sIAAAAAAAA"}},
		{"object", &conductor.ConfigDrive{Dict: map[string]any{"meta_data": map[string]any{"hostname": "web-1"}, "user_data": "#!/bin/sh\n"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.node(t, nil)
			ok(t, provision(t, e.c, n.UUID, "active", withConfigDrive(tc.cd)))
			got := e.settled(t, n.UUID, ironwork.Active)
			s, isStr := got.InstanceInfo["configdrive"].(string)
			if !isStr || s == "" {
				t.Fatalf("instance_info.configdrive is %T %v, want an encoded image", got.InstanceInfo["configdrive"], got.InstanceInfo["configdrive"])
			}
			if tc.cd.Dict == nil && s != tc.cd.Encoded {
				t.Errorf("config drive %q stored as %q", tc.cd.Encoded, s)
			}
		})
	}
}

// TestWorkerPoolFull holds the only worker in a step and checks that a second request is
// refused with its node left unlocked, and accepted once the worker is free.
func TestWorkerPoolFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  envOption
	}{
		{"workers", func(c *conductor.Config) { c.Workers = 1 }},
		{"concurrent cleans", func(c *conductor.Config) { c.MaxConcurrentClean = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.opt)
			offerSteps(e)
			gate, entered := make(chan struct{}), make(chan string, 1)
			e.rec.set(func(r *recorder) { r.gate, r.entered = gate, entered })
			a := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })
			b := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })
			ok(t, provision(t, e.c, a.UUID, "provide"))
			<-entered // a's step holds the worker
			wantCode(t, provision(t, e.c, b.UUID, "provide"), ironwork.EUNAVAILABLE)
			if got := e.get(t, b.UUID); got.Reservation != "" || got.ProvisionState != ironwork.Manageable {
				t.Errorf("refused node: reservation %q, state %q", got.Reservation, got.ProvisionState)
			}
			close(gate)
			e.settled(t, a.UUID, ironwork.Available)
			e.rec.set(func(r *recorder) { r.gate = nil })
			ok(t, provision(t, e.c, b.UUID, "provide"))
			e.settled(t, b.UUID, ironwork.Available)
		})
	}
}

// TestSynchronousOperationsReleaseLocks runs each operation that works in the request with
// its driver failing, and checks the node is unlocked afterwards.
func TestSynchronousOperationsReleaseLocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		fail string
		op   func(t *testing.T, node string) error
	}{
		{"management.SetBootDevice(pxe)", func(t *testing.T, node string) error {
			return setBootDevice(t, e.c, node, conductor.BootDevice{Device: conductor.BootPXE})
		}},
		{"management.SupportedBootDevices", func(t *testing.T, node string) error {
			return setBootDevice(t, e.c, node, conductor.BootDevice{Device: conductor.BootPXE})
		}},
		{"management.InjectNMI", func(t *testing.T, node string) error { return injectNMI(t, e.c, node) }},
		{"management.SetBootMode(uefi)", func(t *testing.T, node string) error { return setBootMode(t, e.c, node, "uefi") }},
		{"management.SetSecureBoot(true)", func(t *testing.T, node string) error { return setSecureBoot(t, e.c, node, true) }},
		{"network.AttachVIF(vif-1)", func(t *testing.T, node string) error { return attachVIF(t, e.c, node, conductor.VIF{ID: "vif-1"}) }},
		{"network.DetachVIF(vif-1)", func(t *testing.T, node string) error { return detachVIF(t, e.c, node, "vif-1") }},
		{"network.Validate", func(t *testing.T, node string) error { return attachVIF(t, e.c, node, conductor.VIF{ID: "vif-2"}) }},
		{"power.TakeOver", func(t *testing.T, node string) error {
			return withNode(t, e.c, node, func(*conductor.Task) error {
				return ironwork.Errorf(ironwork.EINVALID, "injected power.TakeOver failure")
			})
		}},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			n := e.node(t, nil)
			e.rec.failOn(tc.fail)
			defer e.rec.set(func(r *recorder) { delete(r.fail, tc.fail) })
			err := tc.op(t, n.UUID)
			if err == nil || !strings.Contains(err.Error(), "injected") {
				t.Errorf("got error %v, want the injected one", err)
			}
			e.settled(t, n.UUID, ironwork.Available)
		})
	}
}
